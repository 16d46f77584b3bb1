// SPDX-License-Identifier: MIT OR Apache-2.0
//! An epoch's dirty pages ascending, each once, whatever order the harvest gave them in. The
//! AMD-V walk gives them ascending already; VT-x's page-modification log gives them in the
//! order the guest first wrote them. This runs inside the stun, so where guest RAM is small
//! against the list a bitmap of it does the work in one pass over the list and one over the
//! bitmap, instead of a sort.

use alloc::vec::Vec;

/// Bitmap words allowed per listed page before sorting is cheaper than the bitmap's scan.
const WORDS_PER_PAGE: usize = 8;

/// Sorts `gfns` ascending and drops repeats. Frames below `ram_pages` go through the bitmap in
/// `bits` (kept by the caller between calls) when it is at most [`WORDS_PER_PAGE`] words a
/// listed frame; anything else (a frame beyond RAM, a large RAM) is sorted.
pub fn sort_unique(gfns: &mut Vec<u64>, ram_pages: u64, bits: &mut Vec<u64>) {
    if gfns.is_sorted_by(|a, b| a < b) {
        return;
    }
    let words = usize::try_from(ram_pages.div_ceil(64)).unwrap_or(usize::MAX);
    if words > WORDS_PER_PAGE.saturating_mul(gfns.len()) || gfns.iter().any(|&g| g >= ram_pages) {
        gfns.sort_unstable();
        gfns.dedup();
        return;
    }
    bits.clear();
    bits.resize(words, 0);
    for &g in gfns.iter() {
        if let Some(w) = bits.get_mut((g / 64) as usize) {
            *w |= 1 << (g % 64);
        }
    }
    gfns.clear();
    for (i, &word) in bits.iter().enumerate() {
        let mut w = word;
        while w != 0 {
            gfns.push(i as u64 * 64 + u64::from(w.trailing_zeros()));
            w &= w - 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Rng;

    /// Both ways (bitmap and sort) give what sorting and dropping repeats gives: lists in
    /// write order with repeats, some with a frame beyond RAM, over small and large RAM.
    #[test]
    fn gives_the_sorted_unique_list_either_way() {
        let mut rng = Rng::new(11);
        let mut bits = Vec::new();
        for case in 0..2000 {
            let ram_pages = [1, 63, 64, 65, 2048, 1 << 20][case % 6];
            let n = rng.below(300);
            let mut gfns: Vec<u64> = (0..n).map(|_| rng.below_u64(ram_pages)).collect();
            if case % 7 == 0 {
                gfns.push(ram_pages + rng.below_u64(5));
            }
            let mut want = gfns.clone();
            want.sort_unstable();
            want.dedup();
            sort_unique(&mut gfns, ram_pages, &mut bits);
            assert_eq!(gfns, want, "case {case}, {ram_pages} pages");
        }
    }

    #[test]
    fn an_ascending_list_is_left_alone() {
        let mut gfns = alloc::vec![3, 9, 70];
        let mut bits = alloc::vec![u64::MAX];
        sort_unique(&mut gfns, 128, &mut bits);
        assert_eq!(gfns, [3, 9, 70]);
        assert_eq!(bits, [u64::MAX], "no bitmap pass");
    }
}
