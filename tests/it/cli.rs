//! The `frameloop` binary as a person uses it: errors are one line and exit 2.

use std::net::TcpListener;
use std::process::Output;
use std::time::Duration;

use crate::common::*;

fn assert_one_line_error(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.contains(" INFO ")).collect();
    assert_eq!(lines.len(), 1, "one line, got: {stderr}");
    assert!(lines[0].contains(needle), "{:?} lacks {needle:?}", lines[0]);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn port_in_use_is_one_line_and_exit_code_2() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = frameloop(&["serve", "--addr", &addr]);
    assert_one_line_error(&out, "address already in use");
}

#[test]
fn unparsable_address_is_refused_with_exit_code_2() {
    let out = frameloop(&["serve", "--addr", "localhost:nine"]);
    assert_eq!(out.status.code(), Some(2));
    assert_one_line_error(&out, "cannot resolve localhost:nine");
}

#[test]
fn missing_key_file_is_one_line_and_exit_code_2() {
    let out = frameloop(&[
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--key-file",
        "/nonexistent/key",
    ]);
    assert_one_line_error(&out, "cannot read key file /nonexistent/key");
}

#[test]
fn short_key_is_refused_at_start_up() {
    let path = std::env::temp_dir().join(format!("frameloop-short-{}", std::process::id()));
    std::fs::write(&path, "too short\n").unwrap();
    let out = frameloop(&[
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--key-file",
        path.to_str().unwrap(),
    ]);
    std::fs::remove_file(&path).unwrap();
    assert_one_line_error(&out, "holds 9 bytes; an HMAC-SHA256 key needs at least 32");
}

#[test]
fn keygen_prints_a_usable_key_and_client_authenticates_with_it() {
    let out = frameloop(&["keygen"]);
    assert!(out.status.success());
    let key = String::from_utf8(out.stdout).unwrap();
    assert_eq!(key.trim_end().len(), 64);
    let path = std::env::temp_dir().join(format!("frameloop-key-{}", std::process::id()));
    std::fs::write(&path, &key).unwrap();
    let key_path = path.to_str().unwrap();

    let (mut server, addr, _lines) = serve_process(&[], &["--key-file", key_path]);
    let addr_text = addr.to_string();
    let ok = frameloop(&[
        "client",
        "--addr",
        &addr_text,
        "--key-file",
        key_path,
        "hello",
        "world",
    ]);
    assert_eq!(String::from_utf8_lossy(&ok.stdout), "hello\nworld\n");

    let wrong = std::env::temp_dir().join(format!("frameloop-wrong-{}", std::process::id()));
    std::fs::write(&wrong, "x".repeat(40)).unwrap();
    let refused = frameloop(&[
        "client",
        "--addr",
        &addr_text,
        "--key-file",
        wrong.to_str().unwrap(),
        "hi",
    ]);
    assert_one_line_error(
        &refused,
        "closed the connection during authentication: wrong key?",
    );
    let refused_text = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(
        refused_text.matches(&addr_text).count(),
        1,
        "the address once: {refused_text}"
    );

    server.kill().unwrap();
    server.wait().unwrap();
    std::fs::remove_file(&path).unwrap();
    std::fs::remove_file(&wrong).unwrap();
}

#[test]
fn sigterm_flushes_and_exits_zero_with_a_summary() {
    let (mut server, addr, _lines) = serve_process(&[], &[]);
    let mut s = connect(addr);
    assert_eq!(echo(&mut s, b"before"), b"before");
    terminate(&server);
    assert!(closed_by_server(&mut s));
    let status = wait_with_limit(&mut server, Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
}

#[test]
fn a_key_against_a_server_without_one_gives_up_after_the_timeout_in_one_line() {
    let server = start(loopback_config(), frameloop::Echo);
    let key = std::env::temp_dir().join(format!("frameloop-nokey-{}", std::process::id()));
    std::fs::write(&key, "k".repeat(40)).unwrap();
    let started = std::time::Instant::now();
    let out = frameloop(&[
        "client",
        "--addr",
        &server.addr().to_string(),
        "--key-file",
        key.to_str().unwrap(),
        "--timeout",
        "300ms",
        "hi",
    ]);
    std::fs::remove_file(&key).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "waited too long"
    );
    assert_one_line_error(
        &out,
        "sent no authentication challenge within 300ms: it probably runs without --key-file",
    );
}

