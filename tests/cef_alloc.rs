//! Encoding allocates nothing once the buffers have grown: not per line, not per field, not for
//! escaping, not for invalid UTF-8. (Its own test binary: the counting allocator is global.)
//!
//! Only the calling thread's allocations are counted: the test harness's own threads (its
//! output, its timer) allocate whenever they like, and counting them made this test fail at
//! random on a loaded machine.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use estreamer_cef::cef::{AddressKeys, CefEncoder, Key};

struct Counting;

thread_local! {
    // `const` and `Cell<usize>`: no lazy initialisation and no destructor, so reading it from
    // inside the allocator never allocates itself.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: during thread teardown the slot may be gone; such allocations are not ours.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

/// Allocations made so far by the calling thread.
fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn encoding_a_line_allocates_nothing_after_warm_up() {
    let k = |n: &str| Key::new(n).unwrap();
    let (src, dst) = (AddressKeys::source(), AddressKeys::destination());
    let (spt, dpt, proto, act, msg, suser, request, inb, rt, smac, custom) = (
        k("spt"),
        k("dpt"),
        k("proto"),
        k("act"),
        k("msg"),
        k("suser"),
        k("request"),
        k("in"),
        k("rt"),
        k("smac"),
        k("CiscoFirepowerX"),
    );
    let mut enc = CefEncoder::default();
    let mut buf = Vec::new();
    let mut encode = |buf: &mut Vec<u8>| {
        buf.clear();
        enc.begin(buf, "1:2000:3", "ET POLICY a | b", 7)
            .address(&src, "10.0.0.1".parse().unwrap())
            .address(&dst, "2001:db8::1".parse().unwrap())
            .int(&spt, 51515)
            .int(&dpt, 0)
            .text(&proto, "TCP")
            .text(&act, "Allow")
            .text(&msg, "line1\nline2 x=y back\\slash")
            .bytes_lossy(&suser, b"J\xf6rg")
            .text(&request, "http://h/p?a=1&b=2")
            .uint(&inb, 1234)
            .timestamp(&rt, 1_714_559_696, 123_000)
            .mac(&smac, [0, 1, 2, 3, 4, 5])
            .text(&custom, "x");
    };
    encode(&mut buf); // warm-up: buffers grow here
    let before = allocations();
    for _ in 0..1000 {
        encode(&mut buf);
    }
    let made = allocations() - before;
    assert_eq!(made, 0, "allocations in 1000 lines");
    assert!(buf.starts_with(b"CEF:0|"));
}

/// The counter sees this thread's allocations (else the test above could pass by counting
/// nothing), and not another thread's.
#[test]
fn the_counter_counts_this_thread_only() {
    let before = allocations();
    let v: Vec<u64> = Vec::with_capacity(std::hint::black_box(64));
    std::hint::black_box(&v);
    assert_eq!(
        allocations() - before,
        1,
        "one Vec allocation on this thread"
    );
    // Another thread allocates 1000 times: it counts them, this thread does not (spawning
    // allocates a few times here, far fewer than 1000).
    let before = allocations();
    let theirs = std::thread::spawn(|| {
        let before = allocations();
        for i in 0..1000 {
            std::hint::black_box(Vec::<u8>::with_capacity(std::hint::black_box(i + 1)));
        }
        allocations() - before
    })
    .join()
    .unwrap();
    let mine = allocations() - before;
    assert_eq!(theirs, 1000, "the other thread counts its own allocations");
    assert!(
        mine < 1000,
        "{mine} allocations counted here for another thread's 1000"
    );
}
