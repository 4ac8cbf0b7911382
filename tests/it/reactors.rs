//! Several reactors, one per thread, each still the single-threaded loop:
//! connections spread over them, limits and shutdown hold for the whole
//! server, and handlers reach each other's connections through mailboxes.
//! (This machine has two cores; these tests are about correctness, not speed.)

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use frameloop::{
    ChatRoom, CloseReason, Config, ConnId, Ctx, Echo, Handler, Key, RunningServer, Server,
};

fn start_reactors<H: Handler + Send>(
    config: Config,
    reactors: usize,
    make: impl FnMut(usize) -> H,
) -> RunningServer
where
    H::Conn: Send,
{
    let _ = env_logger::builder().is_test(true).try_init();
    RunningServer::start(Server::bind_each(config, reactors, make).expect("server binds"))
        .expect("server starts")
}

/// Reactors that served at least one connection.
fn busy_reactors(server: &RunningServer) -> usize {
    server
        .handle()
        .stats_per_reactor()
        .iter()
        .filter(|s| s.accepted > 0)
        .count()
}

fn echo_on_many_connections(reactors: usize) {
    let server = start_reactors(loopback_config(), reactors, |_| Echo);
    let mut clients: Vec<_> = (0..64).map(|_| connect(server.addr())).collect();
    for round in 0..5 {
        for (i, s) in clients.iter_mut().enumerate() {
            let p = tagged(round * 100 + i as u32, 300);
            assert_eq!(echo(s, &p), p);
        }
    }
    assert!(
        busy_reactors(&server) >= 2,
        "{:?}",
        server.handle().stats_per_reactor()
    );
    drop(clients);
    let stats = server.stop().unwrap();
    assert_eq!((stats.accepted, stats.frames), (64, 320));
}

#[test]
fn two_reactors_share_the_connections_and_echo_every_frame() {
    echo_on_many_connections(2);
}

#[test]
fn four_reactors_share_the_connections_and_echo_every_frame() {
    echo_on_many_connections(4);
}

#[test]
fn authentication_holds_on_every_reactor() {
    authentication_on(2);
    authentication_on(4);
}

fn authentication_on(reactors: usize) {
    let key = Key::new(vec![9; 32]).unwrap();
    let config = Config {
        key: Some(key.clone()),
        handshake_timeout: Duration::from_millis(300),
        ..loopback_config()
    };
    let server = start_reactors(config, reactors, |_| Echo);
    for i in 0..32 {
        let mut client = frameloop::Client::connect_with_key(server.addr(), &key).unwrap();
        assert_eq!(client.request(&tagged(i, 50)).unwrap(), tagged(i, 50));
    }
    let wrong = Key::new(vec![8; 32]).unwrap();
    for _ in 0..8 {
        let mut client = frameloop::Client::connect_with_key(server.addr(), &wrong).unwrap();
        assert!(client.request(b"let me in").is_err());
    }
    let stats = server.stop().unwrap();
    assert_eq!(stats.closed(CloseReason::AuthFailed), 8);
    assert!(stats.frames == 32);
}

#[test]
fn the_connection_limit_is_for_the_whole_server_not_each_reactor() {
    let config = Config {
        max_connections: 10,
        ..loopback_config()
    };
    let server = start_reactors(config, 4, |_| Echo);
    let mut served: Vec<_> = (0..10).map(|_| connect(server.addr())).collect();
    for (i, s) in served.iter_mut().enumerate() {
        assert_eq!(echo(s, &tagged(i as u32, 10)), tagged(i as u32, 10));
    }
    let mut refused: Vec<_> = (0..6).map(|_| connect(server.addr())).collect();
    for s in &mut refused {
        assert!(closed_by_server(s), "over the limit of ten");
    }
    drop(served.pop());
    assert!(wait_until(Duration::from_secs(5), || server
        .handle()
        .stats()
        .active
        == 9));
    let mut newcomer = connect(server.addr());
    assert_eq!(echo(&mut newcomer, b"my turn"), b"my turn");
    assert_eq!(server.stop().unwrap().closed(CloseReason::Limit), 6);
}

#[test]
fn sigterm_with_two_and_four_reactors_answers_every_frame_received_then_exits() {
    sigterm_on("2");
    sigterm_on("4");
}

