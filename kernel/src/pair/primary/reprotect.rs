// SPDX-License-Identifier: MIT OR Apache-2.0
//! Re-protection: a primary whose guest runs unprotected (its backup was lost, or it took the
//! guest over as a backup) waits for a new backup and protects the guest again, without
//! stopping it for the copy of its memory.
//!
//! ```text
//!   Listening ──paired──► Hello ──HELLOs agree──► Syncing: pre-copy rounds (guest runs on)
//!       ▲                   │ refused / silent          │ dirty set small, not shrinking,
//!       └──── Closing ◄─────┘                           │ or rounds used up
//!       ▲                                               ▼
//!       └──────────── backup lost ◄──────── first checkpoint (protected) ──ack──► Off
//! ```
//!
//! The HELLO says the guest runs already and names the CPU model it was offered: the new
//! backup must be able to resume exactly that (`castor_ft::pair::message::Hello::check`).
//! Pre-copy rounds are streamed by the lazy sender between exits like epochs, at most
//! [`PRECOPY_PAGES_PER_TURN`] pages a turn so the guest keeps most of its CPU; their pages
//! are read live, with the dirty log re-armed before each round (`castor_ft::pair::primary`'s
//! `precopy`). The guest's card writes guest memory without dirty flags, so its writes are
//! tracked ([`TrackedNet`]) while the rounds run. The guest's output is not held until the
//! first checkpoint (the backup could not resume anything that produced it); from that stun
//! on the pair runs as it does from the start, and once the backup acknowledges the first
//! checkpoint both consoles say the guest is protected again and how long the sync took.

use alloc::string::String;
use core::sync::atomic::Ordering;

use castor_ft::link::{Event, Role};
use castor_ft::pair::message::Hello;
use castor_ft::pair::primary::{Primary, PrimaryConfig, PrimaryError};
use castor_ft::stream::PAGE_SIZE;

use super::super::MS;
use super::super::hello;
use super::super::memory::PrimaryRam;
use super::Host;
use super::pipeline::Wire;
use crate::arch::x86_64::{instr, time};
use crate::kprintln;
use crate::mm::pagetable::Format;
use crate::vmm::backend::Backend;
use crate::vmm::cpu_model;
use crate::vmm::guest_mem::GuestMemory;
use crate::vmm::nic_io::{NetHost, NicActivity};
use crate::vmm::uplink::Uplink;

/// Pre-copy rounds at most before the first checkpoint.
const MAX_PRECOPY_ROUNDS: u32 = 6;
/// A round that finds at most this many dirty pages ends pre-copy: the first checkpoint
/// copies or protects them in its stun.
const PRECOPY_DONE_PAGES: usize = 64;
/// Pages the sender encodes per turn during pre-copy.
const PRECOPY_PAGES_PER_TURN: usize = 32;
/// How long to wait for the new backup's HELLO once paired.
const HELLO_WAIT: u64 = 10_000 * MS;
/// How long a refused pairing stays up so the peer gets our HELLO and refuses too.
const CLOSING_WAIT: u64 = 3_000 * MS;

/// Where re-protection stands.
pub(super) enum Rejoin {
    /// Protected by the backup the pair started with, or by one that finished its sync.
    Off,
    /// Unprotected: the link waits for a new backup to pair. The last pairing failure said,
    /// so a host that keeps failing is reported once.
    Listening { failed: Option<String> },
    /// Paired; our HELLO is out, the backup's is awaited until `deadline`.
    Hello {
        ours: alloc::boxed::Box<Hello>,
        deadline: u64,
    },
    /// A pairing was refused: the link stays up until the peer has our HELLO (or `until`).
    Closing { until: u64 },
    /// Pre-copy rounds, then the first checkpoint and its acknowledgement.
    Syncing(Sync),
}

impl Rejoin {
    /// Refuses the paired host: says why, and stays until it has our HELLO, so it says why too.
    fn refuse(&mut self, why: &str) {
        kprintln!("ft: pairing refused: {why}");
        *self = Rejoin::Closing {
            until: time::now_ns() + CLOSING_WAIT,
        };
    }

    /// Waits for the next backup on a fresh link (`w`, the pipeline's wire, locked).
    fn relisten(&mut self, w: &mut Wire) {
        w.link.restart();
        *self = Rejoin::Listening { failed: None };
    }
}

/// A sync in progress.
pub(super) struct Sync {
    /// When it began.
    started: u64,
    /// Pre-copy rounds begun.
    rounds: u32,
    /// Pages the rounds sent.
    pages: u64,
    /// Pages of the latest round.
    last_round: u64,
    /// Time the pair's work held the guest's CPU during the sync (the guest was stopped).
    host_ns: u64,
    /// The first checkpoint: its epoch and how long its stun stopped the guest.
    checkpoint: Option<(u64, u64)>,
}

