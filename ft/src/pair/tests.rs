// SPDX-License-Identifier: MIT OR Apache-2.0
//! The pair simulated end to end: a guest writing pages at random while the primary
//! checkpoints it, messages crossing an in-order link, the backup applying epochs, and the
//! primary killed at random moments.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::string::ToString;
use alloc::vec::Vec;

use super::backup::Backup;
use super::cpu_model::tests::{older, server};
use super::cpu_model::{CpuMismatch, CpuModel};
use super::digest::memory_digest;
use super::message::{Hello, Message, MessageError, PAIR_VERSION, PairError};
use super::primary::{FaultOutcome, GuestRam, Primary, PrimaryConfig, PrimaryError};
use crate::link::Role;
use crate::stream::{PAGE_SIZE, PageBuf, PageStore};
use crate::testutil::Rng;

const PAGES: u64 = 96;

/// Guest memory with write protection and dirty tracking, like EPT/NPT with A/D bits, and a
/// TLB: a lifted protection stays cached (`stale`) until a flush, which the primary's callers
/// do only when a protection was added (as the kernel does: `GuestMemory::sync_tlb`).
struct SimRam {
    pages: Vec<Box<PageBuf>>,
    protected: BTreeSet<u64>,
    dirty: BTreeSet<u64>,
    /// Pages the TLB still holds read-only though the table lets the guest write them.
    stale: BTreeSet<u64>,
    /// A protection was added since the last flush.
    flush_requested: bool,
    /// Whether the hardware sets dirty flags (false: a CPU without them, harvests find none).
    dirty_flags: bool,
}

impl SimRam {
    fn new() -> Self {
        Self {
            pages: (0..PAGES).map(|_| Box::new([0u8; PAGE_SIZE])).collect(),
            protected: BTreeSet::new(),
            dirty: BTreeSet::new(),
            stale: BTreeSet::new(),
            flush_requested: false,
            dirty_flags: true,
        }
    }

    fn harvest(&mut self) -> Vec<u64> {
        let dirty = core::mem::take(&mut self.dirty);
        if !self.dirty_flags {
            return Vec::new();
        }
        dirty.into_iter().collect()
    }

    /// Flushes the TLB if a protection was added (what the caller does after each call into
    /// the primary).
    fn sync_tlb(&mut self) {
        if core::mem::take(&mut self.flush_requested) {
            self.stale.clear();
        }
    }

    fn snapshot(&self) -> Vec<Box<PageBuf>> {
        self.pages.clone()
    }
}

impl GuestRam for SimRam {
    fn page(&self, gfn: u64) -> Option<&PageBuf> {
        self.pages.get(gfn as usize).map(|p| &**p)
    }

    fn set_protected(&mut self, gfn: u64, protected: bool) {
        if protected {
            self.protected.insert(gfn);
            self.flush_requested = true;
        } else if self.protected.remove(&gfn) {
            self.stale.insert(gfn);
        }
    }

    fn is_protected(&self, gfn: u64) -> bool {
        self.protected.contains(&gfn)
    }
}

/// A guest write: faults into the primary first if the page is protected or its translation
/// is still cached read-only. The fault drops the faulting page's cached translation (Intel
/// SDM Vol. 3C, 29.4.3.1).
fn guest_write(primary: &mut Primary, ram: &mut SimRam, gfn: u64, value: u64) -> FaultOutcome {
    let mut outcome = FaultOutcome::NotOurs;
    if ram.protected.contains(&gfn) || ram.stale.contains(&gfn) {
        outcome = primary.on_write_fault(ram, gfn).expect("fault handled");
        assert_ne!(
            outcome,
            FaultOutcome::NotOurs,
            "page {gfn} protected by nobody"
        );
        ram.stale.remove(&gfn);
        ram.sync_tlb();
        assert!(
            !ram.protected.contains(&gfn),
            "write allowed on a protected page"
        );
    }
    let page = &mut ram.pages[gfn as usize];
    let at = (value as usize % (PAGE_SIZE / 8)) * 8;
    page[at..at + 8].copy_from_slice(&value.to_le_bytes());
    ram.dirty.insert(gfn);
    outcome
}