fn sigterm_on(reactors: &str) {
    let (mut server, addr, lines) = serve_process(&[], &["--reactors", reactors]);
    let mut clients: Vec<_> = (0..200).map(|_| connect(addr)).collect();
    for (i, s) in clients.iter_mut().enumerate() {
        let wire: Vec<u8> = (0..20)
            .flat_map(|n| frame(&tagged(i as u32 * 20 + n, 100)))
            .collect();
        s.write_all(&wire).unwrap();
    }
    terminate(&server);
    let mut echoed = 0;
    for (i, s) in clients.iter_mut().enumerate() {
        let mut got = Vec::new();
        std::io::Read::read_to_end(s, &mut got).unwrap();
        let want: Vec<u8> = (0..20)
            .flat_map(|n| frame(&tagged(i as u32 * 20 + n, 100)))
            .collect();
        assert_eq!(got, want, "client {i}");
        echoed += 20;
    }
    assert_eq!(
        wait_with_limit(&mut server, Duration::from_secs(10)).code(),
        Some(0)
    );
    // The process has exited: its stderr is all here.
    let rest: Vec<String> = lines.iter().collect();
    let summary = rest.iter().find(|l| l.starts_with("summary:")).unwrap();
    assert!(summary.contains(&format!(" frames {echoed} ")), "{summary}");
    // One server, one `listening on` line (the first, read at start).
    assert!(!rest.iter().any(|l| l.contains("listening on")), "{rest:?}");
}

#[test]
fn chat_across_four_reactors_delivers_every_message_exactly_once_in_order() {
    const CLIENTS: usize = 200;
    const MESSAGES: usize = 50;
    let room = ChatRoom::new();
    let server = start_reactors(loopback_config(), 4, |_| room.member());
    crate::chat::everyone_hears_everyone(server.addr(), CLIENTS, MESSAGES);
    assert!(busy_reactors(&server) >= 2);
    let stats = server.stop().unwrap();
    assert_eq!(stats.frames, (CLIENTS * MESSAGES + 2) as u64);
}

/// Remembers one connection; relays to it on request.
#[derive(Clone, Default)]
struct Relay {
    remembered: Arc<Mutex<Option<ConnId>>>,
}

impl Handler for Relay {
    type Conn = ();
    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, payload: &[u8]) {
        match payload {
            b"where" => {
                let at = format!("{} {}", ctx.reactor(), ctx.id());
                ctx.send(at.as_bytes());
            }
            b"remember me" => {
                *self.remembered.lock().unwrap() = Some(ctx.id());
                ctx.send(b"remembered");
            }
            _ => {
                let target = self.remembered.lock().unwrap().expect("someone remembered");
                let sent = ctx.send_to(target, payload);
                ctx.send(if sent { b"relayed" } else { b"gone" });
            }
        }
    }
}

/// A connection, and where it landed: its reactor and its id (`r:i.g`).
fn placed(addr: std::net::SocketAddr) -> (std::net::TcpStream, usize, String) {
    let mut s = connect(addr);
    let reply = String::from_utf8(echo(&mut s, b"where")).unwrap();
    let (reactor, id) = reply.split_once(' ').unwrap();
    (s, reactor.parse().unwrap(), id.to_string())
}

/// The slab slot in a printed `ConnId` (`reactor:index.generation`).
fn slot(id: &str) -> &str {
    id.split('.').next().unwrap()
}

