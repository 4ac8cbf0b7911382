//! Proving a client knows the shared key: HMAC-SHA256, over TCP and UDP.
//!
//! With a key set ([`crate::Config::key`]), no byte from a client reaches the
//! handler until the client has proved it holds the key, and that holds for
//! every socket the server has:
//!
//! - **TCP**: a challenge-response handshake when the connection opens
//!   ([`handshake`]): the server sends 32 random bytes, the client answers
//!   with HMAC-SHA256(key, challenge), checked in constant time.
//! - **UDP**: every datagram carries a timestamp, a random nonce and an
//!   HMAC-SHA256 tag over them and the payload ([`datagram`]); the server
//!   drops (and counts) forged, stale and replayed datagrams, and tags its
//!   replies the same way with a label of their own.
//!
//! This module owns the key ([`Key`], whose `Debug` never shows it), key
//! files, and both protocols' bytes. It never touches a socket: the reactor
//! and the clients feed it bytes and act on the verdict. It authenticates
//! the client only; it neither encrypts nor protects the frames that follow
//! a TCP handshake, nor proves the server to a TCP client.

pub mod datagram;
pub mod handshake;

use std::fmt;
use std::path::Path;

use crate::error::Error;

pub use handshake::{answer, answer_challenge};

/// The shortest key accepted: the hash output size (RFC 2104 advises no less).
pub const MIN_KEY_LEN: usize = 32;

/// The longest key file read.
const MAX_KEY_FILE: u64 = 4096;

/// A shared secret of at least [`MIN_KEY_LEN`] bytes.
///
/// Its `Debug` says how long it is and nothing else, so a printed
/// [`crate::Config`] never leaks it.
///
/// ```
/// let key = frameloop::Key::new(vec![7u8; 32]).unwrap();
/// assert_eq!(format!("{key:?}"), "Key(32 bytes, redacted)");
/// assert!(frameloop::Key::new(b"short".to_vec()).is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Key(Vec<u8>);

impl Key {
    /// A key from its bytes; refused if shorter than [`MIN_KEY_LEN`].
    pub fn new(bytes: Vec<u8>) -> Result<Key, Error> {
        if bytes.len() < MIN_KEY_LEN {
            return Err(Error::KeyTooShort {
                origin: "the key".into(),
                len: bytes.len(),
            });
        }
        Ok(Key(bytes))
    }

    /// Reads a key file: its bytes, less one trailing `\n` or `\r\n`.
    ///
    /// Refuses files it cannot read and keys shorter than [`MIN_KEY_LEN`].
    pub fn from_file(path: &Path) -> Result<Key, Error> {
        let file_error = |e| Error::KeyFile(path.to_path_buf(), e);
        let mut key = Vec::new();
        let file = std::fs::File::open(path).map_err(file_error)?;
        // A key is short: never read more than a few kilobytes (a path
        // such as /dev/zero would otherwise fill memory).
        std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_KEY_FILE + 1), &mut key)
            .map_err(file_error)?;
        if key.len() as u64 > MAX_KEY_FILE {
            return Err(file_error(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("longer than {MAX_KEY_FILE} bytes: not a key"),
            )));
        }
        if key.ends_with(b"\r\n") {
            key.truncate(key.len() - 2);
        } else if key.ends_with(b"\n") {
            key.truncate(key.len() - 1);
        }
        if key.len() < MIN_KEY_LEN {
            return Err(Error::KeyTooShort {
                origin: format!("key file {}", path.display()),
                len: key.len(),
            });
        }
        Ok(Key(key))
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({} bytes, redacted)", self.0.len())
    }
}

/// A fresh key as 64 hex characters (32 random bytes), for `frameloop keygen`.
/// The key is the text itself: the 64 ASCII bytes, as a file read gives them.
pub fn generate_key() -> std::io::Result<String> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(std::io::Error::other)?;
    Ok(raw.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_loses_one_trailing_newline_and_must_be_long_enough() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, format!("{}\r\n", "k".repeat(32))).unwrap();
        assert_eq!(Key::from_file(&path).unwrap().as_bytes(), vec![b'k'; 32]);
        std::fs::write(&path, format!("{}\n", "k".repeat(31))).unwrap();
        let err = Key::from_file(&path).unwrap_err();
        assert!(matches!(err, Error::KeyTooShort { len: 31, .. }), "{err}");
        assert!(err.to_string().contains("holds 31 bytes"), "{err}");
        assert!(matches!(
            Key::from_file(&dir.path().join("missing")),
            Err(Error::KeyFile(..))
        ));
    }

    #[test]
    fn generated_keys_are_64_hex_chars_and_differ() {
        let a = generate_key().unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, generate_key().unwrap());
    }

    #[test]
    fn a_config_printed_with_debug_does_not_show_the_key() {
        let config = crate::Config {
            key: Some(Key::new(b"correct horse battery staple 1234".to_vec()).unwrap()),
            ..crate::Config::default()
        };
        let printed = format!("{config:?}");
        assert!(!printed.contains("horse"), "{printed}");
        assert!(printed.contains("redacted"));
    }
}
