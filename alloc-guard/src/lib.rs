//! A global allocator that turns a huge allocation into a lazy reservation.
//!
//! Decoders that trust a length read from the network (kafka-protocol 0.18
//! calls `Vec::with_capacity(n)` with the array length of a request) can ask
//! for hundreds of gigabytes. Rust aborts the process when an allocation
//! fails, so one malformed request would take the broker down. This
//! allocator serves every allocation of `HUGE` bytes or more with an
//! anonymous `MAP_NORESERVE` mapping instead: the kernel reserves address
//! space, not memory, so the allocation succeeds; the decoder then fails on
//! the short input and frees it. Pages are only backed when touched, so a
//! real large buffer behaves as usual. Everything smaller goes to the system
//! allocator unchanged.
//!
//! Under `vm.overcommit_memory=2` the kernel ignores `MAP_NORESERVE`; the
//! mapping then fails as the system allocator would.

use std::alloc::{GlobalAlloc, Layout, System};

/// Allocations at least this large are lazy reservations.
pub const HUGE: usize = 1 << 30;

const PAGE: usize = 4096;

/// The allocator. Install with `#[global_allocator]`.
pub struct GuardedAlloc;

fn is_huge(layout: &Layout) -> bool {
    layout.size() >= HUGE && layout.align() <= PAGE
}

fn reserve(size: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping with no address hint has no
    // preconditions; failure is reported as MAP_FAILED and checked below.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        std::ptr::null_mut()
    } else {
        p.cast()
    }
}

// SAFETY: huge blocks come from mmap (page aligned, zeroed, at least `size`
// bytes) and go back to munmap with the same size; every other block is the
// system allocator's, with the same layout, so each block is returned to the
// allocator that made it. No function unwinds.
unsafe impl GlobalAlloc for GuardedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_huge(&layout) {
            return reserve(layout.size());
        }
        // SAFETY: the caller's contract for `alloc` is forwarded unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_huge(&layout) {
            // Fresh anonymous mappings are zero-filled.
            return reserve(layout.size());
        }
        // SAFETY: the caller's contract for `alloc_zeroed` is forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_huge(&layout) {
            // SAFETY: `ptr` came from `reserve` with this same size.
            unsafe {
                libc::munmap(ptr.cast(), layout.size());
            }
            return;
        }
        // SAFETY: `ptr` came from `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return std::ptr::null_mut();
        };
        if !is_huge(&layout) && !is_huge(&new_layout) {
            // SAFETY: both blocks belong to the system allocator.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // SAFETY: `new_layout` has a non-zero size (it is at least as large
        // as one side, which is huge, or the old block's size).
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are valid for the smaller of the two sizes
            // and do not overlap (the new one was just allocated).
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[global_allocator]
    static A: GuardedAlloc = GuardedAlloc;

    #[test]
    fn a_hundred_gigabytes_is_only_reserved() {
        // As kafka-protocol does for a hostile array length.
        let mut v: Vec<[u8; 200]> = Vec::with_capacity(500_000_000);
        assert!(v.capacity() >= 500_000_000);
        v.push([7; 200]);
        assert_eq!(v[0][199], 7);
        drop(v);
    }

    #[test]
    fn small_and_growing_buffers_work() {
        let mut v = Vec::new();
        for i in 0..100_000u32 {
            v.push(i);
        }
        assert_eq!(v.iter().map(|x| u64::from(*x)).sum::<u64>(), 4_999_950_000);
        let z = vec![0u8; 1 << 20];
        assert!(z.iter().all(|b| *b == 0));
    }
}