#[test]
fn send_to_a_closed_connection_on_another_reactor_never_reaches_a_newcomer_in_its_slot() {
    let relay = Relay::default();
    let server = start_reactors(loopback_config(), 2, |_| relay.clone());
    // A target on reactor 0, a sender on reactor 1.
    let mut pool: Vec<_> = (0..40).map(|_| placed(server.addr())).collect();
    let t = pool
        .iter()
        .position(|(_, r, _)| *r == 0)
        .expect("one on reactor 0");
    let (mut target, _, target_id) = pool.remove(t);
    let s = pool
        .iter()
        .position(|(_, r, _)| *r == 1)
        .expect("one on reactor 1");
    let (mut sender, _, _) = pool.remove(s);
    assert_eq!(echo(&mut target, b"remember me"), b"remembered");
    assert_eq!(echo(&mut sender, b"first"), b"relayed");
    assert_eq!(read_frame(&mut target).unwrap(), b"first");

    // The target leaves; a newcomer on reactor 0 takes its slot.
    drop(target);
    drop(pool); // the rest leave too, so the freed slots are easy to find
    assert!(wait_until(Duration::from_secs(5), || server
        .handle()
        .stats()
        .active
        == 1));
    // Newcomers stay connected until one lands in the target's old slot
    // (each takes the slot freed last, so they work back to it).
    let mut others = Vec::new();
    let mut newcomer = None;
    for _ in 0..500 {
        let (s, reactor, id) = placed(server.addr());
        if reactor == 0 && slot(&id) == slot(&target_id) {
            assert_ne!(id, target_id, "a new generation");
            newcomer = Some(s);
            break;
        }
        others.push(s);
    }
    let mut newcomer = newcomer.expect("a newcomer in the target's slot");
    // Posted to reactor 0, which finds the id's generation gone.
    assert_eq!(echo(&mut sender, b"second"), b"relayed");
    newcomer
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(
        read_frame(&mut newcomer).is_err(),
        "the newcomer got another's message"
    );
}

#[test]
fn backpressure_holds_on_each_reactor_and_every_frame_comes_back() {
    let server = start_reactors(loopback_config(), 2, |_| Echo);
    // Four clients pipeline 24 MiB each without reading: far past the
    // kernel's buffers, so each reactor pauses the ones it serves.
    let mut streamers: Vec<_> = (0..4).map(|_| connect(server.addr())).collect();
    let writers: Vec<_> = streamers
        .iter()
        .enumerate()
        .map(|(t, s)| {
            let mut w = s.try_clone().unwrap();
            std::thread::spawn(move || {
                for i in 0..384u32 {
                    w.write_all(&frame(&tagged(t as u32 * 1000 + i, 64 * 1024)))
                        .unwrap();
                }
            })
        })
        .collect();
    assert!(wait_until(Duration::from_secs(5), || server
        .handle()
        .stats()
        .read_pauses
        >= 4));
    for (t, s) in streamers.iter_mut().enumerate() {
        for i in 0..384u32 {
            assert!(read_frame(s).unwrap() == tagged(t as u32 * 1000 + i, 64 * 1024));
        }
    }
    for w in writers {
        w.join().unwrap();
    }
    assert!(busy_reactors(&server) >= 1);
}

#[test]
fn idle_and_slowloris_timeouts_hold_on_each_reactor() {
    let config = Config {
        idle_timeout: Some(Duration::from_millis(400)),
        frame_timeout: Some(Duration::from_millis(150)),
        ..loopback_config()
    };
    let server = start_reactors(config, 2, |_| Echo);
    let mut silent: Vec<_> = (0..8).map(|_| connect(server.addr())).collect();
    let mut slowloris: Vec<_> = (0..8).map(|_| connect(server.addr())).collect();
    for s in &mut slowloris {
        s.write_all(&[0, 0, 1, 0, 7]).unwrap();
    }
    for s in silent.iter_mut().chain(slowloris.iter_mut()) {
        assert!(closed_by_server(s));
    }
    let stats = server.stop().unwrap();
    assert_eq!(stats.closed(CloseReason::FrameTimeout), 8, "{stats}");
    assert_eq!(stats.closed(CloseReason::Idle), 8, "{stats}");
}

#[test]
fn datagrams_are_answered_by_whichever_reactor_the_kernel_picks() {
    let config = Config {
        udp: true,
        ..loopback_config()
    };
    let server = start_reactors(config, 4, |_| frameloop::Upper);
    let sockets: Vec<_> = (0..16)
        .map(|_| {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
            s
        })
        .collect();
    for (i, s) in sockets.iter().enumerate() {
        s.send_to(format!("hello {i}").as_bytes(), server.addr())
            .unwrap();
        let mut buf = [0u8; 64];
        let n = s.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], format!("HELLO {i}").as_bytes());
    }
    let answered = || -> Vec<u64> {
        let per_reactor = server.handle().stats_per_reactor();
        per_reactor.iter().map(|s| s.datagrams).collect()
    };
    // Each is counted just after its reply is sent: wait for the last one.
    assert!(wait_until(Duration::from_secs(5), || {
        answered().iter().sum::<u64>() == 16
    }));
    let answered = answered();
    assert!(
        answered.iter().filter(|&&n| n > 0).count() >= 2,
        "{answered:?}"
    );
}

