//! Handler timers: they fire when set, never for a closed connection, and
//! neither a zero delay nor setting and cancelling in a loop can hurt the
//! loop.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::common::*;
use frameloop::{Ctx, Handler, LoopCtx, TimerId};

/// Ticks every "zero" seconds, and keeps a one-shot "zero" tick going from
/// its own hook, counting both; echoes.
struct ZeroTick {
    ticks: Arc<AtomicU64>,
    periodic: Option<TimerId>,
}

impl Handler for ZeroTick {
    type Conn = ();
    fn on_start(&mut self, ctx: &mut LoopCtx<'_, Self>) {
        self.periodic = Some(ctx.set_tick_every(Duration::ZERO));
        ctx.set_tick(Duration::ZERO);
    }
    fn on_tick(&mut self, ctx: &mut LoopCtx<'_, Self>, timer: TimerId) {
        self.ticks.fetch_add(1, Ordering::Relaxed);
        if Some(timer) != self.periodic {
            ctx.set_tick(Duration::ZERO); // re-armed from its own hook
        }
    }
    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, payload: &[u8]) {
        ctx.set_timer_every(Duration::ZERO);
        ctx.send(payload);
    }
}

#[test]
fn a_zero_delay_timer_fires_at_most_once_a_millisecond_and_the_loop_goes_on() {
    let ticks = Arc::new(AtomicU64::new(0));
    let handler = ZeroTick {
        ticks: ticks.clone(),
        periodic: None,
    };
    let server = start(loopback_config(), handler);
    let mut s = connect(server.addr());
    for i in 0..20 {
        assert_eq!(echo(&mut s, &tagged(i, 10)), tagged(i, 10));
    }
    std::thread::sleep(Duration::from_millis(200));
    let fired = ticks.load(Ordering::Relaxed);
    // A periodic tick and a chain of one-shots, each at most once a
    // millisecond: a few hundred in 200 ms, not millions in one pass.
    assert!(fired > 0 && fired < 1_000, "{fired} ticks");
    let stats = server.stop().unwrap(); // and it stops when asked
    assert!(stats.timers > 0);
}

/// Per frame: cancels the connection's timer and sets a new one, 300 s off.
struct Rearm;

impl Handler for Rearm {
    type Conn = Option<TimerId>;
    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, payload: &[u8]) {
        if let Some(old) = ctx.conn().take() {
            ctx.cancel_timer(old);
        }
        *ctx.conn() = Some(ctx.set_timer(Duration::from_secs(300)));
        ctx.send(payload);
    }
}

#[test]
fn timers_set_and_cancelled_in_a_loop_leave_no_heap_behind() {
    let server = start(loopback_config(), Rearm);
    let mut clients: Vec<_> = (0..10).map(|_| connect(server.addr())).collect();
    for round in 0..2_000 {
        for s in clients.iter_mut() {
            assert_eq!(echo(s, b"again"), b"again", "round {round}");
        }
    }
    let stats = server.handle().stats();
    // Ten live timers, ten connections' deadlines: the 20,000 cancelled
    // entries are compacted away as they come.
    assert!(stats.timer_entries < 200, "{stats}");
}
