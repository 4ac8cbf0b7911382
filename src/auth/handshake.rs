//! The TCP handshake: HMAC-SHA256 challenge-response when a connection opens.
//!
//! ```text
//!   client                                   server
//!     |  ------------- TCP connect ------------>  |
//!     |  <------ challenge: 32 random bytes -----  |  (OS CSPRNG, unframed)
//!     |  ------ answer: HMAC-SHA256(key, c) ---->  |  (32 bytes, unframed)
//!     |                                           |  verify in constant time
//!     |  <========= frames, as usual ==========>  |  right: proceed
//!     |             (connection closed)           |  wrong/late: close, send nothing
//! ```
//! Python: `hmac.new(key, challenge, hashlib.sha256).digest()`.
//!
//! The server's side is `Handshake` (one connection's challenge and the
//! answer so far) checked by an `Authenticator`; the client's side is
//! [`answer_challenge`]. Both sides, the reactor and every client, use this
//! one implementation.

use std::io::{self, Read, Write};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::config::CHALLENGE_LEN;
use crate::timer::Stamp;

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// The server's keyed MAC, set up once and cloned per verification (cloning
/// skips re-hashing the key).
#[derive(Clone)]
pub(crate) struct Authenticator {
    mac: HmacSha256,
}

impl Authenticator {
    pub fn new(key: &[u8]) -> Authenticator {
        Authenticator {
            // HMAC takes keys of any length, so this cannot fail.
            mac: <HmacSha256 as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!()),
        }
    }

    /// The keyed MAC, ready for input (cloning skips re-hashing the key).
    pub fn mac(&self) -> HmacSha256 {
        self.mac.clone()
    }

    /// Whether `answer` is HMAC(key, challenge), compared in constant time.
    pub fn verify(&self, challenge: &[u8], answer: &[u8]) -> bool {
        let mut mac = self.mac.clone();
        mac.update(challenge);
        mac.verify_slice(answer).is_ok()
    }
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authenticator(redacted)")
    }
}

/// One connection's handshake in progress: the challenge sent, and the part
/// of the answer received so far (it may arrive a byte at a time).
#[derive(Debug)]
pub(crate) struct Handshake {
    /// The answer must be complete by then.
    deadline: Stamp,
    challenge: [u8; CHALLENGE_LEN],
    answer: [u8; CHALLENGE_LEN],
    received: usize,
}

impl Handshake {
    /// A handshake with a fresh challenge from the OS random source.
    pub fn new(deadline: Stamp) -> io::Result<Handshake> {
        let mut challenge = [0u8; CHALLENGE_LEN];
        getrandom::fill(&mut challenge).map_err(io::Error::other)?;
        Ok(Handshake {
            deadline,
            challenge,
            answer: [0; CHALLENGE_LEN],
            received: 0,
        })
    }

    pub fn deadline(&self) -> Stamp {
        self.deadline
    }

    pub fn challenge(&self) -> &[u8] {
        &self.challenge
    }

    /// Takes answer bytes from the front of `bytes`; returns how many it took.
    /// Bytes past the 32nd belong to the frames behind the answer.
    pub fn take_answer(&mut self, bytes: &[u8]) -> usize {
        let n = (CHALLENGE_LEN - self.received).min(bytes.len());
        self.answer[self.received..self.received + n].copy_from_slice(&bytes[..n]);
        self.received += n;
        n
    }

    /// `None` until 32 answer bytes arrived; then whether they are right.
    pub fn verdict(&self, auth: &Authenticator) -> Option<bool> {
        (self.received == CHALLENGE_LEN).then(|| auth.verify(&self.challenge, &self.answer))
    }
}

/// The client's answer to a challenge: HMAC-SHA256(key, challenge).
pub fn answer(key: &[u8], challenge: &[u8]) -> [u8; CHALLENGE_LEN] {
    let mut mac = Authenticator::new(key).mac;
    mac.update(challenge);
    mac.finalize().into_bytes().into()
}

/// The client's side of the handshake on a blocking stream: reads the
/// 32-byte challenge and writes the answer.
///
/// How long to wait for the challenge is the caller's choice (a read timeout
/// on the socket): a server without a key sends none, and would be waited for
/// forever.
pub fn answer_challenge(stream: &mut (impl Read + Write), key: &[u8]) -> io::Result<()> {
    let mut challenge = [0u8; CHALLENGE_LEN];
    stream.read_exact(&mut challenge)?;
    stream.write_all(&answer(key, &challenge))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_matches_rfc_4231_test_case_2() {
        // RFC 4231 4.3: key "Jefe", data "what do ya want for nothing?".
        let mac = answer(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn answer_arriving_in_pieces_is_verified_once_complete() {
        let key = [7u8; 32];
        let auth = Authenticator::new(&key);
        let mut hs =
            Handshake::new(crate::timer::Clock::start().stamp(std::time::Instant::now())).unwrap();
        let right = answer(&key, hs.challenge());
        assert_eq!(hs.take_answer(&right[..31]), 31);
        assert_eq!(hs.verdict(&auth), None);
        let mut rest = right[31..].to_vec();
        rest.extend_from_slice(b"frames");
        assert_eq!(hs.take_answer(&rest), 1);
        assert_eq!(hs.verdict(&auth), Some(true));
    }

    #[test]
    fn wrong_key_is_refused() {
        let auth = Authenticator::new(&[1u8; 32]);
        let mut hs =
            Handshake::new(crate::timer::Clock::start().stamp(std::time::Instant::now())).unwrap();
        let wrong = answer(&[2u8; 32], hs.challenge());
        hs.take_answer(&wrong);
        assert_eq!(hs.verdict(&auth), Some(false));
    }
}
