//! Python clients from the notes' world talk to frameloop: `struct.pack('!I')`
//! framing, `hmac.new(key, challenge, hashlib.sha256)`, UDP `sendto`.

mod common;

use std::process::Command;

use common::*;
use frameloop::{Codec, Config, Echo, Upper};

const KEY: &str = "python-and-rust-share-this-32-byte-key!";

#[test]
fn python_framed_client_echoes_empty_small_and_70000_byte_frames() {
    let server = start(loopback_config(), Echo);
    let port = server.addr().port().to_string();
    let out = python("echo_client.py", &["--port", &port]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("hello\n\n"));
    assert_eq!(server.stop().unwrap().frames, 3);
}

#[test]
fn python_hmac_client_authenticates_and_a_wrong_key_is_told_so() {
    let config = Config {
        key: Some(KEY.as_bytes().to_vec()),
        ..loopback_config()
    };
    let server = start(config, Echo);
    let port = server.addr().port().to_string();
    let dir = std::env::temp_dir();
    let key_file = dir.join(format!("frameloop-py-key-{}", std::process::id()));
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    let out = python(
        "auth_client.py",
        &[
            "--port",
            &port,
            "--key-file",
            key_file.to_str().unwrap(),
            "hi",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");

    std::fs::write(&key_file, "a-different-key-that-is-long-enough!!").unwrap();
    let out = python(
        "auth_client.py",
        &["--port", &port, "--key-file", key_file.to_str().unwrap()],
    );
    std::fs::remove_file(&key_file).unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong key?"));
}

#[test]
fn python_udp_client_gets_its_datagram_upper_cased() {
    let config = Config {
        udp: true,
        ..loopback_config()
    };
    let server = start(config, Upper);
    let port = server.addr().port().to_string();
    let out = python("udp_client.py", &["--port", &port]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "b'HELLO'\n");
}

#[test]
fn the_notes_nonblocking_upper_client_works_unchanged_against_raw_mode() {
    let config = Config {
        codec: Codec::Raw,
        ..loopback_config()
    };
    let server = start(config, Upper);
    // The notes' client, with its endless loop bounded to three turns.
    let script = format!(
        "import socket, time\n\
         sk = socket.socket()\n\
         sk.connect(('127.0.0.1', {}))\n\
         for _ in range(3):\n    \
             sk.send(b'hello')\n    \
             msg = sk.recv(1024)\n    \
             print(msg)\n    \
             time.sleep(0.2)\n\
         sk.close()\n",
        server.addr().port()
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "b'HELLO'\nb'HELLO'\nb'HELLO'\n"
    );
}
