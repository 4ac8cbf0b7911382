//! Limits under load and abuse: backpressure, fairness, timeouts, the
//! connection limit, the output cap. Each test fails without its mechanism.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::common::*;
use frameloop::{CloseReason, Config, ConnId, Ctx, Echo, Handler};

#[test]
fn a_silent_connection_is_closed_after_the_idle_timeout_and_a_chatty_one_is_not() {
    let config = Config {
        idle_timeout: Some(Duration::from_millis(300)),
        ..loopback_config()
    };
    let server = start(config, Echo);
    let mut silent = connect(server.addr());
    let mut chatty = connect(server.addr());
    let start = Instant::now();
    for i in 0..12 {
        assert_eq!(echo(&mut chatty, &[i]), [i]);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(start.elapsed() > Duration::from_millis(1000));
    assert!(closed_by_server(&mut silent));
    assert_eq!(echo(&mut chatty, b"still"), b"still");
    assert_eq!(server.stop().unwrap().closed(CloseReason::Idle), 1);
}

#[test]
fn slowloris_sending_one_byte_at_a_time_is_closed_by_the_frame_timeout() {
    let config = Config {
        frame_timeout: Some(Duration::from_millis(400)),
        ..loopback_config()
    };
    let server = start(config, Echo);
    let mut slow = connect(server.addr());
    let mut honest = connect(server.addr());
    let wire = frame(&[b'z'; 100]);
    let start = Instant::now();
    let mut closed = false;
    for byte in &wire {
        if slow.write_all(&[*byte]).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        if start.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    assert!(closed || closed_by_server(&mut slow));
    // Frames that complete in time are untouched, even when split.
    let w = frame(b"split but prompt");
    honest.write_all(&w[..5]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    honest.write_all(&w[5..]).unwrap();
    assert_eq!(read_frame(&mut honest).unwrap(), b"split but prompt");
    assert_eq!(server.stop().unwrap().closed(CloseReason::FrameTimeout), 1);
}

#[test]
fn the_eleventh_connection_over_a_limit_of_ten_is_closed_and_a_freed_slot_is_reused() {
    let config = Config {
        max_connections: 10,
        ..loopback_config()
    };
    let server = start(config, Echo);
    let mut ten: Vec<_> = (0..10).map(|_| connect(server.addr())).collect();
    for s in ten.iter_mut() {
        assert_eq!(echo(s, b"in"), b"in");
    }
    let mut eleventh = connect(server.addr());
    assert!(closed_by_server(&mut eleventh));
    for s in ten.iter_mut() {
        assert_eq!(echo(s, b"still in"), b"still in");
    }
    drop(ten.pop());
    assert!(wait_until(Duration::from_secs(5), || server
        .handle()
        .stats()
        .active
        == 9));
    let mut newcomer = connect(server.addr());
    assert_eq!(echo(&mut newcomer, b"my turn"), b"my turn");
    assert_eq!(server.stop().unwrap().closed(CloseReason::Limit), 1);
}

/// Sends every frame to connection 0 too (whoever connected first): a
/// broadcast its reader did not ask for.
#[derive(Default)]
struct CopyToFirst {
    first: Option<ConnId>,
}

impl Handler for CopyToFirst {
    type Conn = ();
    fn on_open(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.first.get_or_insert(ctx.id());
    }
    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, payload: &[u8]) {
        if let Some(first) = self.first {
            ctx.send_to(first, payload);
        }
        ctx.send(b"ok");
    }
}

#[test]
fn a_reader_that_never_reads_what_others_send_it_is_cut_off_after_the_slow_reader_timeout() {
    let config = Config {
        slow_reader_timeout: Duration::from_millis(300),
        ..loopback_config()
    };
    let server = start(config, CopyToFirst::default());
    let mut never_reads = connect(server.addr());
    std::thread::sleep(Duration::from_millis(50));
    let mut talker = connect(server.addr());
    let payload = vec![b'x'; 32 * 1024];
    let started = Instant::now();
    for _ in 0..400 {
        // 12.5 MiB in all: far past the socket buffers. The talker is held
        // up while the reader is over high-water, then goes on without it.
        assert_eq!(echo(&mut talker, &payload), b"ok");
    }
    let stats = server.handle().stats();
    assert_eq!(stats.closed(CloseReason::SlowReader), 1);
    assert_eq!(stats.closed(CloseReason::OutputCap), 0);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "held up first"
    );
    assert!(closed_by_server(&mut never_reads));
    assert_eq!(echo(&mut talker, b"fine"), b"ok");
}

/// Sends 256 copies of every frame to connection 0: one hook piles up far
/// more than high-water at once.
#[derive(Default)]
struct Amplify(CopyToFirst);

impl Handler for Amplify {
    type Conn = ();
    fn on_open(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.0.first.get_or_insert(ctx.id());
    }
    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, payload: &[u8]) {
        if let Some(first) = self.0.first {
            for _ in 0..256 {
                ctx.send_to(first, payload);
            }
        }
        ctx.send(b"ok");
    }
}

#[test]
fn output_others_pile_past_the_hard_cap_disconnects_the_reader_at_once() {
    let config = Config {
        max_output: 1 << 20,
        slow_reader_timeout: Duration::from_secs(300),
        ..loopback_config()
    };
    let server = start(config, Amplify::default());
    let mut never_reads = connect(server.addr());
    std::thread::sleep(Duration::from_millis(50));
    let mut talker = connect(server.addr());
    // 256 x 32 KiB = 8 MiB from one frame: past the kernel's buffers and the cap.
    assert_eq!(echo(&mut talker, &vec![b'x'; 32 * 1024]), b"ok");
    assert!(wait_until(Duration::from_secs(5), || {
        server.handle().stats().closed(CloseReason::OutputCap) == 1
    }));
    assert!(closed_by_server(&mut never_reads));
    assert_eq!(echo(&mut talker, b"fine"), b"ok");
}

#[test]
fn a_low_water_mark_of_zero_resumes_reading_once_output_is_fully_flushed() {
    let server = start(
        Config {
            low_water: 0,
            ..loopback_config()
        },
        Echo,
    );
    let mut reader = connect(server.addr());
    reader
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut writer = reader.try_clone().unwrap();
    // 256 frames of 64 KiB, read only after a pause: more than the socket
    // buffers hold, so the server pauses reads, then must resume at zero.
    let sender = std::thread::spawn(move || {
        let mut buf = Vec::new();
        for i in 0..256 {
            numbered_frame(i, &mut buf);
            writer.write_all(&buf).unwrap();
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    let mut expected = Vec::new();
    for i in 0..256 {
        numbered_frame(i, &mut expected);
        let got = read_frame(&mut reader).expect("reads stalled: never resumed at zero");
        assert!(got == expected[4..], "frame {i} differs");
    }
    sender.join().unwrap();
    let stats = server.stop().unwrap();
    assert!(stats.read_pauses > 0, "the test never paused reads");
}
