//! The lazy sender against simulated guest memory: whatever the guest writes while pages are
//! in flight, the backup ends every epoch with exactly the guest's memory at that epoch's stun.

use super::*;
use crate::testutil::Rng;
use std::collections::BTreeSet;
use std::vec;
use std::vec::Vec;

const PAGES: usize = 64;
const PAGE: usize = 256; // bytes per simulated page: the logic does not depend on the size

struct Sim {
    guest: Vec<Vec<u8>>,
    backup: Vec<Vec<u8>>,
    buffers: Vec<Vec<u8>>,
    protected: BTreeSet<Pfn>,
    dirty: BTreeSet<Pfn>,
    pool: StunPool,
    history: History,
    rng: Rng,
    /// Hot pages are copied after the stun, by a helper ([`Sim::copy_hot`]).
    hot_later: bool,
}

impl Sim {
    fn new(pool: usize) -> Self {
        let guest: Vec<Vec<u8>> = (0..PAGES).map(|p| vec![p as u8; PAGE]).collect();
        Self {
            backup: guest.clone(), // the initial full copy
            guest,
            buffers: vec![vec![0; PAGE]; pool],
            protected: BTreeSet::new(),
            dirty: BTreeSet::new(),
            pool: StunPool::new(pool),
            history: History::new(PAGES, 3),
            rng: Rng::new(0x5EED),
            hot_later: false,
        }
    }

    /// The helper beside the guest copies one hot page left for after the stun, if any.
    fn copy_hot(&mut self, epoch: &mut LazyEpoch) {
        if let Some((pfn, n)) = epoch.next_hot_copy() {
            assert!(self.protected.contains(&pfn), "copied while protected");
            self.buffers[n] = self.guest[pfn as usize].clone();
            epoch.hot_copied(pfn);
            self.protected.remove(&pfn);
        }
    }

    /// A guest write to `pfn`, going through the fault path if the page is protected.
    fn write(&mut self, epoch: &mut LazyEpoch, pfn: Pfn, value: u8) {
        if self.protected.contains(&pfn) {
            match epoch.on_write(pfn, &mut self.pool) {
                WriteVerdict::CopyTo(n) => {
                    self.buffers[n] = self.guest[pfn as usize].clone();
                }
                WriteVerdict::SendNow => {
                    self.backup[pfn as usize] = self.guest[pfn as usize].clone();
                    epoch.sent(pfn, &mut self.pool);
                }
                WriteVerdict::Proceed => panic!("a protected page in the lazy set must fault"),
            }
            self.protected.remove(&pfn);
        }
        let i = self.rng.below(PAGE);
        self.guest[pfn as usize][i] = value;
        self.dirty.insert(pfn);
    }

    /// The sender moves one page.
    fn send_one(&mut self, epoch: &mut LazyEpoch) {
        let Some((pfn, source)) = epoch.next() else {
            return;
        };
        self.backup[pfn as usize] = match source {
            Source::Buffer(n) => self.buffers[n].clone(),
            Source::Guest | Source::Reserved(_) => {
                assert!(
                    self.protected.contains(&pfn),
                    "read from guest only while protected"
                );
                self.guest[pfn as usize].clone()
            }
            Source::Live => self.guest[pfn as usize].clone(),
        };
        if epoch.sent(pfn, &mut self.pool) {
            self.protected.remove(&pfn);
        }
    }

    /// Stun: harvest, plan, copy hot pages, protect the rest.
    fn stun(&mut self) -> (LazyEpoch, Vec<Vec<u8>>) {
        let dirty: Vec<Pfn> = core::mem::take(&mut self.dirty).into_iter().collect();
        self.history.record(&dirty);
        let (epoch, plan) = LazyEpoch::plan(&dirty, &self.history, &mut self.pool, self.hot_later);
        for (pfn, n) in plan.copy {
            self.buffers[n] = self.guest[pfn as usize].clone();
        }
        self.protected.extend(plan.protect);
        (epoch, self.guest.clone())
    }
}

fn run(pool: usize, epochs: usize, hot_pages: u64) -> LazyStats {
    run_with(Sim::new(pool), epochs, hot_pages)
}