#[test]
fn every_duration_flag_at_its_extremes_is_refused_in_one_line_not_a_panic() {
    let huge = ["10000000000000000000", "9223372036854775807"];
    for flag in [
        "--stats-interval",
        "--idle-timeout",
        "--handshake-timeout",
        "--frame-timeout",
        "--shutdown-timeout",
        "--slow-reader-timeout",
        "--linger",
    ] {
        for value in huge {
            let out = frameloop(&["serve", "--addr", "127.0.0.1:0", flag, value]);
            assert_one_line_error(&out, flag);
        }
    }
}

#[test]
fn values_that_would_refuse_every_client_or_spin_are_refused_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, "k".repeat(40)).unwrap();
    let key = key.to_str().unwrap();
    for (args, needle) in [
        (
            vec!["--stats-interval", "0.000001"],
            "--stats-interval must be at least",
        ),
        (
            vec!["--key-file", key, "--handshake-timeout", "0"],
            "--handshake-timeout must be above zero",
        ),
        (
            vec!["--max-connections", "0"],
            "--max-connections must be at least 1",
        ),
        (vec!["--max-frame", "0"], "--max-frame must be at least 1"),
        (vec!["--reactors", "0"], "not a number of reactors"),
        (
            vec!["--low-water", "100", "--high-water", "10"],
            "--low-water 100 exceeds --high-water 10",
        ),
        (
            vec!["--reactors", "100000"],
            "--reactors must be between 1 and 1024",
        ),
    ] {
        let mut all = vec!["serve", "--addr", "127.0.0.1:0"];
        all.extend(args);
        assert_one_line_error(&frameloop(&all), needle);
    }
}

#[test]
fn the_client_gives_up_on_a_server_that_never_answers_after_its_timeout() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap(); // accepts, never answers
    let addr = silent.local_addr().unwrap().to_string();
    let started = std::time::Instant::now();
    let out = frameloop(&["client", "--addr", &addr, "--timeout", "300ms", "hello?"]);
    assert_one_line_error(&out, "no reply within the timeout");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn a_keyless_client_against_a_keyed_server_is_told_to_use_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, "k".repeat(40)).unwrap();
    let (mut server, addr, _lines) = serve_process(&[], &["--key-file", key.to_str().unwrap()]);
    let started = std::time::Instant::now();
    let out = frameloop(&["client", "--addr", &addr.to_string(), "hi"]);
    assert_one_line_error(&out, "it probably requires a key (--key-file)");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "no waiting for a timeout"
    );
    server.kill().unwrap();
    let _ = server.wait();
}

#[test]
fn addresses_may_be_host_names() {
    let (mut server, addr, _lines) = serve_process(&[], &[]);
    let by_name = format!("localhost:{}", addr.port());
    let out = frameloop(&["client", "--addr", &by_name, "named"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "named\n");
    server.kill().unwrap();
    let _ = server.wait();
    let out = frameloop(&["serve", "--addr", "no-such-host.invalid:9000"]);
    assert_one_line_error(&out, "cannot resolve no-such-host.invalid:9000");
}

#[test]
fn several_reactors_refuse_a_port_another_server_serves() {
    let (mut first, addr, _lines) = serve_process(&[], &["--reactors", "2"]);
    let out = frameloop(&["serve", "--addr", &addr.to_string(), "--reactors", "2"]);
    assert_one_line_error(&out, "address already in use");
    first.kill().unwrap();
    let _ = first.wait();
}

#[test]
fn a_client_timeout_out_of_range_and_an_unwritable_trace_file_are_refused_at_start() {
    let out = frameloop(&[
        "client",
        "--udp",
        "--addr",
        "127.0.0.1:9",
        "--timeout",
        "1.5e19",
        "hi",
    ]);
    assert_one_line_error(&out, "--timeout must be above zero and at most a year");
    let out = frameloop(&[
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--trace",
        "/nonexistent/dir/turns.json",
    ]);
    assert_one_line_error(&out, "cannot create trace file /nonexistent/dir/turns.json");
}
