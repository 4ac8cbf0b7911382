//! What the bench sends and what it accepts back.
//!
//! Every request payload is derived from its connection id and sequence
//! number, so the reply to request `seq` of connection `id` can be checked
//! byte for byte without keeping a copy of what was sent:
//!
//! ```text
//! offset 0              4                      12                     size
//!        +--------------+----------------------+----------------------+
//!        | conn id: u32 | sequence: u64        | filler: f(id, seq, i) |
//!        +--------------+----------------------+----------------------+
//!  (all big-endian; cut to `size` bytes; framed with the usual 4-byte
//!   length unless the codec is raw)
//! ```
//!
//! This module owns the bytes only: it never sees a socket or a clock.

/// How a reply is checked against the request it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verify {
    /// The reply is the request, byte for byte (`frameloop serve`, any echo).
    #[default]
    Echo,
    /// The reply is the request with ASCII letters upper-cased
    /// (`frameloop serve --handler upper`).
    Upper,
    /// Any reply counts. With `--codec frame` a reply is one frame of any
    /// length; with `--codec raw` it is `size` bytes, whatever they are.
    None,
}

/// Writes the payload of request `seq` on connection `id`, cut to `size`,
/// through `put` (a `Vec`'s `extend_from_slice`, or a frame's payload writer
/// from [`crate::frame::encode_with`], so a request is built in place).
pub fn write_payload(id: u32, seq: u64, size: usize, mut put: impl FnMut(&[u8])) {
    put(&id.to_be_bytes()[..size.min(4)]);
    if size > 4 {
        put(&seq.to_be_bytes()[..(size - 4).min(8)]);
    }
    let seed = (id as u64)
        .wrapping_mul(131)
        .wrapping_add(seq.wrapping_mul(31));
    // The filler in stack-sized pieces: no allocation per request.
    let mut chunk = [0u8; 256];
    let mut i = 12;
    while i < size {
        let n = (size - i).min(chunk.len());
        for (k, byte) in chunk[..n].iter_mut().enumerate() {
            *byte = seed.wrapping_add((i + k) as u64) as u8;
        }
        put(&chunk[..n]);
        i += n;
    }
}

/// Appends the payload of request `seq` on connection `id` to `out`.
pub fn payload_into(out: &mut Vec<u8>, id: u32, seq: u64, size: usize) {
    write_payload(id, seq, size, |bytes| out.extend_from_slice(bytes));
}

/// Checks replies; keeps one scratch buffer so checking allocates nothing
/// in the steady state.
#[derive(Debug)]
pub struct Checker {
    verify: Verify,
    size: usize,
    expected: Vec<u8>,
}

impl Checker {
    pub fn new(verify: Verify, size: usize) -> Checker {
        Checker {
            verify,
            size,
            expected: Vec::with_capacity(size),
        }
    }

    /// True if `reply` is a correct answer to request `seq` of connection `id`.
    pub fn check(&mut self, reply: &[u8], id: u32, seq: u64) -> bool {
        if self.verify == Verify::None {
            return true;
        }
        self.expected.clear();
        payload_into(&mut self.expected, id, seq, self.size);
        if self.verify == Verify::Upper {
            self.expected.make_ascii_uppercase();
        }
        reply == self.expected.as_slice()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_differ_by_connection_and_sequence_and_have_the_asked_size() {
        for size in [0, 1, 4, 5, 12, 13, 64, 4096] {
            let mut a = Vec::new();
            payload_into(&mut a, 1, 7, size);
            assert_eq!(a.len(), size);
        }
        let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
        payload_into(&mut a, 1, 7, 64);
        payload_into(&mut b, 2, 7, 64);
        payload_into(&mut c, 1, 8, 64);
        assert!(a != b && a != c && b != c);
    }

    #[test]
    fn each_verify_mode_accepts_its_own_reply_and_refuses_the_others() {
        let mut request = Vec::new();
        payload_into(&mut request, 3, 1000, 300);
        let upper = request.to_ascii_uppercase();
        assert_ne!(request, upper, "the filler holds lower-case letters");
        let mut echo = Checker::new(Verify::Echo, 300);
        assert!(echo.check(&request, 3, 1000));
        assert!(!echo.check(&upper, 3, 1000));
        assert!(!echo.check(&request, 3, 1001));
        let mut up = Checker::new(Verify::Upper, 300);
        assert!(up.check(&upper, 3, 1000));
        assert!(!up.check(&request, 3, 1000));
        assert!(Checker::new(Verify::None, 300).check(b"anything", 3, 1000));
    }
}