fn run_with(mut sim: Sim, epochs: usize, hot_pages: u64) -> LazyStats {
    let mut total = LazyStats::default();
    for _ in 0..epochs {
        let (mut epoch, snapshot) = sim.stun();
        // The guest runs on (half its writes to the hot pages) while the sender streams.
        for step in 0..200u32 {
            let r = sim.rng.next_u64();
            let pfn = if r.is_multiple_of(2) {
                (r >> 8) % hot_pages
            } else {
                (r >> 8) % PAGES as u64
            };
            sim.write(&mut epoch, pfn, step as u8);
            if sim.rng.next_u64().is_multiple_of(3) {
                sim.send_one(&mut epoch);
            }
            if sim.rng.next_u64().is_multiple_of(2) {
                sim.copy_hot(&mut epoch);
            }
        }
        while !epoch.done() {
            sim.send_one(&mut epoch);
        }
        assert_eq!(sim.pool.free(), sim.pool.size(), "every buffer came back");
        for (p, (got, want)) in sim.backup.iter().zip(&snapshot).enumerate() {
            assert_eq!(got, want, "page {p} differs from its stun-time contents");
        }
        let s = epoch.stats;
        total.copied_in_stun += s.copied_in_stun;
        total.deferred += s.deferred;
        total.copied_on_write += s.copied_on_write;
        total.sent_on_fault += s.sent_on_fault;
        total.hot_without_buffer += s.hot_without_buffer;
        total.copied_after_stun += s.copied_after_stun;
    }
    total
}

#[test]
fn the_backup_gets_stun_time_contents_with_plenty_of_buffers() {
    let s = run(PAGES, 20, 4);
    assert!(
        s.copied_in_stun > 0 && s.deferred > 0 && s.copied_on_write > 0,
        "{s:?}"
    );
    assert_eq!(s.sent_on_fault, 0, "{s:?}");
}

#[test]
fn hot_pages_copied_after_the_stun_reach_the_backup_as_they_were_at_it() {
    let mut sim = Sim::new(PAGES);
    sim.hot_later = true;
    let s = run_with(sim, 20, 4);
    assert_eq!(s.copied_in_stun, 0, "the stun copies nothing: {s:?}");
    assert!(s.copied_after_stun > 0, "the helper copied some: {s:?}");
    assert!(s.copied_on_write > 0, "the guest wrote some first: {s:?}");
    assert_eq!(s.sent_on_fault, 0, "{s:?}");
}

#[test]
fn a_hot_page_written_before_its_copy_takes_its_own_buffer() {
    let mut h = History::new(8, 1);
    h.record(&[2, 4]);
    let mut pool = StunPool::new(2);
    let (mut epoch, plan) = LazyEpoch::plan(&[2, 4, 6], &h, &mut pool, true);
    assert!(plan.copy.is_empty());
    assert_eq!(plan.protect, [2, 4, 6], "hot pages protected too");
    assert_eq!(pool.free(), 0, "their buffers set aside");
    // The guest writes page 4 first: into the buffer set aside, though the pool is empty.
    let WriteVerdict::CopyTo(n) = epoch.on_write(4, &mut pool) else {
        panic!("a reserved page copies on write");
    };
    assert_eq!(
        epoch.next_hot_copy(),
        Some((2, 1 - n)),
        "page 4 is no longer to copy"
    );
    epoch.hot_copied(2);
    assert_eq!(epoch.next_hot_copy(), None);
    // A cold page finds no buffer: sent first.
    assert_eq!(epoch.on_write(6, &mut pool), WriteVerdict::SendNow);
    assert_eq!(epoch.stats.copied_after_stun, 1);
    assert_eq!(epoch.stats.copied_on_write, 1);
    for want in [(2, Source::Buffer(1 - n)), (4, Source::Buffer(n))] {
        assert_eq!(epoch.next(), Some(want));
        assert!(!epoch.sent(want.0, &mut pool), "sent from its buffer");
    }
    assert_eq!(pool.free(), 2, "both buffers back");
}

#[test]
fn an_exhausted_pool_degrades_to_sending_on_the_fault() {
    let s = run(2, 20, 8);
    assert!(s.sent_on_fault > 0, "{s:?}");
    assert!(s.hot_without_buffer > 0, "{s:?}");
}

#[test]
fn hot_pages_are_those_dirtied_in_most_recent_epochs() {
    let mut h = History::new(4, 3);
    for _ in 0..3 {
        h.record(&[0, 1]);
        h.record(&[0]);
    }
    assert!(h.is_hot(0) && h.is_hot(1) && !h.is_hot(2));
    for _ in 0..6 {
        h.record(&[0]);
    }
    assert!(
        h.is_hot(0) && !h.is_hot(1),
        "history forgets after 8 epochs"
    );
    h.record(&[99]); // beyond guest RAM: ignored
    assert!(!h.is_hot(99));
}

