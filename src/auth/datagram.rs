//! UDP authentication: every datagram sealed with a time, a nonce and a tag.
//!
//! A datagram has no connection to run a handshake on, so with a key set
//! each one proves itself. Requests and replies have the same layout:
//!
//! ```text
//!  offset 0            8                       24              24+n            56+n
//!         +------------+-----------------------+---------------+---------------+
//!         | time       | nonce                 | payload       | tag           |
//!         | u64, BE    | 16 random bytes       | n bytes       | 32 bytes      |
//!         +------------+-----------------------+---------------+---------------+
//!  time: Unix time in milliseconds, when it was sent
//!  tag:  HMAC-SHA256(key, label + time + nonce + payload)
//!  label: b"frameloop udp request v1" (client to server)
//!         b"frameloop udp reply v1"   (server to client; the nonce is the request's)
//! ```
//!
//! Python (standard library only), as in `examples/python/udp_client.py`:
//!
//! ```python
//! header = struct.pack('!Q', int(time.time() * 1000)) + os.urandom(16)
//! tag = hmac.new(key, b'frameloop udp request v1' + header + payload, hashlib.sha256).digest()
//! sock.sendto(header + payload + tag, addr)
//! ```
//!
//! The server drops, and counts, a datagram that is too short to hold the
//! header and tag, whose tag is wrong (checked first, in constant time, so a
//! forgery costs one MAC and never touches the replay cache), whose time is
//! more than [`WINDOW`] away from the server's clock, or whose nonce it has
//! already seen within the window. The replay cache is bounded
//! ([`REPLAY_CACHE`] nonces); when it is full, datagrams are refused (fail
//! closed) until entries expire. Replies carry the request's nonce, so a
//! client can tell the reply to *its* request from a replayed old one.
//!
//! The labels keep the three MACs of the protocol apart: a request tag is
//! never a valid reply tag, and neither is ever a valid TCP handshake answer
//! (that MAC's input is the bare 32-byte challenge).

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hmac::Mac;

use super::Key;
use super::handshake::{Authenticator, HmacSha256};

/// The label of client-to-server datagrams.
pub const REQUEST_LABEL: &[u8] = b"frameloop udp request v1";
/// The label of server-to-client datagrams.
pub const REPLY_LABEL: &[u8] = b"frameloop udp reply v1";
/// Bytes of time and nonce before the payload.
pub const HEADER_LEN: usize = 8 + NONCE_LEN;
/// Bytes of tag after the payload.
pub const TAG_LEN: usize = 32;
/// Bytes a sealed datagram adds to its payload.
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;
/// Bytes of nonce.
pub const NONCE_LEN: usize = 16;
/// How far a datagram's time may be from the receiver's clock.
pub const WINDOW: Duration = Duration::from_secs(30);
/// Nonces the server remembers at most (each for twice the window).
pub const REPLAY_CACHE: usize = 1 << 20;

/// A nonce: 16 random bytes.
pub type Nonce = [u8; NONCE_LEN];

/// Why a datagram was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejected {
    /// Too short to hold a time, a nonce and a tag.
    #[error("too short to be an authenticated datagram")]
    Malformed,
    /// The tag does not match: another key, or altered bytes.
    #[error("wrong tag (another key, or altered)")]
    BadTag,
    /// The time is more than the window away from this clock.
    #[error("time outside the {}-second window", WINDOW.as_secs())]
    Stale,
    /// This nonce was already accepted within the window.
    #[error("nonce already seen (a replay)")]
    Replayed,
    /// The replay cache is full: refused rather than risk a replay.
    #[error("replay cache full")]
    CacheFull,
    /// A reply that does not answer the request it was matched with.
    #[error("reply to another request")]
    WrongNonce,
}

/// A datagram whose tag checked out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened<'a> {
    /// When it was sent, in Unix milliseconds.
    pub time_ms: u64,
    /// Its nonce.
    pub nonce: Nonce,
    /// What it carries.
    pub payload: &'a [u8],
}

/// The wall clock in Unix milliseconds (0 if it is before 1970).
pub fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A fresh random nonce.
pub fn fresh_nonce() -> std::io::Result<Nonce> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(std::io::Error::other)?;
    Ok(nonce)
}

/// Appends the sealed datagram for `payload` to `out`.
pub fn seal(
    key: &Key,
    label: &[u8],
    time_ms: u64,
    nonce: &Nonce,
    payload: &[u8],
    out: &mut Vec<u8>,
) {
    let start = out.len();
    out.extend_from_slice(&time_ms.to_be_bytes());
    out.extend_from_slice(nonce);
    out.extend_from_slice(payload);
    let tag = tag(
        Authenticator::new(key.as_bytes()).mac(),
        label,
        &out[start..],
    );
    out.extend_from_slice(&tag);
}

