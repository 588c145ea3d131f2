//! Opt-in allocation cap, to fuzz past known "trusted length" OOMs.
//!
//! Built normally, [`run`] just calls the closure: any huge allocation is
//! reported by libFuzzer / ASan as an OOM, as it should be.
//!
//! Built with `RUSTFLAGS="--cfg runnel_fuzz_alloc_cap"`, a single allocation
//! above [`CAP`] fails, an allocation-error hook (nightly `alloc_error_hook`,
//! enabled by the including target) turns the failure into a panic instead of
//! an abort, and [`run`] swallows that panic (only that one), so the input is
//! skipped and fuzzing goes on. Use a separate `CARGO_TARGET_DIR` for such
//! builds. See ../../README.md.

/// Largest single allocation allowed when the cap is on.
#[cfg(runnel_fuzz_alloc_cap)]
pub const CAP: usize = 256 << 20;

#[cfg(runnel_fuzz_alloc_cap)]
mod imp {
    use std::alloc::{GlobalAlloc, Layout, System};

    pub struct Capped;

    // SAFETY: forwards to `System`, except that oversized requests fail
    // (return null), which the `GlobalAlloc` contract allows.
    unsafe impl GlobalAlloc for Capped {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            if l.size() > super::CAP {
                return std::ptr::null_mut();
            }
            unsafe { System.alloc(l) }
        }
        unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
            if l.size() > super::CAP {
                return std::ptr::null_mut();
            }
            unsafe { System.alloc_zeroed(l) }
        }
        unsafe fn realloc(&self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
            if new_size > super::CAP {
                return std::ptr::null_mut();
            }
            unsafe { System.realloc(p, l, new_size) }
        }
        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            unsafe { System.dealloc(p, l) }
        }
    }

    #[global_allocator]
    static ALLOC: Capped = Capped;
}

/// Runs one input.
#[cfg(not(runnel_fuzz_alloc_cap))]
#[inline(always)]
pub fn run(f: impl FnOnce()) {
    f()
}

/// Runs one input, skipping it if it hits the allocation cap.
#[cfg(runnel_fuzz_alloc_cap)]
pub fn run(f: impl FnOnce()) {
    use std::sync::Once;
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        std::alloc::set_alloc_error_hook(|l| {
            panic!("memory allocation of {} bytes failed", l.size())
        });
        // libfuzzer-sys's hook aborts on any panic; let only ours through.
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let capped = info
                .payload_as_str()
                .is_some_and(|s| s.starts_with("memory allocation of"));
            if !capped {
                prev(info);
            }
        }));
    });
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
}
