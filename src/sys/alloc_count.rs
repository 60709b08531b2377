//! For netheal's own tests only: a global allocator that counts, per thread, the
//! allocations made while a closure runs (`count`), so that a test can assert that a steady
//! round allocates nothing. Other threads (the test harness runs tests in parallel) are not
//! counted; `pause` leaves out what a test's fakes allocate.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    /// Counting on this thread: >0 (nested `count`s), and not paused.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    static PAUSED: Cell<u32> = const { Cell::new(0) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

struct Counting;

fn note() {
    // try_with: a thread being torn down has no locals left; nothing to count then.
    let on = DEPTH.try_with(Cell::get).unwrap_or(0) > 0 && PAUSED.try_with(Cell::get) == Ok(0);
    if on {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
    }
}

// SAFETY: every call is passed on unchanged to the system allocator, which upholds
// GlobalAlloc's contract; the counting beside it touches only const-initialised thread
// locals without destructors, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: the caller's contract (a non-zero-sized layout) is passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: as for alloc.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: `ptr` came from this allocator (that is, from System) with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator (that is, from System) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// How many allocations (alloc, alloc_zeroed, realloc) this thread made while `f` ran,
/// leaving out those under `pause`.
pub fn count(f: impl FnOnce()) -> u64 {
    let before = COUNT.with(Cell::get);
    DEPTH.with(|d| d.set(d.get() + 1));
    f();
    DEPTH.with(|d| d.set(d.get() - 1));
    COUNT.with(Cell::get) - before
}

/// Leaves this thread's allocations uncounted until the guard is dropped.
pub struct Paused(());

pub fn pause() -> Paused {
    PAUSED.with(|p| p.set(p.get() + 1));
    Paused(())
}

impl Drop for Paused {
    fn drop(&mut self) {
        PAUSED.with(|p| p.set(p.get() - 1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_this_threads_allocations_but_not_the_paused_ones() {
        let n = count(|| {
            let v: Vec<u8> = Vec::with_capacity(10);
            std::hint::black_box(&v);
            let _p = pause();
            let w: Vec<u8> = Vec::with_capacity(10);
            std::hint::black_box(&w);
        });
        assert_eq!(n, 1);
        assert_eq!(count(|| drop(std::hint::black_box(Vec::<u8>::new()))), 0);
    }
}