struct BackupRam(Vec<Box<PageBuf>>);

impl PageStore for BackupRam {
    fn page_mut(&mut self, gfn: u64) -> Option<&mut PageBuf> {
        self.0.get_mut(gfn as usize).map(|p| &mut **p)
    }

    fn insert_page(&mut self, gfn: u64) -> Option<&mut PageBuf> {
        self.page_mut(gfn)
    }
}

fn config(stun_buffers: usize) -> PrimaryConfig {
    PrimaryConfig {
        ram_pages: PAGES,
        stun_buffers,
        delta_cache: 16,
        hot_threshold: 3,
        output_capacity: 1 << 20,
        digests: true,
        session: 7,
        track_writes: false,
        clock: || 0,
    }
}

fn digest_of(pages: &[Box<PageBuf>]) -> u128 {
    memory_digest(pages.iter().enumerate().map(|(g, p)| (g as u64, &**p)))
}

/// What a simulated run leaves behind.
struct Outcome {
    /// Output the primary released, in order.
    released_by_primary: Vec<u8>,
    /// Output the backup released at takeover.
    released_by_backup: Vec<u8>,
    /// Output the guest produced per epoch.
    produced: Vec<Vec<u8>>,
    /// Epoch the backup resumed from.
    takeover_epoch: Option<u64>,
    /// Newest epoch the primary released (acknowledged).
    primary_acked: Option<u64>,
    /// Newest RELEASED notice the backup got.
    released_through: Option<u64>,
    copied_on_write: u64,
    sent_first: u64,
    spurious: u64,
    tracked: u64,
    /// Pages sent as deltas.
    deltas: u64,
    /// Hot pages copied after the stun (by the helper beside the guest).
    copied_after_stun: u64,
}

