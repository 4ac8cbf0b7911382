//! Python clients from the notes' world talk to frameloop: `struct.pack('!I')`
//! framing, `hmac.new(key, challenge, hashlib.sha256)`, UDP `sendto`.
//!
//! Each test runs `python3` for real. Without python3 they fail, saying so:
//! CI installs it (`.ci/run`), and a silent pass would prove nothing.

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::common::*;
use frameloop::{CloseReason, Codec, Config, Echo, Upper};

/// How long one Python run may take before the test fails.
const PYTHON_LIMIT: Duration = Duration::from_secs(20);

/// A key as `frameloop keygen` makes them: 64 hex characters.
const KEY: &str = "5f1e0c8a9b2d4e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7";

/// Runs `python3 ARGS` and returns its output, killing it after PYTHON_LIMIT
/// (the notes' clients have no timeouts of their own).
fn python3(args: &[&str]) -> Output {
    let mut child = Command::new("python3")
        .args(args)
        // No __pycache__ left in examples/python by auth_client's import.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("python3 is needed for this test (CI's .ci/run installs it): {e}")
        });
    // The scripts print a few lines: far less than a pipe holds, so reading
    // after the exit cannot deadlock.
    let status = wait_with_limit(&mut child, PYTHON_LIMIT);
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_end(&mut stderr)
        .unwrap();
    Output {
        status,
        stdout,
        stderr,
    }
}

/// Runs `examples/python/SCRIPT ARGS`.
fn script(name: &str, args: &[&str]) -> Output {
    let path = format!("{}/examples/python/{name}", env!("CARGO_MANIFEST_DIR"));
    let mut all = vec![path.as_str()];
    all.extend_from_slice(args);
    python3(&all)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}; stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A file in the temp directory, removed when dropped.
struct TempFile(tempfile::TempPath);