/// The card of a guest being pre-copied: frames go out at once (nothing is held before the
/// first checkpoint), and the pages it writes join the next round's dirty set.
struct TrackedNet<'a> {
    uplink: &'a mut Uplink,
    dma_dirty: &'a mut alloc::vec::Vec<u64>,
}

impl<F: Format> NetHost<F> for TrackedNet<'_> {
    fn room(&self) -> usize {
        NetHost::<F>::room(&*self.uplink)
    }

    fn send(&mut self, frame: &[u8]) {
        NetHost::<F>::send(self.uplink, frame);
    }

    fn receive(&mut self, buf: &mut [u8]) -> Option<usize> {
        self.uplink.receive(buf)
    }

    fn before_write(&mut self, _mem: &mut GuestMemory<F>, gfn: u64) {
        self.dma_dirty.push(gfn);
    }
}

impl<B: Backend> Host<'_, B> {
    /// The guest runs unprotected from now on, until a new backup joins.
    pub(super) fn await_backup(&mut self) {
        self.protected = false;
        self.rejoin = Rejoin::Listening { failed: None };
        kprintln!(
            "ft: primary: the guest runs unprotected; waiting for a new backup (role=backup \
             with the same key and guest)"
        );
    }

    /// The pair's work between exits while unprotected: the link, and the sync once a backup
    /// joined.
    pub(super) fn rejoin_turn(&mut self) {
        let start = time::now_ns();
        match self.rejoin {
            Rejoin::Off => {}
            Rejoin::Syncing(_) => self.sync_turn(),
            _ => self.listen(),
        }
        if let Rejoin::Syncing(sync) = &mut self.rejoin {
            sync.host_ns += time::now_ns() - start;
        }
    }

    /// Services the waiting link: pairing, the HELLOs, a refusal's lingering.
    fn listen(&mut self) {
        let now = time::now_ns();
        let mut w = self.pipe.wire.lock();
        w.link.receive();
        while let Some(event) = w.link.link().poll_event() {
            match event {
                Event::Paired { peer_session } => {
                    kprintln!(
                        "ft: primary: a new backup paired with session {peer_session:#018x}, \
                         frames under {}",
                        w.link.link().cipher().unwrap_or("?")
                    );
                    let running = cpu_model::negotiated()
                        .copied()
                        .unwrap_or_else(|| cpu_model::this_host(time::tsc_hz()));
                    let ram = self.guest.mem.size();
                    let ours =
                        hello::ours(self.config, Role::Primary, ram, self.image, Some(running));
                    match hello::send(&mut w.link, &ours) {
                        Ok(()) => {
                            self.rejoin = Rejoin::Hello {
                                ours: alloc::boxed::Box::new(ours),
                                deadline: now + HELLO_WAIT,
                            }
                        }
                        Err(why) => self.rejoin.refuse(&why),
                    }
                }
                Event::Delivered(msg) => {
                    if let Rejoin::Hello { ours, .. } = &self.rejoin {
                        match hello::answer(ours, &msg) {
                            Ok(_) => {
                                drop(w);
                                return self.begin_sync();
                            }
                            Err(why) => self.rejoin.refuse(&why),
                        }
                    }
                }
                Event::PairingFailed(why) => {
                    let why = alloc::format!("{why}");
                    if let Rejoin::Listening { failed } = &mut self.rejoin
                        && failed.as_deref() != Some(why.as_str())
                    {
                        kprintln!("ft: primary: a host failed to pair as the new backup: {why}");
                        *failed = Some(why);
                    }
                    w.link.restart();
                }
                Event::PeerLost => self.rejoin.relisten(&mut w),
                Event::Acked(_) => {}
            }
        }
        match self.rejoin {
            Rejoin::Hello { deadline, .. } if now >= deadline => {
                self.rejoin.refuse("no HELLO from the new backup");
            }
            Rejoin::Closing { until } if now >= until || w.link.link().all_acked() => {
                self.rejoin.relisten(&mut w);
            }
            _ => {}
        }
        w.link.transmit();
    }

    /// The new backup agreed: a fresh checkpoint stream, and the first pre-copy round (the
    /// full copy) with the dirty log armed.
    fn begin_sync(&mut self) {
        let config = PrimaryConfig {
            session: u128::from(instr::rdtsc()),
            ..self.primary_config
        };
        let primary = match Primary::new(&config) {
            Ok(p) => alloc::boxed::Box::new(p),
            Err(e) => {
                kprintln!("ft: primary: {e}");
                return self.rejoin.refuse("this host cannot checkpoint the guest");
            }
        };
        self.pipe.wire.lock().pending = None;
        {
            let mut s = self.pipe.lock();
            s.primary = primary;
            self.pipe.frames_waiting.store(false, Ordering::Release);
            s.commit_waits = false;
            s.encoded_at = None;
            s.stats.restart();
        }
        self.rejoin = Rejoin::Syncing(Sync {
            started: time::now_ns(),
            rounds: 0,
            pages: 0,
            last_round: u64::MAX,
            host_ns: 0,
            checkpoint: None,
        });
        kprintln!(
            "ft: primary: a new backup joined; copying {} MiB of guest memory while the guest \
             runs",
            self.guest.mem.size() >> 20
        );
        self.harvest();
        self.sync_tlb();
        self.next_round();
    }

    /// One turn of the sync: the link, a few pages, and when a round is all out, the next
    /// round or the first checkpoint.
    fn sync_turn(&mut self) {
        self.service_link();
        if !matches!(self.rejoin, Rejoin::Syncing(_)) {
            // The backup was lost (`lose_backup` listens again).
            return;
        }
        self.pump_sender(PRECOPY_PAGES_PER_TURN);
        self.pipe.send_pending(&mut self.pipe.wire.lock());
        if !self.pipe.lock().primary.sender_idle() {
            return;
        }
        self.harvest();
        self.sync_tlb();
        let Rejoin::Syncing(sync) = &self.rejoin else {
            return;
        };
        let dirty = self.dirty.len() as u64;
        let shrinking = dirty.saturating_mul(4) < sync.last_round.saturating_mul(3);
        if sync.rounds < MAX_PRECOPY_ROUNDS && dirty > PRECOPY_DONE_PAGES as u64 && shrinking {
            self.next_round();
        } else {
            self.first_checkpoint();
        }
    }

    /// Begins a pre-copy round of the pages just harvested (all of them, the first time).
    fn next_round(&mut self) {
        let mut ram = PrimaryRam(&mut self.guest.mem);
        let round = self.pipe.lock().primary.precopy(&mut ram, &self.dirty);
        match round {
            Ok(round) => {
                if let Rejoin::Syncing(sync) = &mut self.rejoin {
                    sync.rounds += 1;
                    sync.pages += round.pages;
                    sync.last_round = round.pages;
                }
            }
            // Write tracking: the first checkpoint is the full copy, copied on write.
            Err(PrimaryError::NoPrecopy(_)) => self.first_checkpoint(),
            Err(e) => kprintln!("ft: primary: pre-copy: {e}"),
        }
    }

    /// Ends pre-copy: the guest is protected from this stun on. The pages harvested for a
    /// round that did not happen join the checkpoint's (its harvest appends what the card
    /// wrote, and these ride along).
    fn first_checkpoint(&mut self) {
        self.dma_dirty.append(&mut self.dirty);
        let epoch = self.pipe.lock().primary.current_epoch();
        let start = time::now_ns();
        self.protected = true;
        self.stun();
        let stopped = time::now_ns() - start;
        if let Rejoin::Syncing(sync) = &mut self.rejoin {
            sync.checkpoint = Some((epoch, stopped));
        }
    }

    /// The backup acknowledged `epoch`: if that covers the sync's first checkpoint, the guest
    /// is protected again; says so with the sync's figures.
    pub(super) fn on_protected_again(&mut self, epoch: u64) {
        let Rejoin::Syncing(Sync {
            started,
            rounds,
            pages,
            host_ns,
            checkpoint: Some((first, stopped)),
            ..
        }) = self.rejoin
        else {
            return;
        };
        if epoch < first || !self.protected {
            return;
        }
        let took = time::now_ns() - started;
        kprintln!(
            "ft: primary: protected again from epoch {first}: the new backup synced in {} ms \
             ({rounds} pre-copy rounds, {} pages, {} MiB; the first checkpoint stopped the \
             guest {} us); the pair's work took {}% of the guest's CPU during the sync",
            took / MS,
            pages,
            (pages * PAGE_SIZE as u64) >> 20,
            stopped / 1000,
            (host_ns + stopped) * 100 / took.max(1)
        );
        self.rejoin = Rejoin::Off;
    }

    /// Whether the guest's card must report the pages it writes (during pre-copy).
    pub(super) fn tracking_dma(&self) -> bool {
        !self.protected && matches!(self.rejoin, Rejoin::Syncing(_))
    }

    /// One round of the card's I/O during pre-copy ([`TrackedNet`]).
    pub(super) fn service_tracked_nic(&mut self) -> Option<NicActivity> {
        let mut uplink = self.pipe.uplink.lock();
        let uplink = uplink.as_mut()?;
        let mut net = TrackedNet {
            uplink,
            dma_dirty: &mut self.dma_dirty,
        };
        Some(self.guest.service_nic(&mut net))
    }
}
