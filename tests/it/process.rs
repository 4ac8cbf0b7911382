//! The server as a separate process: graceful shutdown on SIGTERM under load,
//! and running out of file descriptors.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::common::*;

/// CPU time (user + system) the process used, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn sigterm_under_1000_busy_clients_echoes_every_frame_received_then_exits() {
    let (mut server, addr, lines) = serve_process(&[], &["--shutdown-timeout", "5s"]);
    const FRAMES: u32 = 20;
    let mut clients: Vec<TcpStream> = (0..1000).map(|_| connect(addr)).collect();
    for (i, s) in clients.iter_mut().enumerate() {
        let mut wire = Vec::new();
        for n in 0..FRAMES {
            wire.extend(frame(&tagged(i as u32 * FRAMES + n, 200)));
        }
        s.write_all(&wire).unwrap();
    }
    terminate(&server);
    let start = Instant::now();
    let mut echoed = 0u64;
    for (i, s) in clients.iter_mut().enumerate() {
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        let want: Vec<u8> = (0..FRAMES)
            .flat_map(|n| frame(&tagged(i as u32 * FRAMES + n, 200)))
            .collect();
        assert!(
            want.starts_with(&got),
            "client {i}: echo differs from what it sent"
        );
        assert_eq!(
            got.len() % want.len().div_ceil(FRAMES as usize),
            0,
            "client {i}: a partial echo"
        );
        echoed += (got.len() / (want.len() / FRAMES as usize)) as u64;
    }
    let status = wait_with_limit(&mut server, Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    assert!(
        start.elapsed() < Duration::from_secs(6),
        "took {:?}",
        start.elapsed()
    );
    let summary = lines
        .iter()
        .find(|l| l.starts_with("summary:"))
        .expect("a summary line");
    let frames: u64 = summary
        .split(" frames ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("frames in the summary");
    assert_eq!(
        frames, echoed,
        "every frame the server read was echoed: {summary}"
    );
    assert_eq!(
        echoed,
        1000 * FRAMES as u64,
        "every frame sent before the signal arrived"
    );
}

#[test]
fn out_of_file_descriptors_the_server_neither_spins_nor_stalls() {
    // 48 descriptors: ~10 for the process itself, the rest for connections.
    let (mut server, addr, lines) = serve_process(
        &["prlimit", "--nofile=48:48"],
        &["--max-connections", "1000"],
    );
    let mut clients: Vec<TcpStream> = (0..60).map(|_| connect(addr)).collect();
    for (i, s) in clients.iter_mut().enumerate() {
        s.write_all(&frame(&tagged(i as u32, 16))).unwrap();
    }
    // Those accepted are served; the others wait in the listen backlog.
    let mut served = Vec::new();
    let mut waiting = Vec::new();
    for (i, mut s) in clients.into_iter().enumerate() {
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        match read_frame(&mut s) {
            Ok(p) => {
                assert_eq!(p, tagged(i as u32, 16));
                served.push(s);
            }
            Err(_) => waiting.push((i, s)),
        }
    }
    assert!(
        !served.is_empty() && !waiting.is_empty(),
        "{} served, {} waiting",
        served.len(),
        waiting.len()
    );

    // Saturated: the server must not burn CPU retrying accept.
    let before = cpu_ticks(server.id());
    std::thread::sleep(Duration::from_secs(1));
    let used = cpu_ticks(server.id()) - before;
    assert!(
        used <= 10,
        "server used {used} ticks (of 100 per second) while saturated"
    );

    // Existing connections are still served.
    for s in served.iter_mut() {
        assert_eq!(echo(s, b"still"), b"still");
    }

    // As connections close, the waiting ones are accepted and get their echo.
    drop(served);
    for (i, s) in waiting.iter_mut() {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(read_frame(s).unwrap(), tagged(*i as u32, 16), "client {i}");
    }
    terminate(&server);
    assert_eq!(
        wait_with_limit(&mut server, Duration::from_secs(10)).code(),
        Some(0)
    );
    let summary = lines
        .iter()
        .find(|l| l.starts_with("summary:"))
        .expect("a summary");
    let pauses: u64 = summary
        .split("accept pauses ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .expect("accept pauses in the summary");
    assert!(pauses > 0, "{summary}");
}
