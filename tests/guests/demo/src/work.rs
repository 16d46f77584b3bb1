// SPDX-License-Identifier: MIT OR Apache-2.0
//! The demo's work: a hash chain over a working set of pages that it keeps rewriting.
//!
//! The computation, exactly (the host checker, castor-tests' `demo` module, reimplements it):
//!
//! * Memory: `span` pages of 512 little-endian 64-bit words (4 KiB each), all zero before
//!   step 0. Page `p` is `mem[p]`, its word `j` is `mem[p][j]`.
//! * `absorb(h, w) = (rotl(h, 5) ^ w) * 0x517c_c1b7_2722_0a95 mod 2^64` (the word step of
//!   FxHash, rustc's hasher).
//! * `mix(z)`: the SplitMix64 output function, `z = (z ^ z >> 30) * 0xbf58_476d_1ce4_e5b9;
//!   z = (z ^ z >> 27) * 0x94d0_49bb_1331_11eb; z ^ z >> 31` (all mod 2^64).
//! * The chain `h` starts at [`CHAIN_START`] (the FNV-1a 64 offset basis).
//! * Step `k` (from 0) with `pages = N`:
//!   1. `h = absorb(h, k)`;
//!   2. for `i` in `0..N`, with `p = (k * N + i) mod span`:
//!      * read: for `j` in `0..512`, `h = absorb(h, mem[p][j])` (the page's old contents,
//!        written by an earlier step — possibly before a failover — or zero);
//!      * write: `s = absorb(absorb(h, k), i)`; for `j` in `0..512`,
//!        `s = s + 0x9e37_79b9_7f4a_7c15` and `mem[p][j] = mix(s)`;
//!   3. the step's chain value is `h`.
//!
//! Work mode may rewrite only `words = W < 512` words of each page (`words=`, for benchmarks
//! of partly rewritten pages): step 2's write then covers `j` in `o..o + W`, a window of its
//! own for each page, `o = (p * W) mod (512 - W + 1)`, taking `s` through the same `W` values,
//! and the page's other words keep their contents. Work mode prints no chain values, so only
//! the guest computes this variant.
//!
//! Every word of a page written at step `k` is read again `span / N` steps later (rounded up),
//! so a page whose contents change behind the guest's back changes the chain within that many
//! steps.

/// Words per page.
pub const PAGE_WORDS: usize = 512;
/// The chain's value before step 0.
pub const CHAIN_START: u64 = 0xcbf2_9ce4_8422_2325;
/// FxHash's multiplier.
const FX_MUL: u64 = 0x517c_c1b7_2722_0a95;
/// SplitMix64's increment (2^64 / golden ratio).
const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// One page of the working set.
pub type Page = [u64; PAGE_WORDS];

/// Folds `word` into the chain value `h`.
pub fn absorb(h: u64, word: u64) -> u64 {
    (h.rotate_left(5) ^ word).wrapping_mul(FX_MUL)
}

/// SplitMix64's output function.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The hash chain over a working set, advanced one step at a time.
pub struct Work<'m> {
    mem: &'m mut [Page],
    pages_per_step: u64,
    /// Words of each page a step rewrites.
    words: usize,
    chain: u64,
    next_step: u64,
    /// `(next_step * pages_per_step) mod span`: the next page to visit.
    cursor: usize,
}

impl<'m> Work<'m> {
    /// Zeroes `mem` (the working set, at least one page) and starts the chain before step 0,
    /// dirtying `pages_per_step` pages per step, `words` (1..=512, more counts as 512) of each.
    pub fn new(mem: &'m mut [Page], pages_per_step: u64, words: u64) -> Self {
        mem.iter_mut().for_each(|page| page.fill(0));
        Work {
            mem,
            pages_per_step,
            words: (words.clamp(1, PAGE_WORDS as u64)) as usize,
            chain: CHAIN_START,
            next_step: 0,
            cursor: 0,
        }
    }

    /// The number of the step [`Work::step`] runs next.
    pub fn next_step(&self) -> u64 {
        self.next_step
    }