/// The history matches a model that shifts every page's bits each epoch, over random dirty
/// sets (pages dirtied twice in one epoch, beyond RAM, or idle for long included).
#[test]
fn history_matches_shifting_every_page_each_epoch() {
    const N: usize = 16;
    let mut rng = Rng::new(0x4157);
    for threshold in 1..=8 {
        let mut h = History::new(N, threshold);
        let mut model = [0u8; N];
        for _ in 0..400 {
            let k = rng.below(6);
            let dirty: Vec<Pfn> = (0..k).map(|_| rng.below(N + 2) as Pfn).collect();
            // Now and then a long quiet stretch.
            let quiet = if rng.below(20) == 0 { 9 } else { 0 };
            for _ in 0..quiet {
                h.record(&[]);
                model.iter_mut().for_each(|b| *b <<= 1);
            }
            h.record(&dirty);
            model.iter_mut().for_each(|b| *b <<= 1);
            for &p in &dirty {
                if let Some(b) = model.get_mut(p as usize) {
                    *b |= 1;
                }
            }
            for (pfn, b) in model.iter().enumerate() {
                assert_eq!(
                    h.is_hot(pfn as Pfn),
                    b.count_ones() >= threshold,
                    "page {pfn}, threshold {threshold}"
                );
            }
        }
    }
}

#[test]
fn plan_splits_hot_and_cold_and_counts_duplicates_once() {
    let mut h = History::new(8, 1);
    h.record(&[1, 2]);
    let mut pool = StunPool::new(1);
    let (epoch, plan) = LazyEpoch::plan(&[1, 2, 3, 3], &h, &mut pool, false);
    assert_eq!(plan.copy, [(1, 0)]);
    assert_eq!(plan.protect, [2, 3]);
    assert_eq!(epoch.stats.hot_without_buffer, 1);
    assert_eq!(epoch.next(), Some((1, Source::Buffer(0))));
    assert_eq!(pool.free(), 0);
}

#[test]
fn one_stun_copies_at_most_its_bound_and_the_pool_keeps_the_rest_for_faults() {
    let n = MAX_COPIED_IN_STUN + 100;
    let dirty: Vec<Pfn> = (0..n as Pfn).collect();
    let mut h = History::new(n, 1);
    h.record(&dirty);
    let mut pool = StunPool::new(n);
    let (mut epoch, plan) = LazyEpoch::plan(&dirty, &h, &mut pool, false);
    assert_eq!(plan.copy.len(), MAX_COPIED_IN_STUN);
    assert_eq!(
        plan.protect.len(),
        100,
        "the hot pages past the bound are protected"
    );
    assert_eq!(pool.free(), 100);
    // A write to one of them copies it into a buffer the stun left in the pool.
    let last = n as Pfn - 1;
    assert!(matches!(
        epoch.on_write(last, &mut pool),
        WriteVerdict::CopyTo(_)
    ));
    assert_eq!(pool.free(), 99);
    // With a CPU beside the guest to copy them, every hot page has its buffer set aside.
    let mut pool = StunPool::new(n);
    let (_, plan) = LazyEpoch::plan(&dirty, &h, &mut pool, true);
    assert!(plan.copy.is_empty());
    assert_eq!((plan.protect.len(), pool.free()), (n, 0));
}

#[test]
fn pages_sent_out_of_order_are_skipped_and_counted_once() {
    let mut pool = StunPool::new(4);
    let mut epoch = LazyEpoch::live(&[9, 3, 5, 3, 7]);
    assert_eq!(epoch.next(), Some((3, Source::Live)));
    // A fault sends 7 first, then 7 again is no longer the epoch's.
    assert!(!epoch.sent(7, &mut pool));
    assert!(!epoch.sent(7, &mut pool));
    assert_eq!(epoch.on_write(7, &mut pool), WriteVerdict::Proceed);
    let mut order = Vec::new();
    while let Some((pfn, _)) = epoch.next() {
        order.push(pfn);
        epoch.sent(pfn, &mut pool);
    }
    assert_eq!(order, [3, 5, 9]);
    assert!(epoch.done());
    // Pages the epoch never had change nothing.
    assert!(!epoch.sent(4, &mut pool));
    assert_eq!(epoch.on_write(4, &mut pool), WriteVerdict::Proceed);
}

#[test]
fn a_cold_page_written_before_it_is_sent_moves_to_a_buffer_once() {
    let h = History::new(16, 8);
    let mut pool = StunPool::new(1);
    let (mut epoch, plan) = LazyEpoch::plan(&[2, 4, 6], &h, &mut pool, false);
    assert_eq!(plan.protect, [2, 4, 6]);
    assert_eq!(epoch.on_write(4, &mut pool), WriteVerdict::CopyTo(0));
    assert_eq!(epoch.on_write(4, &mut pool), WriteVerdict::Proceed);
    assert_eq!(epoch.on_write(6, &mut pool), WriteVerdict::SendNow);
    // Sent from its buffer: the buffer returns and the page was not protected any more.
    assert!(!epoch.sent(4, &mut pool));
    assert_eq!(pool.free(), 1);
    // Sent from guest memory: still protected.
    assert!(epoch.sent(6, &mut pool));
    assert_eq!(epoch.next(), Some((2, Source::Guest)));
    assert!(!epoch.done());
    assert!(epoch.sent(2, &mut pool));
    assert!(epoch.done() && epoch.next().is_none());
}