/// Checks a sealed datagram's layout and tag (not its time or nonce: those
/// are the receiver's policy: the server's is described in the module docs).
pub fn open<'a>(key: &Key, label: &[u8], datagram: &'a [u8]) -> Result<Opened<'a>, Rejected> {
    open_with(Authenticator::new(key.as_bytes()).mac(), label, datagram)
}

fn open_with<'a>(
    mac: HmacSha256,
    label: &[u8],
    datagram: &'a [u8],
) -> Result<Opened<'a>, Rejected> {
    if datagram.len() < OVERHEAD {
        return Err(Rejected::Malformed);
    }
    let (sealed, tag) = datagram.split_at(datagram.len() - TAG_LEN);
    let mut mac = mac;
    mac.update(label);
    mac.update(sealed);
    mac.verify_slice(tag).map_err(|_| Rejected::BadTag)?;
    let (time, rest) = sealed.split_at(8);
    let (nonce, payload) = rest.split_at(NONCE_LEN);
    Ok(Opened {
        time_ms: u64::from_be_bytes(time.try_into().unwrap_or_default()),
        nonce: nonce.try_into().unwrap_or_default(),
        payload,
    })
}

fn tag(mut mac: HmacSha256, label: &[u8], sealed: &[u8]) -> [u8; TAG_LEN] {
    mac.update(label);
    mac.update(sealed);
    mac.finalize().into_bytes().into()
}

/// The client's side: a request sealed now with a fresh nonce, and the
/// nonce, to match the reply with.
pub fn seal_request(key: &Key, payload: &[u8]) -> std::io::Result<(Vec<u8>, Nonce)> {
    let nonce = fresh_nonce()?;
    let mut out = Vec::with_capacity(payload.len() + OVERHEAD);
    seal(key, REQUEST_LABEL, unix_millis(), &nonce, payload, &mut out);
    Ok((out, nonce))
}

/// The client's side: the payload of the server's reply to the request
/// sealed with `nonce`.
pub fn open_reply<'a>(key: &Key, datagram: &'a [u8], nonce: &Nonce) -> Result<&'a [u8], Rejected> {
    let opened = open(key, REPLY_LABEL, datagram)?;
    if &opened.nonce != nonce {
        return Err(Rejected::WrongNonce);
    }
    Ok(opened.payload)
}

/// The server's side: checks requests (tag, time, replay) and seals replies.
///
/// Clones share one replay cache: with several reactors, the kernel hands
/// datagrams to them by source address and port, so a replay from another
/// port would reach another reactor, and must meet the same cache. (A lock,
/// on the UDP path only: TCP never takes it.)
#[derive(Debug, Clone)]
pub(crate) struct Guard {
    auth: Authenticator,
    replay: Arc<Mutex<ReplayCache>>,
}

impl Guard {
    pub fn new(key: &Key) -> Guard {
        Guard {
            auth: Authenticator::new(key.as_bytes()),
            replay: Arc::new(Mutex::new(ReplayCache::new(REPLAY_CACHE, 2 * WINDOW))),
        }
    }

    /// Accepts a request, or says why not. `now_ms` is the wall clock,
    /// `now` the loop's monotonic clock (the replay cache's).
    pub fn admit<'a>(
        &self,
        datagram: &'a [u8],
        now_ms: u64,
        now: Instant,
    ) -> Result<Opened<'a>, Rejected> {
        let opened = open_with(self.auth.mac(), REQUEST_LABEL, datagram)?;
        if opened.time_ms.abs_diff(now_ms) > WINDOW.as_millis() as u64 {
            return Err(Rejected::Stale);
        }
        let mut replay = self
            .replay
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        replay.insert(opened.nonce, opened.time_ms, now, now_ms)?;
        Ok(opened)
    }

    /// Seals a reply to the request that carried `nonce`: `out` holds
    /// [`HEADER_LEN`] bytes of room, then the reply's payload; the header is
    /// filled in and the tag appended.
    pub fn seal_reply(&self, nonce: &Nonce, now_ms: u64, out: &mut Vec<u8>) {
        out[..8].copy_from_slice(&now_ms.to_be_bytes());
        out[8..HEADER_LEN].copy_from_slice(nonce);
        let tag = tag(self.auth.mac(), REPLY_LABEL, out);
        out.extend_from_slice(&tag);
    }
}

/// Nonces seen recently. One is forgotten only when both clocks agree it
/// can no longer pass the window check: `keep` after it was seen (by the
/// monotonic clock), and its datagram's own time more than the window behind
/// the wall clock. (A wall clock stepped back keeps entries longer; the
/// cache then fills and refuses, rather than let an old datagram in again.)
#[derive(Debug)]
struct ReplayCache {
    seen: HashSet<Nonce>,
    /// The same nonces in the order they were seen: when each may expire,
    /// and the time its datagram carried.
    order: VecDeque<(Instant, u64, Nonce)>,
    capacity: usize,
    keep: Duration,
}

