//! Switchyard's global allocator: [mimalloc], with every allocation whose alignment a
//! plain `mi_malloc` already guarantees sent down mimalloc's plain path.
//!
//! The `mimalloc` crate's allocator hands every Rust allocation to `mi_malloc_aligned`,
//! whose fast path only covers blocks up to 1 KiB that happen to sit at the asked
//! alignment; any larger block (a request's boxed handler future is about 4 KiB, a grown
//! buffer, a header map) takes its over-allocating fallback, which sizes, allocates a
//! larger block and shifts the pointer. Rust asks for 8-byte alignment or less almost
//! everywhere, and every mimalloc block is at least 8-byte aligned (block sizes are whole
//! machine words), so those go to `mi_malloc` / `mi_zalloc` / `mi_realloc`; stricter
//! alignments keep the aligned functions. Freeing is `mi_free` for both.
//!
//! The C library is mimalloc 2.x (the workspace's `libmimalloc-sys` features): under 3.x a
//! request's short-lived buffers made its allocator hand a page back and take a fresh one
//! about twice per request.
//!
//! ```no_run
//! #[global_allocator]
//! static GLOBAL: switchyard_alloc::MiMalloc = switchyard_alloc::MiMalloc;
//! ```
//!
//! [mimalloc]: https://github.com/microsoft/mimalloc
#![allow(unsafe_code)]

use core::alloc::{GlobalAlloc, Layout};
use core::ffi::c_void;

use libmimalloc_sys::{
    mi_free, mi_malloc, mi_malloc_aligned, mi_realloc, mi_realloc_aligned, mi_zalloc,
    mi_zalloc_aligned,
};

/// The largest alignment every block `mi_malloc` returns already has: a machine word.
/// (mimalloc's block sizes are whole words, and a page's first block is word aligned; a
/// 24-byte block is only 8-byte aligned, so 16 is not guaranteed for every size.)
const PLAIN_ALIGN: usize = core::mem::size_of::<usize>();

/// mimalloc as the global allocator (see the crate documentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct MiMalloc;

// SAFETY: each method forwards to the mimalloc function with the same contract as the
// `GlobalAlloc` method (a null pointer on failure, `mi_free` accepts every block either
// family returns, `mi_realloc*` keeps the contents up to the smaller size), and the plain
// functions are only used where their word alignment satisfies `layout.align()`.
unsafe impl GlobalAlloc for MiMalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= PLAIN_ALIGN {
            // SAFETY: `mi_malloc` has no preconditions.
            unsafe { mi_malloc(layout.size()).cast() }
        } else {
            // SAFETY: `Layout` guarantees a non-zero power-of-two alignment.
            unsafe { mi_malloc_aligned(layout.size(), layout.align()).cast() }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= PLAIN_ALIGN {
            // SAFETY: `mi_zalloc` has no preconditions.
            unsafe { mi_zalloc(layout.size()).cast() }
        } else {
            // SAFETY: `Layout` guarantees a non-zero power-of-two alignment.
            unsafe { mi_zalloc_aligned(layout.size(), layout.align()).cast() }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: the caller passes a block this allocator returned, not yet freed.
        unsafe { mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= PLAIN_ALIGN {
            // SAFETY: the caller passes a live block of this allocator; the new block keeps
            // word alignment, which satisfies `layout.align()`.
            unsafe { mi_realloc(ptr.cast::<c_void>(), new_size).cast() }
        } else {
            // SAFETY: as above, with the alignment kept by the aligned variant.
            unsafe { mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast() }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::undocumented_unsafe_blocks
    )]

    use super::*;

    /// Allocates, checks alignment, writes, grows and frees blocks of many sizes and
    /// alignments through the allocator directly.
    #[test]
    fn every_size_and_alignment_round_trips() {
        let alloc = MiMalloc;
        for align in [1usize, 2, 4, 8, 16, 32, 64, 128, 4096] {
            for size in [
                1usize, 7, 8, 15, 16, 24, 40, 100, 1000, 1025, 4000, 70_000, 5_000_000,
            ] {
                let layout = Layout::from_size_align(size, align).unwrap();
                unsafe {
                    let p = alloc.alloc(layout);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "size {size} align {align}");
                    p.write_bytes(0xA5, size);
                    let grown = alloc.realloc(p, layout, size * 3);
                    assert!(!grown.is_null());
                    assert_eq!(grown as usize % align, 0, "grown {size} align {align}");
                    assert!((0..size).all(|i| *grown.add(i) == 0xA5), "contents kept");
                    alloc.dealloc(grown, Layout::from_size_align(size * 3, align).unwrap());

                    let z = alloc.alloc_zeroed(layout);
                    assert!(!z.is_null());
                    assert_eq!(z as usize % align, 0);
                    assert!((0..size).all(|i| *z.add(i) == 0), "zeroed");
                    alloc.dealloc(z, layout);
                }
            }
        }
    }
}
