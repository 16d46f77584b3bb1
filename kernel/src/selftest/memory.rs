// SPDX-License-Identifier: MIT OR Apache-2.0
//! Frame allocator and heap tests.

use alloc::boxed::Box;
use alloc::vec::Vec;

use super::{Context, Verdict};
use crate::ensure;
use crate::mm::frame::FreeError;
use crate::mm::region::{FRAME_SIZE, Region};
use crate::mm::{self, layout};

const FRAMES: usize = 256;

/// Frames come from usable RAM only, never twice, hold data, and return to the pool.
pub fn frames(ctx: &Context<'_>) -> Verdict {
    let before = mm::frames_free();
    let kernel = layout::kernel().image;
    let usable = |f: u64| {
        ctx.boot.areas().iter().any(|a| {
            a.kind == crate::bootinfo::MemKind::Available
                && a.region.start <= f
                && f + FRAME_SIZE <= a.region.end
        })
    };
    for m in ctx.boot.modules() {
        let covering = m.region.frames_covering();
        let unprotected = (covering.start..covering.end)
            .step_by(FRAME_SIZE as usize)
            .find(|&f| !mm::is_allocated(f));
        ensure!(
            unprotected.is_none(),
            "module frame {:#x} is allocatable",
            unprotected.unwrap_or(0)
        );
    }
    let mut got = Vec::with_capacity(FRAMES);
    for _ in 0..FRAMES {
        let f = mm::alloc_frames_below(1, u64::MAX).ok_or("allocator ran dry")?;
        let page = Region::new(f, f + FRAME_SIZE);
        ensure!(f % FRAME_SIZE == 0, "frame {f:#x} misaligned");
        ensure!(usable(f), "frame {f:#x} is not in usable RAM");
        ensure!(
            !page.overlaps(&kernel),
            "frame {f:#x} inside the kernel image"
        );
        ensure!(f >= 0x10_0000, "frame {f:#x} in low memory");
        ensure!(
            !ctx.boot.modules().iter().any(|m| m.region.overlaps(&page)),
            "frame {f:#x} inside a boot module"
        );
        ensure!(mm::is_allocated(f), "frame {f:#x} not marked allocated");
        ensure!(!got.contains(&f), "frame {f:#x} handed out twice");
        got.push(f);
    }
    for (i, &f) in got.iter().enumerate() {
        // SAFETY: the frame is ours (just allocated) and identity mapped read-write.
        unsafe { core::ptr::write_bytes(f as *mut u8, i as u8, FRAME_SIZE as usize) };
    }
    for (i, &f) in got.iter().enumerate() {
        // SAFETY: as above; reading back what was written.
        let bytes = unsafe { core::slice::from_raw_parts(f as *const u8, FRAME_SIZE as usize) };
        ensure!(
            bytes.iter().all(|&b| b == i as u8),
            "frame {f:#x} lost its contents"
        );
    }
    ensure!(
        mm::frames_free() == before - FRAMES as u64,
        "free count off after allocation"
    );
    for &f in &got {
        mm::free_frames(f, 1).map_err(|e| alloc::format!("free {f:#x}: {e:?}"))?;
    }
    ensure!(
        mm::free_frames(got[0], 1) == Err(FreeError::DoubleFree(got[0])),
        "double free undetected"
    );
    let run = mm::alloc_frames_below(512, u64::MAX).ok_or("no 2 MiB contiguous run")?;
    mm::free_frames(run, 512).map_err(|e| alloc::format!("free run: {e:?}"))?;
    ensure!(
        mm::frames_free() == before,
        "free count {} != {before} after freeing",
        mm::frames_free()
    );
    Ok(alloc::format!(
        "{FRAMES} frames + a 512-frame run, {before} free"
    ))
}

/// Large and many small allocations keep their contents and are given back; page-sized
/// blocks come from the frame allocator and go back to it.
pub fn heap() -> Verdict {
    let (used_before, _) = mm::heap::usage();
    let frames_before = mm::frames_free();
    {
        let pages: Vec<Box<[u8; 4096]>> = (0..64u8).map(|i| Box::new([i; 4096])).collect();
        ensure!(
            mm::frames_free() + 64 <= frames_before,
            "page-sized blocks did not come from the frame allocator"
        );
        ensure!(
            pages
                .iter()
                .enumerate()
                .all(|(i, p)| p.iter().all(|&b| b == i as u8)),
            "page-sized blocks corrupted"
        );
    }
    ensure!(
        mm::frames_free() == frames_before,
        "page-sized blocks not given back: {} frames missing",
        frames_before - mm::frames_free()
    );
    {
        let big: Vec<u64> = (0..200_000u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .collect();
        let boxed = Box::new([0xA5u8; 64 * 1024]);
        let mut small: Vec<Box<u32>> = (0..10_000).map(Box::new).collect();
        small.retain(|b| **b % 3 != 0);
        ensure!(
            big.iter()
                .enumerate()
                .all(|(i, v)| *v == (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            "large vector corrupted"
        );
        ensure!(boxed.iter().all(|&b| b == 0xA5), "boxed array corrupted");
        ensure!(small.len() == 6_666, "retained {} small boxes", small.len());
        ensure!(small.iter().all(|b| **b % 3 != 0), "small boxes corrupted");
    }
    let (used_after, free) = mm::heap::usage();
    ensure!(
        used_after == used_before,
        "heap leaked {} bytes",
        used_after - used_before
    );
    Ok(alloc::format!(
        "1.6 MB vector, 64 KiB box, 10000 small boxes; {} KiB free",
        free / 1024
    ))
}