/// Runs the pair for `steps` steps, then kills the primary (everything it had not yet
/// delivered is lost) and takes over on the backup; checks memory, vCPU state and digest
/// against the primary's snapshot at the takeover epoch. Without `dirty_flags` the CPU sets
/// none and the primary tracks writes by protection. With `precopy` rounds, the guest ran
/// unprotected before the pair formed, and keeps writing while the rounds are sent.
fn run_pair(
    seed: u64,
    steps: u32,
    stun_buffers: usize,
    clean_death: bool,
    dirty_flags: bool,
    precopy: u32,
) -> Outcome {
    let mut rng = Rng::new(seed);
    let mut ram = SimRam::new();
    ram.dirty_flags = dirty_flags;
    let mut primary = Primary::new(&PrimaryConfig {
        track_writes: !dirty_flags,
        // No cache, one that must evict, one that holds all of memory.
        delta_cache: [0, 8, 128][(seed % 7 % 3) as usize],
        ..config(stun_buffers)
    })
    .expect("primary");
    // Every other run with dirty flags leaves the hot pages' copies for after the stun, to a
    // helper that copies them between the guest's writes.
    let helper = dirty_flags && seed % 4 < 2;
    primary.copy_hot_after_stun(helper);
    let mut copied_after_stun = 0;
    let mut backup = Backup::new(PAGES);
    let mut backup_ram = BackupRam((0..PAGES).map(|_| Box::new([0xAA; PAGE_SIZE])).collect());
    let mut to_backup: VecDeque<Vec<u8>> = VecDeque::new();
    let mut to_primary: VecDeque<Vec<u8>> = VecDeque::new();
    let mut snapshots: BTreeMap<u64, (Vec<Box<PageBuf>>, Vec<u8>)> = BTreeMap::new();
    let mut produced: Vec<Vec<u8>> = alloc::vec![Vec::new()];
    let mut released_by_primary = Vec::new();
    let mut digests = BTreeMap::new();
    let mut released_through = None;
    let (mut copied_on_write, mut sent_first, mut spurious, mut tracked) = (0, 0, 0, 0);
    let hot: Vec<u64> = (0..6).collect();
    if precopy > 0 {
        for _ in 0..rng.below(200) {
            guest_write(&mut primary, &mut ram, rng.below_u64(PAGES), rng.next_u64());
        }
    }
    for round in 0..precopy {
        let dirty = ram.harvest();
        let r = primary.precopy(&mut ram, &dirty).expect("pre-copy round");
        assert_eq!((r.full, r.epoch), (round == 0, u64::from(round)));
        assert!(ram.protected.is_empty(), "pre-copy protects nothing");
        // The round's epoch holds no output: the guest's output is not held before the first
        // checkpoint (there is nothing to resume that produced it).
        produced.push(Vec::new());
        while !primary.sender_idle() {
            for _ in 0..rng.below(4) {
                let gfn = rng.below_u64(PAGES);
                let outcome = guest_write(&mut primary, &mut ram, gfn, rng.next_u64());
                assert_eq!(outcome, FaultOutcome::NotOurs, "no fault during pre-copy");
            }
            primary.pump_sender(&mut ram, rng.below(8)).expect("pump");
            while let Some(m) = primary.next_message() {
                to_backup.push_back(m);
            }
        }
    }
    for step in 0..steps {
        match rng.below(10) {
            0..=4 => {
                // The guest writes: hot pages often, the rest at random.
                let gfn = if rng.below(2) == 0 {
                    hot[rng.below(hot.len())]
                } else {
                    rng.below_u64(PAGES)
                };
                match guest_write(&mut primary, &mut ram, gfn, rng.next_u64()) {
                    FaultOutcome::Copied => copied_on_write += 1,
                    FaultOutcome::SentFirst => sent_first += 1,
                    FaultOutcome::Spurious => spurious += 1,
                    FaultOutcome::Tracked => tracked += 1,
                    FaultOutcome::NotOurs => {}
                }
                if rng.below(4) == 0 {
                    let line = alloc::format!("step {step};");
                    primary.hold_output(line.as_bytes()).expect("room");
                    produced
                        .last_mut()
                        .expect("epoch")
                        .extend_from_slice(line.as_bytes());
                }
            }
            5 => {
                // Epoch end: the stun waits for the sender first.
                while !primary.sender_idle() {
                    primary.pump_sender(&mut ram, usize::MAX).expect("pump");
                    ram.sync_tlb();
                    while let Some(m) = primary.next_message() {
                        to_backup.push_back(m);
                    }
                }
                let dirty = ram.harvest();
                let epoch = primary.current_epoch();
                let vcpu = alloc::format!("vcpu@{epoch}").into_bytes();
                snapshots.insert(epoch, (ram.snapshot(), vcpu.clone()));
                primary
                    .stun(&mut ram, &dirty, u64::from(step), &vcpu, b"devices")
                    .expect("stun");
                ram.sync_tlb();
                produced.push(Vec::new());
            }
            6 | 7 => {
                for _ in 0..rng.below(3) {
                    let copied = primary.copy_hot(&mut ram).expect("hot page copied");
                    assert!(helper || !copied, "hot pages copied at the stun");
                    copied_after_stun += u64::from(copied);
                }
                primary.pump_sender(&mut ram, rng.below(8)).expect("pump");
                ram.sync_tlb();
                while let Some(m) = primary.next_message() {
                    to_backup.push_back(m);
                }
            }
            8 => {
                for _ in 0..rng.below(4) {
                    let Some(m) = to_backup.pop_front() else {
                        break;
                    };
                    match Message::decode(&m).expect("decodes") {
                        Message::Stream(bytes) => {
                            let applied =
                                backup.on_stream(bytes, &mut backup_ram).expect("applies");
                            // Several epochs may complete in one chunk: memory then holds the
                            // newest one's stun contents (a pre-copy round's has none).
                            if let Some(last) = applied.last().filter(|a| a.checkpoint) {
                                let (pages, _) = &snapshots[&last.epoch];
                                for (gfn, page) in pages.iter().enumerate() {
                                    assert!(
                                        backup_ram.0[gfn] == *page,
                                        "epoch {} page {gfn} differs from the stun contents",
                                        last.epoch
                                    );
                                }
                            }
                            for a in &applied {
                                to_primary.push_back(Message::Ack(a.epoch).encode());
                            }
                        }
                        Message::Released(e) => {
                            backup.on_released(e);
                            released_through = Some(e);
                        }
                        other => panic!("unexpected {other:?}"),
                    }
                }
            }
            _ => {
                if let Some(m) = to_primary.pop_front() {
                    let Ok(Message::Ack(e)) = Message::decode(&m) else {
                        panic!("not an ack")
                    };
                    let sent = primary
                        .on_ack(e, |b| released_by_primary.extend_from_slice(b))
                        .expect("ack");
                    if let Some(s) = sent {
                        digests.insert(s.epoch, s.digest.expect("digests on"));
                    }
                }
            }
        }
    }
    // The primary dies. On a clean death everything it had handed to the link arrives;
    // otherwise what was still queued is lost.
    if clean_death {
        while let Some(m) = primary.next_message() {
            to_backup.push_back(m);
        }
        for m in to_backup.drain(..) {
            match Message::decode(&m).expect("decodes") {
                Message::Stream(bytes) => {
                    drop(backup.on_stream(bytes, &mut backup_ram).expect("applies"))
                }
                Message::Released(e) => {
                    backup.on_released(e);
                    released_through = Some(e);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    let takeover = backup.takeover();
    let takeover_epoch = takeover.as_ref().map(|t| t.epoch);
    let mut released_by_backup = Vec::new();
    if let Some(t) = takeover {
        let (pages, vcpu) = &snapshots[&t.epoch];
        assert_eq!(t.vcpu, *vcpu);
        assert_eq!(t.devices, b"devices");
        assert_eq!(digest_of(&backup_ram.0), digest_of(pages));
        if let Some(d) = digests.get(&t.epoch) {
            assert_eq!(
                *d,
                digest_of(pages),
                "primary's digest for epoch {}",
                t.epoch
            );
        }
        released_by_backup = t.unreleased_output;
    }
    Outcome {
        released_by_primary,
        released_by_backup,
        produced,
        takeover_epoch,
        primary_acked: primary.acked(),
        released_through,
        copied_on_write,
        sent_first,
        spurious,
        tracked,
        deltas: primary.copy_stats().0.deltas,
        copied_after_stun,
    }
}

fn epochs(produced: &[Vec<u8>], from: Option<u64>, to: Option<u64>) -> Vec<u8> {
    let from = from.map_or(0, |f| f as usize + 1);
    let to = to.map_or(0, |t| t as usize + 1);
    produced
        .get(from..to)
        .map(<[Vec<u8>]>::concat)
        .unwrap_or_default()
}

#[test]
fn backup_resumes_from_exact_stun_contents_and_output_has_no_gap() {
    let faults = run_pairs(true);
    assert!(
        faults.spurious > 0,
        "no write ever met a stale read-only translation: the test is too gentle"
    );
    assert_eq!(faults.tracked, 0, "dirty flags: nothing tracked by faults");
}

/// Fault counts over many simulated runs.
#[derive(Default)]
struct FaultCounts {
    spurious: u64,
    tracked: u64,
}

/// Runs [`run_pair`] with 160 seeds (every pool size, clean and abrupt deaths) and checks that
/// the released output continues with no gap.
fn run_pairs(dirty_flags: bool) -> FaultCounts {
    let (mut cow, mut first, mut takeovers, mut repeats, mut deltas) = (0, 0, 0, 0, 0);
    let mut copied_after_stun = 0;
    let mut counts = FaultCounts::default();
    for seed in 1..=160u64 {
        let stun_buffers = [0, 2, 16][seed as usize % 3];
        let clean = seed % 2 == 0;
        let precopy = match dirty_flags {
            true => (seed % 5) as u32,
            false => 0,
        };
        let o = run_pair(
            seed * 0x9E37_79B9,
            200 + (seed as u32 * 37) % 1200,
            stun_buffers,
            clean,
            dirty_flags,
            precopy,
        );
        cow += o.copied_on_write;
        first += o.sent_first;
        copied_after_stun += o.copied_after_stun;
        deltas += o.deltas;
        counts.spurious += o.spurious;
        counts.tracked += o.tracked;
        let Some(m) = o.takeover_epoch else {
            assert!(o.released_by_primary.is_empty());
            continue;
        };
        takeovers += 1;
        // The primary released epochs 0..=A, the backup releases R+1..=M: R <= A <= M, so
        // nothing is lost; epochs R+1..=A (RELEASED notices lost with the primary) repeat.
        let (a, r) = (o.primary_acked, o.released_through);
        assert!(
            a.is_none_or(|a| a <= m),
            "seed {seed}: acked beyond the applied epoch"
        );
        assert!(r <= a, "seed {seed}: RELEASED beyond what was acknowledged");
        assert_eq!(
            o.released_by_primary,
            epochs(&o.produced, None, a),
            "seed {seed}"
        );
        assert_eq!(
            o.released_by_backup,
            epochs(&o.produced, r, Some(m)),
            "seed {seed}"
        );
        if clean {
            assert_eq!(r, a, "seed {seed}: a clean death repeats nothing");
        }
        repeats += u32::from(r != a);
    }
    assert!(takeovers > 140, "{takeovers} takeovers");
    assert!(
        repeats > 0,
        "abrupt deaths never lost a RELEASED notice: the test is too gentle"
    );
    assert!(
        cow > 0 && first > 0,
        "{cow} copy-on-write faults, {first} sent first"
    );
    // Memory and output above were checked with pages sent as deltas against the copy the
    // backup held, acknowledged or not.
    assert!(deltas > 1000, "only {deltas} pages went as deltas");
    // With dirty flags, half the runs copied hot pages after their stuns.
    assert_eq!(copied_after_stun > 0, dirty_flags, "{copied_after_stun}");
    counts
}

#[test]
fn stun_refuses_while_the_sender_is_busy_and_pages_beyond_ram() {
    let mut ram = SimRam::new();
    let mut p = Primary::new(&config(4)).expect("primary");
    p.stun(&mut ram, &[PAGES], 0, b"v", b"d")
        .expect("epoch 0 copies everything");
    assert!(!p.sender_idle());
    assert_eq!(
        ram.protected.len() as u64,
        PAGES,
        "epoch 0 protects all of memory"
    );
    assert_eq!(
        p.stun(&mut ram, &[1], 1, b"v", b"d").unwrap_err(),
        PrimaryError::SenderBusy
    );
    p.pump_sender(&mut ram, usize::MAX).expect("pump");
    while p.next_message().is_some() {}
    while !p.sender_idle() {
        p.pump_sender(&mut ram, usize::MAX).expect("pump");
        while p.next_message().is_some() {}
    }
    assert!(
        ram.protected.is_empty(),
        "every sent page is writable again"
    );
    assert_eq!(
        p.stun(&mut ram, &[1, PAGES], 1, b"v", b"d").unwrap_err(),
        PrimaryError::NoSuchPage(PAGES)
    );
    let report = p
        .stun(&mut ram, &[1, 1, 3], 2, b"v", b"d")
        .expect("epoch 1");
    assert_eq!((report.epoch, report.dirty), (1, 2));
}

#[test]
fn acks_for_unsent_epochs_are_refused_and_release_nothing() {
    let mut ram = SimRam::new();
    let mut p = Primary::new(&config(4)).expect("primary");
    p.hold_output(b"line").expect("room");
    let mut released = Vec::new();
    assert!(matches!(
        p.on_ack(0, |b| released.extend_from_slice(b)),
        Err(PrimaryError::AckAhead {
            acked: 0,
            sent: None
        })
    ));
    p.stun(&mut ram, &[], 0, b"v", b"d").expect("epoch 0");
    assert!(
        p.on_ack(0, |b| released.extend_from_slice(b)).is_err(),
        "not sent yet"
    );
    while !p.sender_idle() {
        p.pump_sender(&mut ram, usize::MAX).expect("pump");
        while p.next_message().is_some() {}
    }
    assert!(released.is_empty());
    let sent = p.on_ack(0, |b| released.extend_from_slice(b)).expect("ack");
    assert_eq!(released, b"line");
    assert_eq!(sent.map(|s| s.pages), Some(PAGES));
    // Reported once, acknowledged or not.
    assert_eq!(p.take_completed().map(|s| s.epoch), Some(0));
    assert_eq!(p.take_completed(), None);
    assert_eq!(
        p.on_ack(0, |_| panic!("released twice")).expect("repeat"),
        None
    );
}

#[test]
fn backup_refuses_skipped_epochs_and_keeps_what_it_applied() {
    let mut ram = SimRam::new();
    let mut p = Primary::new(&config(0)).expect("primary");
    let mut stream = Vec::new();
    for epoch in 0..3u64 {
        guest_write(&mut p, &mut ram, epoch, epoch + 1);
        let dirty = ram.harvest();
        p.stun(&mut ram, &dirty, epoch, b"v", b"d").expect("stun");
        let mut msgs = Vec::new();
        while !p.sender_idle() {
            p.pump_sender(&mut ram, usize::MAX).expect("pump");
            while let Some(m) = p.next_message() {
                msgs.push(m);
            }
        }
        while let Some(m) = p.next_message() {
            msgs.push(m);
        }
        stream.push(msgs);
    }
    let mut backup = Backup::new(PAGES);
    let mut bram = BackupRam((0..PAGES).map(|_| Box::new([0; PAGE_SIZE])).collect());
    let mut feed = |b: &mut Backup, msgs: &[Vec<u8>]| -> Result<(), super::backup::BackupError> {
        for m in msgs {
            if let Message::Stream(bytes) = Message::decode(m).expect("decodes") {
                b.on_stream(bytes, &mut bram)?;
            }
        }
        Ok(())
    };
    feed(&mut backup, &stream[0]).expect("epoch 0");
    assert_eq!(backup.last_applied(), Some(0));
    let err = feed(&mut backup, &stream[2]).unwrap_err();
    assert_eq!(err.to_string(), "checkpoint epoch 2 received, 1 expected");
    assert_eq!(backup.last_applied(), Some(0));
    assert_eq!(backup.takeover().map(|t| t.epoch), Some(0));
}

#[test]
fn hello_mismatches_are_refused_with_their_reason() {
    let primary = Hello {
        version: PAIR_VERSION,
        role: Role::Primary,
        epoch_min_ms: 5,
        epoch_max_ms: 100,
        guest_ram: 64 << 20,
        guest_image: [1; 32],
        cpu: server(),
        running: false,
        witness: false,
    };
    let backup = Hello {
        role: Role::Backup,
        cpu: older(),
        ..primary
    };
    let baseline = CpuModel::intersect(&server(), &older()).unwrap();
    assert_eq!(primary.check(&backup), Ok(baseline));
    assert_eq!(
        backup.check(&primary),
        Ok(baseline),
        "both hosts agree on the baseline"
    );
    assert_ne!(baseline, server());
    assert_eq!(
        primary.check(&primary),
        Err(PairError::RoleConflict(Role::Primary))
    );
    let small = Hello {
        guest_ram: 32 << 20,
        ..backup
    };
    assert_eq!(
        primary.check(&small).unwrap_err().to_string(),
        "guest RAM differs: 64 MiB here, 32 MiB on the peer (give both the same guest_ram=)"
    );
    let other = Hello {
        guest_image: [2; 32],
        ..backup
    };
    let watched = Hello {
        witness: true,
        ..backup
    };
    for (ours, theirs, says) in [
        (&primary, &watched, "off here, on"),
        (&watched, &primary, "on here, off"),
    ] {
        let why = ours.check(theirs).unwrap_err().to_string();
        assert!(
            why.starts_with("witness= differs: ") && why.contains(says),
            "{why}"
        );
    }
    assert!(matches!(
        primary.check(&other),
        Err(PairError::GuestImage { .. })
    ));
    let mut intel = backup;
    intel.cpu.vendor = *b"GenuineIntel";
    for (ours, theirs) in [(&primary, &intel), (&intel, &primary)] {
        assert_eq!(
            ours.check(theirs).unwrap_err().to_string(),
            "the CPU vendors differ: AuthenticAMD on the primary, GenuineIntel on the backup \
             (a guest cannot fail over to another vendor's CPU)",
            "both sides give the same reason"
        );
    }
    let huge = Hello {
        guest_ram: 1 << 44,
        ..backup
    };
    let wide = Hello {
        guest_ram: 1 << 44,
        ..primary
    };
    assert_eq!(
        wide.check(&huge),
        Err(PairError::Cpu(CpuMismatch::AddressWidth {
            bits: 43,
            needed: 44
        }))
    );
    for m in [
        Message::Hello(alloc::boxed::Box::new(primary)),
        Message::Ack(9),
        Message::Released(u64::MAX),
        Message::Ended(3),
        Message::Stream(b"abc"),
    ] {
        assert_eq!(Message::decode(&m.encode()).as_ref(), Ok(&m));
    }
}

#[test]
fn messages_decode_strictly_and_never_panic() {
    let hello = Message::Hello(alloc::boxed::Box::new(Hello {
        version: PAIR_VERSION,
        role: Role::Backup,
        epoch_min_ms: 1,
        epoch_max_ms: 2,
        guest_ram: 3,
        guest_image: [4; 32],
        cpu: server(),
        running: false,
        witness: false,
    }))
    .encode();
    assert!(Message::decode(&hello).is_ok());
    for len in 0..hello.len() {
        assert!(
            Message::decode(&hello[..len]).is_err(),
            "truncated to {len}"
        );
    }
    let mut long = hello.clone();
    long.push(0);
    assert_eq!(
        Message::decode(&long),
        Err(MessageError::BadLength { tag: 1, len: 309 })
    );
    let mut bad_role = hello.clone();
    bad_role[3] = 3;
    assert!(Message::decode(&bad_role).is_err());
    let mut running_backup = hello.clone();
    running_backup[4] = 1;
    assert_eq!(
        Message::decode(&running_backup),
        Err(MessageError::BadField("flags")),
        "only a primary runs its guest already"
    );
    let mut unknown = hello.clone();
    unknown[4] = 4;
    assert_eq!(
        Message::decode(&unknown),
        Err(MessageError::BadField("flags"))
    );
    let mut watched = hello.clone();
    watched[4] = 2;
    assert!(matches!(Message::decode(&watched), Ok(Message::Hello(h)) if h.witness));
    let mut old = hello.clone();
    old[1] = 1;
    assert_eq!(
        Message::decode(&old[..53]).unwrap_err().to_string(),
        "the peer speaks pair protocol version 1, this host 4"
    );
    let mut bad_cpu = hello.clone();
    bad_cpu[53 + 222] = 9;
    assert_eq!(
        Message::decode(&bad_cpu),
        Err(MessageError::BadField("TSC policy"))
    );
    assert!(Message::decode(&[2]).is_err(), "empty stream chunk");
    assert!(Message::decode(&[9, 0]).is_err());
    let mut rng = Rng::new(5);
    for _ in 0..100_000 {
        let len = rng.below(320);
        let bytes = rng.bytes(len);
        let _ = Message::decode(&bytes);
    }
}

mod faults;
mod precopy;
mod stun_parts;