impl TempFile {
    fn new(name: &str, contents: &[u8]) -> TempFile {
        let mut file = tempfile::Builder::new().prefix(name).tempfile().unwrap();
        std::io::Write::write_all(&mut file, contents).unwrap();
        TempFile(file.into_temp_path())
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

#[test]
fn python_framed_client_echoes_empty_small_and_70000_byte_frames() {
    let server = start(loopback_config(), Echo);
    let port = server.addr().port().to_string();
    let out = script("echo_client.py", &["--port", &port]);
    assert_success(&out);
    // hello, the empty frame, then the 70,000 x's cut to 60 for the screen.
    assert_eq!(stdout(&out), format!("hello\n\n{}\n", "x".repeat(60)));
    let stats = server.stop().unwrap();
    assert_eq!(stats.frames, 3);
    assert_eq!(stats.bytes_in, 3 * 4 + 5 + 70_000);
}

#[test]
fn python_framed_client_exits_nonzero_when_a_reply_differs() {
    let server = start(loopback_config(), Upper);
    let port = server.addr().port().to_string();
    let out = script("echo_client.py", &["--port", &port, "hello"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("mismatch: sent b'hello'"));
}

#[test]
fn python_hmac_client_authenticates_and_a_wrong_key_is_told_so() {
    let config = Config {
        key: Some(frameloop::Key::new(KEY.as_bytes().to_vec()).unwrap()),
        ..loopback_config()
    };
    let server = start(config, Echo);
    let port = server.addr().port().to_string();
    let key_file = TempFile::new("py-key", format!("{KEY}\n").as_bytes());
    let out = script(
        "auth_client.py",
        &[
            "--port",
            &port,
            "--key-file",
            key_file.path(),
            "hi",
            "again",
        ],
    );
    assert_success(&out);
    assert_eq!(stdout(&out), "hi\nagain\n");

    let wrong = TempFile::new("py-wrong-key", format!("{}\n", &KEY[1..]).as_bytes());
    let out = script(
        "auth_client.py",
        &["--port", &port, "--key-file", wrong.path()],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong key?"));
    assert_eq!(stdout(&out), "");

    let stats = server.stop().unwrap();
    assert_eq!(stats.closed(CloseReason::AuthFailed), 1);
    assert_eq!(stats.frames, 2);
}

#[test]
fn python_client_reads_key_files_exactly_as_load_key_does() {
    // Endings load_key strips one of, and a key that itself ends in a newline.
    let endings: [&[u8]; 5] = [b"", b"\n", b"\r\n", b"\n\n", b"\r\n\r\n"];
    for (i, ending) in endings.into_iter().enumerate() {
        let mut contents = KEY.as_bytes().to_vec();
        contents.extend_from_slice(ending);
        let key_file = TempFile::new(&format!("py-key-ending-{i}"), &contents);
        let key = frameloop::Key::from_file(&key_file.0).unwrap();
        let server = start(
            Config {
                key: Some(key),
                ..loopback_config()
            },
            Echo,
        );
        let port = server.addr().port().to_string();
        let out = script(
            "auth_client.py",
            &["--port", &port, "--key-file", key_file.path(), "ok"],
        );
        assert!(
            out.status.success(),
            "key file ending {ending:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(stdout(&out), "ok\n");
    }
}

#[test]
fn python_udp_client_gets_its_datagram_upper_cased() {
    let config = Config {
        udp: true,
        ..loopback_config()
    };
    let server = start(config, Upper);
    let port = server.addr().port().to_string();
    let out = script("udp_client.py", &["--port", &port]);
    assert_success(&out);
    assert_eq!(stdout(&out), "b'HELLO'\n");
    assert_eq!(server.stop().unwrap().datagrams, 1);
}

#[test]
fn python_udp_client_seals_its_datagram_for_a_keyed_server() {
    let key = TempFile::new("py-udp-key", format!("{KEY}\n").as_bytes());
    let config = Config {
        udp: true,
        key: Some(frameloop::Key::new(KEY.as_bytes().to_vec()).unwrap()),
        ..loopback_config()
    };
    let server = start(config, Upper);
    let port = server.addr().port().to_string();
    let out = script(
        "udp_client.py",
        &[
            "--port",
            &port,
            "--key-file",
            key.path(),
            "--message",
            "sealed",
        ],
    );
    assert_success(&out);
    assert_eq!(stdout(&out), "b'SEALED'\n");
    // Without the key, the same server answers nothing, and says why not.
    let out = script("udp_client.py", &["--port", &port, "--timeout", "0.3"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does it use --key-file?"));
    let stats = server.stop().unwrap();
    assert_eq!((stats.datagrams, stats.datagrams_forged), (2, 1));
}

#[test]
fn the_notes_udp_client_works_unchanged_against_serve_udp_with_upper() {
    let (serve, addr, _log) = serve_process(&[], &["--udp", "--handler", "upper"]);
    let _serve = serve; // killed on drop
    // The notes' client, byte for byte, but for the port the server got.
    let notes_client = "import socket\n\
                        sk = socket.socket(type = socket.SOCK_DGRAM)\n\
                        \n\
                        sk.sendto(b'hello', ('127.0.0.1', 9000))\n\
                        ret = sk.recv(1024)\n\
                        print(ret)\n\
                        sk.close()\n";
    let code = notes_client.replace("9000", &addr.port().to_string());
    let out = python3(&["-c", &code]);
    assert_success(&out);
    assert_eq!(stdout(&out), "b'HELLO'\n");
}

#[test]
fn the_notes_nonblocking_upper_client_works_unchanged_against_raw_mode() {
    let config = Config {
        codec: Codec::Raw,
        ..loopback_config()
    };
    let server = start(config, Upper);
    // The notes' client, with its endless loop bounded to three turns.
    let code = format!(
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
    let out = python3(&["-c", &code]);
    assert_success(&out);
    assert_eq!(stdout(&out), "b'HELLO'\nb'HELLO'\nb'HELLO'\n");
}
