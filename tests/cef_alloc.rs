//! Encoding allocates nothing once the buffers have grown: not per line, not per field, not for
//! escaping, not for invalid UTF-8. (Its own test binary: the counting allocator is global.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use estreamer_cef::cef::{AddressKeys, CefEncoder, Key};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
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
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..1000 {
        encode(&mut buf);
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(allocations, 0, "allocations in 1000 lines");
    assert!(buf.starts_with(b"CEF:0|"));
}
