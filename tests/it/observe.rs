//! Watching the loop: the per-turn summary on its own log target, and a
//! bounded trace of turns as a Chrome/Perfetto timeline.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::*;

/// Starts `frameloop serve` with `RUST_LOG=filter` and `args`.
fn serve_logging(
    filter: &str,
    args: &[&str],
) -> (
    ServerProcess,
    std::net::SocketAddr,
    std::sync::mpsc::Receiver<String>,
) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_frameloop"));
    command
        .args(["serve", "--addr", "127.0.0.1:0"])
        .args(args)
        .env("RUST_LOG", filter)
        .stderr(Stdio::piped());
    spawn_server(command)
}

#[test]
fn the_turn_summary_has_its_own_target_one_line_per_turn_without_the_steps() {
    let (mut server, addr, lines) = serve_logging("info,frameloop::turn=debug", &[]);
    let mut s = connect(addr);
    for i in 0..20 {
        assert_eq!(echo(&mut s, &tagged(i, 100)), tagged(i, 100));
    }
    drop(s);
    terminate(&server);
    wait_with_limit(&mut server, Duration::from_secs(10));
    let log: Vec<String> = lines.iter().collect();
    let turns: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("frameloop::turn"))
        .collect();
    assert!(turns.len() >= 20, "a line per turn: {turns:?}");
    let busy = turns
        .iter()
        .find(|l| l.contains("1 reads, 1 frames, 104 bytes written"))
        .unwrap_or_else(|| panic!("a turn that echoed one frame: {turns:#?}"));
    assert!(
        busy.contains("waited ") && busy.contains("1 connection") && busy.contains("1 open"),
        "{busy}"
    );
    assert!(
        !log.iter().any(|l| l.contains("TRACE")),
        "no per-step lines"
    );
}

#[test]
fn serve_trace_records_a_bounded_window_as_a_chrome_trace() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("turns.json");
    let (mut server, addr, lines) = serve_process(
        &[],
        &["--trace", path.to_str().unwrap(), "--trace-turns", "40"],
    );
    let mut clients: Vec<_> = (0..3).map(|_| connect(addr)).collect();
    for round in 0..30 {
        for (i, s) in clients.iter_mut().enumerate() {
            let p = tagged(round * 10 + i as u32, 64);
            assert_eq!(echo(s, &p), p);
        }
    }
    terminate(&server);
    wait_with_limit(&mut server, Duration::from_secs(10));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("trace: ") && l.contains("over 40 turns"))
    );
    let trace = std::fs::read_to_string(&path).unwrap();
    // A valid trace: checked by Python's json module, the same parser the
    // script that draws it uses.
    let check = Command::new("python3")
        .arg("-c")
        .arg(
            "import json,sys\n\
             t=json.load(open(sys.argv[1]))['traceEvents']\n\
             spans=[e for e in t if e['ph']=='X']\n\
             names={e['name'] for e in spans}\n\
             assert {'poll','read','dispatch','write','accept'} <= names, names\n\
             assert max(e['args']['turn'] for e in spans) < 40\n\
             assert all('conn' in e['args'] for e in spans if e['name'] in ('read','dispatch','write'))\n\
             assert any(e['ph']=='C' and e['name'].startswith('connections open') for e in t)\n\
             assert all(e['dur'] >= 0 and e['ts'] >= 0 for e in spans)\n\
             print(len(spans))",
        )
        .arg(&path)
        .output()
        .expect("python3");
    assert!(
        check.status.success(),
        "{}\n{:.300}",
        String::from_utf8_lossy(&check.stderr),
        trace
    );
}

#[test]
fn a_burst_of_connects_is_accepted_a_batch_at_a_time_across_turns() {
    let (mut server, addr, lines) = serve_logging("info,frameloop::turn=debug", &[]);
    let pid = nix::unistd::Pid::from_raw(server.id() as i32);
    // Stopped, the server lets 1,500 connects pile up in its listen queue.
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    let clients: Vec<_> = (0..1_500)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
    let mut open = Vec::new();
    for line in lines.iter() {
        if let Some(n) = line
            .strip_suffix(" open")
            .and_then(|l| l.rsplit(' ').next())
        {
            open.push(n.parse::<usize>().unwrap());
            if open.last() == Some(&1_500) {
                break;
            }
        }
    }
    let most = open
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]))
        .max()
        .unwrap_or(0);
    assert!(most <= 512, "{most} accepted in one turn: {open:?}");
    drop(clients);
    terminate(&server);
    wait_with_limit(&mut server, Duration::from_secs(10));
}
