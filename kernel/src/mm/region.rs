// SPDX-License-Identifier: MIT OR Apache-2.0
//! Physical address ranges and the arithmetic that turns a firmware memory map plus the ranges
//! Castor must not hand out (kernel image, boot modules, low memory) into allocatable ranges.

/// A half-open physical address range `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

/// Size of a 4 KiB frame.
pub const FRAME_SIZE: u64 = 4096;

impl Region {
    /// A range from `start` to `end` (empty if `end <= start`).
    pub const fn new(start: u64, end: u64) -> Self {
        Self { start, end }
    }

    /// Length in bytes.
    pub const fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether the range holds no bytes.
    pub const fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// Whether the two ranges share a byte.
    pub const fn overlaps(&self, other: &Region) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// Whether `addr` lies inside.
    pub const fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }

    /// The largest frame-aligned range inside this one.
    pub const fn frames_inside(&self) -> Region {
        let start = self.start.saturating_add(FRAME_SIZE - 1) & !(FRAME_SIZE - 1);
        let end = self.end & !(FRAME_SIZE - 1);
        Region::new(start, end)
    }

    /// The smallest frame-aligned range covering this one.
    pub const fn frames_covering(&self) -> Region {
        let start = self.start & !(FRAME_SIZE - 1);
        let end = self.end.saturating_add(FRAME_SIZE - 1) & !(FRAME_SIZE - 1);
        Region::new(start, end)
    }
}

/// Calls `out` with every frame-aligned, non-empty piece of `usable` that overlaps none of
/// `excluded` (excluded ranges are widened to whole frames first; they may overlap each other
/// and need not be sorted).
pub fn subtract(usable: Region, excluded: &[Region], out: &mut impl FnMut(Region)) {
    let mut pieces_start = usable.frames_inside().start;
    let end = usable.frames_inside().end;
    while pieces_start < end {
        // The earliest exclusion that overlaps [pieces_start, end).
        let window = Region::new(pieces_start, end);
        let next = excluded
            .iter()
            .map(Region::frames_covering)
            .filter(|x| x.overlaps(&window))
            .min_by_key(|x| x.start);
        match next {
            None => {
                out(window);
                return;
            }
            Some(x) => {
                if x.start > pieces_start {
                    out(Region::new(pieces_start, x.start));
                }
                pieces_start = x.end;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn collect(usable: Region, excluded: &[Region]) -> Vec<Region> {
        let mut v = Vec::new();
        subtract(usable, excluded, &mut |r| v.push(r));
        v
    }

    #[test]
    fn no_exclusions_rounds_inward() {
        assert_eq!(
            collect(Region::new(0x1001, 0x5fff), &[]),
            [Region::new(0x2000, 0x5000)]
        );
    }

    #[test]
    fn exclusions_cut_holes_and_are_widened_to_frames() {
        let got = collect(
            Region::new(0x10_0000, 0x80_0000),
            &[
                Region::new(0x20_0010, 0x20_0020),
                Region::new(0x10_0000, 0x14_0000),
            ],
        );
        assert_eq!(
            got,
            [
                Region::new(0x14_0000, 0x20_0000),
                Region::new(0x20_1000, 0x80_0000)
            ]
        );
    }

    #[test]
    fn overlapping_and_outside_exclusions() {
        let got = collect(
            Region::new(0x1000, 0x10000),
            &[
                Region::new(0x3000, 0x6000),
                Region::new(0x5000, 0x8000),
                Region::new(0x20000, 0x30000),
                Region::new(0, 0x2000),
            ],
        );
        assert_eq!(
            got,
            [Region::new(0x2000, 0x3000), Region::new(0x8000, 0x10000)]
        );
    }

    #[test]
    fn fully_excluded_gives_nothing() {
        assert!(collect(Region::new(0x1000, 0x3000), &[Region::new(0, 0x4000)]).is_empty());
        assert!(collect(Region::new(0x1800, 0x2700), &[]).is_empty());
    }
}