#[test]
fn a_replayed_datagram_is_refused_whichever_reactor_it_reaches() {
    let key = Key::new(vec![5; 32]).unwrap();
    let config = Config {
        udp: true,
        key: Some(key.clone()),
        ..loopback_config()
    };
    let server = start_reactors(config, 4, |_| Echo);
    let (sealed, _nonce) = frameloop::auth::datagram::seal_request(&key, b"pay 10").unwrap();
    // The same captured datagram, from forty source ports: the kernel
    // spreads them over the reactors by port.
    let mut answered = 0;
    for i in 0..40 {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        // The first is answered: give it time. The replays are not: a short
        // wait shows that.
        let wait = if i == 0 {
            READ_TIMEOUT
        } else {
            Duration::from_millis(100)
        };
        s.set_read_timeout(Some(wait)).unwrap();
        s.send_to(&sealed, server.addr()).unwrap();
        answered += usize::from(s.recv(&mut [0u8; 256]).is_ok());
    }
    assert_eq!(answered, 1, "answered once, not once per reactor");
    assert!(wait_until(Duration::from_secs(10), || {
        server.handle().stats().datagrams_replayed == 39
    }));
}

#[test]
fn chat_across_reactors_holds_back_a_speaker_for_a_reader_on_another_reactor() {
    let config = Config {
        max_output: 256 * 1024,
        ..loopback_config()
    };
    let room = ChatRoom::new();
    let server = start_reactors(config, 2, |_| room.member());
    // Members join one at a time; the reactor whose count grew is theirs.
    let (mut speaker, mut reader) = (None, None);
    let mut extra = Vec::new();
    while speaker.is_none() || reader.is_none() {
        let before = server.handle().stats_per_reactor();
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.set_recv_buffer_size(16 * 1024).unwrap();
        socket.connect(&server.addr().into()).unwrap();
        let mut s: std::net::TcpStream = socket.into();
        s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        read_frame(&mut s).unwrap(); // "* you are N"
        let after = server.handle().stats_per_reactor();
        let on = (0..2)
            .find(|&r| after[r].accepted > before[r].accepted)
            .unwrap();
        match (on, &speaker, &reader) {
            (0, None, _) => speaker = Some(s),
            (1, _, None) => reader = Some(s),
            _ => extra.push(s),
        }
    }
    drop(extra);
    let (mut speaker, mut reader) = (speaker.unwrap(), reader.unwrap());
    const LINES: u32 = 80_000; // 8 MB: past the kernel's buffers, and the cap
    let blast = std::thread::spawn(move || {
        let wire: Vec<u8> = (0..LINES)
            .flat_map(|i| frame(format!("{i:06} {}", ".".repeat(93)).as_bytes()))
            .collect();
        speaker.write_all(&wire).unwrap();
        speaker
    });
    // The reader looks away for half a second (less than the slow-reader
    // timeout), then reads on.
    std::thread::sleep(Duration::from_millis(500));
    let mut next_line = 0;
    let mut buf = Vec::new();
    while next_line < LINES {
        let mut chunk = [0u8; 16 * 1024];
        let n = std::io::Read::read(&mut reader, &mut chunk).unwrap();
        assert!(n > 0, "cut off after {next_line} lines");
        buf.extend_from_slice(&chunk[..n]);
        while buf.len() >= 4 {
            let len = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
            if buf.len() < 4 + len {
                break;
            }
            let line = String::from_utf8(buf[4..4 + len].to_vec()).unwrap();
            buf.drain(..4 + len);
            if let Some((_, text)) = line.split_once(": ") {
                assert!(text.starts_with(&format!("{next_line:06} ")), "{line:.30}");
                next_line += 1;
            }
        }
    }
    drop(blast.join().unwrap());
    let stats = server.stop().unwrap();
    assert_eq!(
        stats.closed(CloseReason::OutputCap) + stats.closed(CloseReason::SlowReader),
        0,
        "{stats}"
    );
}