    /// Runs the next step; returns its number and chain value.
    pub fn step(&mut self) -> (u64, u64) {
        let k = self.next_step;
        let mut h = absorb(self.chain, k);
        let w = self.words;
        // W = 512 gives m = 1 and the whole page.
        let m = PAGE_WORDS - w + 1;
        for i in 0..self.pages_per_step {
            let start = self.cursor % m * w % m;
            let page = &mut self.mem[self.cursor];
            h = page.iter().fold(h, |h, &word| absorb(h, word));
            let mut s = absorb(absorb(h, k), i);
            for word in &mut page[start..start + w] {
                s = s.wrapping_add(GOLDEN);
                *word = mix(s);
            }
            self.cursor = (self.cursor + 1) % self.mem.len();
        }
        self.chain = h;
        self.next_step = k + 1;
        (k, h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(span: usize, pages: u64, steps: usize) -> (Vec<u64>, Vec<Page>) {
        let mut mem = vec![[0xAAu64; PAGE_WORDS]; span];
        let mut work = Work::new(&mut mem, pages, PAGE_WORDS as u64);
        let chains = (0..steps)
            .map(|n| {
                let (k, chain) = work.step();
                assert_eq!(k, n as u64);
                chain
            })
            .collect();
        (chains, mem)
    }

    #[test]
    fn step_zero_reads_zeroed_memory() {
        // Whatever was in memory before, step 0 reads zeros: absorb(k = 0), then 512 zeros.
        let (chains, _) = run(4, 1, 1);
        let expected = (0..PAGE_WORDS).fold(absorb(CHAIN_START, 0), |h, _| absorb(h, 0));
        assert_eq!(chains, [expected]);
    }

    #[test]
    fn pages_are_visited_round_robin() {
        // span 5, 3 pages per step: step 0 writes pages 0, 1, 2; step 1 writes 3, 4, 0.
        let (_, after0) = run(5, 3, 1);
        let written = |mem: &[Page]| mem.iter().map(|p| p[0] != 0).collect::<Vec<_>>();
        assert_eq!(written(&after0), [true, true, true, false, false]);
        let (_, after1) = run(5, 3, 2);
        assert_eq!(written(&after1), [true; 5]);
        assert_ne!(after0[0], after1[0], "page 0 rewritten at step 1");
        assert_eq!(
            after0[1..3],
            after1[1..3],
            "pages 1 and 2 untouched at step 1"
        );
    }

    #[test]
    fn chains_are_deterministic_and_depend_on_the_parameters() {
        let (a, _) = run(8, 2, 12);
        assert_eq!(a, run(8, 2, 12).0);
        assert_ne!(a, run(8, 3, 12).0);
        assert_ne!(a, run(9, 2, 12).0);
        let distinct: std::collections::BTreeSet<_> = a.iter().collect();
        assert_eq!(distinct.len(), a.len());
    }

    #[test]
    fn a_partial_step_rewrites_each_pages_own_window_of_words() {
        let mut mem = vec![[0u64; PAGE_WORDS]; 12];
        let mut work = Work::new(&mut mem, 5, 64);
        let mut before = vec![[0u64; PAGE_WORDS]; 12];
        let mut starts = Vec::new();
        for k in 0..20usize {
            work.step();
            for i in 0..5 {
                let p = (k * 5 + i) % 12;
                let after = work.mem[p];
                let changed: Vec<usize> = (0..PAGE_WORDS)
                    .filter(|&j| after[j] != before[p][j])
                    .collect();
                // 64 consecutive words at (p * 64) mod 449, the rest as they were.
                let start = p * 64 % 449;
                assert_eq!(
                    changed,
                    (start..start + 64).collect::<Vec<_>>(),
                    "step {k} page {p}"
                );
                starts.push(start);
                before[p] = after;
            }
        }
        assert!(
            starts.iter().any(|&s| s % 64 != 0),
            "windows also fall off 64-word lines"
        );
        // All 512 words is the paced demo's step.
        let (whole, _) = run(1, 1, 3);
        let mut mem = vec![[0u64; PAGE_WORDS]; 1];
        let mut work = Work::new(&mut mem, 1, 512);
        let chains: Vec<u64> = (0..3).map(|_| work.step().1).collect();
        assert_eq!(chains, whole);
    }
}