impl ReplayCache {
    fn new(capacity: usize, keep: Duration) -> ReplayCache {
        ReplayCache {
            seen: HashSet::new(),
            order: VecDeque::new(),
            capacity,
            keep,
        }
    }

    fn insert(
        &mut self,
        nonce: Nonce,
        time_ms: u64,
        now: Instant,
        now_ms: u64,
    ) -> Result<(), Rejected> {
        let window = WINDOW.as_millis() as u64;
        while let Some(&(expires, sent_ms, old)) = self.order.front() {
            if expires > now || sent_ms.saturating_add(window) >= now_ms {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&old);
        }
        // After a burst, give the memory back.
        if self.seen.capacity() > 4 * self.seen.len() + 1024 {
            self.seen.shrink_to_fit();
            self.order.shrink_to_fit();
        }
        if self.seen.contains(&nonce) {
            return Err(Rejected::Replayed);
        }
        if self.seen.len() >= self.capacity {
            return Err(Rejected::CacheFull);
        }
        self.seen.insert(nonce);
        self.order.push_back((now + self.keep, time_ms, nonce));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> Key {
        Key::new(vec![byte; 32]).unwrap()
    }

    #[test]
    fn a_sealed_request_opens_with_the_same_key_only() {
        let (datagram, nonce) = seal_request(&key(1), b"hello").unwrap();
        assert_eq!(datagram.len(), 5 + OVERHEAD);
        let opened = open(&key(1), REQUEST_LABEL, &datagram).unwrap();
        assert_eq!((opened.payload, opened.nonce), (&b"hello"[..], nonce));
        assert_eq!(
            open(&key(2), REQUEST_LABEL, &datagram),
            Err(Rejected::BadTag)
        );
        assert_eq!(open(&key(1), REPLY_LABEL, &datagram), Err(Rejected::BadTag));
        let mut altered = datagram.clone();
        altered[HEADER_LEN] ^= 1;
        assert_eq!(
            open(&key(1), REQUEST_LABEL, &altered),
            Err(Rejected::BadTag)
        );
        assert_eq!(
            open(&key(1), REQUEST_LABEL, &datagram[..OVERHEAD - 1]),
            Err(Rejected::Malformed)
        );
    }

    #[test]
    fn the_guard_refuses_stale_and_replayed_requests() {
        let guard = Guard::new(&key(1));
        let (now_ms, now) = (unix_millis(), Instant::now());
        let mut old = Vec::new();
        seal(
            &key(1),
            REQUEST_LABEL,
            now_ms - 31_000,
            &[9; 16],
            b"x",
            &mut old,
        );
        assert_eq!(guard.admit(&old, now_ms, now).unwrap_err(), Rejected::Stale);
        let (fresh, _) = seal_request(&key(1), b"x").unwrap();
        assert!(guard.admit(&fresh, now_ms, now).is_ok());
        assert_eq!(
            guard.admit(&fresh, now_ms, now).unwrap_err(),
            Rejected::Replayed
        );
        // Long after, the nonce is forgotten, but the time is stale by then.
        let later = now + 2 * WINDOW + Duration::from_secs(1);
        assert_eq!(
            guard.admit(&fresh, now_ms + 61_000, later).unwrap_err(),
            Rejected::Stale
        );
    }

    #[test]
    fn a_full_replay_cache_fails_closed_until_entries_expire() {
        let mut cache = ReplayCache::new(2, Duration::from_secs(60));
        let (now, now_ms) = (Instant::now(), unix_millis());
        cache.insert([1; 16], now_ms, now, now_ms).unwrap();
        cache.insert([2; 16], now_ms, now, now_ms).unwrap();
        assert_eq!(
            cache.insert([3; 16], now_ms, now, now_ms),
            Err(Rejected::CacheFull)
        );
        let later = now + Duration::from_secs(61);
        // The monotonic clock says forget, but a wall clock stepped back
        // says their datagrams could still pass: keep them, refuse.
        assert_eq!(
            cache.insert([3; 16], now_ms, later, now_ms),
            Err(Rejected::CacheFull)
        );
        assert!(
            cache
                .insert([3; 16], now_ms, later, now_ms + 61_000)
                .is_ok()
        );
    }

    #[test]
    fn a_reply_opens_only_for_its_own_request() {
        let guard = Guard::new(&key(1));
        let mut reply = vec![0; HEADER_LEN];
        reply.extend_from_slice(b"HELLO");
        guard.seal_reply(&[7; 16], unix_millis(), &mut reply);
        assert_eq!(open_reply(&key(1), &reply, &[7; 16]), Ok(&b"HELLO"[..]));
        assert_eq!(
            open_reply(&key(1), &reply, &[8; 16]),
            Err(Rejected::WrongNonce)
        );
        assert_eq!(open_reply(&key(2), &reply, &[7; 16]), Err(Rejected::BadTag));
    }
}
