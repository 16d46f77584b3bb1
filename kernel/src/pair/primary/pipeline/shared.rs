// SPDX-License-Identifier: MIT OR Apache-2.0
//! The checkpoint state both CPUs work on ([`Shared`]), the guard that holds it
//! ([`SharedGuard`]), and what each holder publishes as it lets go ([`Published`]): the
//! guest's CPU reads that at its exits instead of taking the lock, so that it waits for the
//! pipeline's CPU only to stun and to handle a copy-on-write fault.

use alloc::boxed::Box;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use castor_ft::pair::primary::Primary;

use super::super::super::memory::SharedRam;
use super::super::super::stats::Stats;
use crate::mm::pagetable::Format;

/// The checkpoint side of the pipeline, which the guest's CPU works on too.
pub(in super::super) struct Shared<F: Format> {
    pub primary: Box<Primary>,
    pub stats: Stats,
    /// The guest's memory as the pipeline reads it.
    pub ram: SharedRam<F>,
    /// The epoch being sent holds frames: a client waits for its acknowledgement.
    pub commit_waits: bool,
    /// When the epoch being sent, holding frames, was all encoded, until all of it is on the
    /// wire.
    pub encoded_at: Option<u64>,
}

/// What the last holder of [`Shared`] left, readable without its lock. A value changes only
/// under the lock, and each holder publishes as it lets go; the guest's CPU is the only one
/// that makes the sender busy (its stun) or takes output room (its stun holds the epoch's
/// output), so what it reads is never more than the truth: an idle sender is idle, and the
/// room is there.
#[derive(Default)]
pub(in super::super) struct Published {
    /// [`Primary::sender_idle`].
    idle: AtomicBool,
    /// [`Primary::output_room`].
    room: AtomicUsize,
    /// [`Shared::commit_waits`].
    commit_waits: AtomicBool,
}

impl Published {
    pub(super) fn publish<F: Format>(&self, s: &Shared<F>) {
        self.idle.store(s.primary.sender_idle(), Ordering::Release);
        self.room.store(s.primary.output_room(), Ordering::Release);
        self.commit_waits.store(s.commit_waits, Ordering::Release);
    }

    /// Whether the previous epoch's pages are all on the stream.
    pub fn sender_idle(&self) -> bool {
        self.idle.load(Ordering::Acquire)
    }

    /// Bytes of output the primary takes.
    pub fn output_room(&self) -> usize {
        self.room.load(Ordering::Acquire)
    }

    /// Bytes of output the guest can still produce in the running epoch, whose output so far
    /// waits in `outbox` (the guest CPU's, moved into the primary at the stun).
    pub fn room_beside(&self, outbox: &[u8]) -> usize {
        self.output_room().saturating_sub(outbox.len())
    }

    /// Whether the epoch being sent holds frames.
    pub fn commit_waits(&self) -> bool {
        self.commit_waits.load(Ordering::Acquire)
    }
}

/// [`Shared`] held; publishes it as it lets go.
pub(in super::super) struct SharedGuard<'p, F: Format> {
    guard: spin::MutexGuard<'p, Shared<F>>,
    published: &'p Published,
}

impl<'p, F: Format> SharedGuard<'p, F> {
    pub(super) fn new(guard: spin::MutexGuard<'p, Shared<F>>, published: &'p Published) -> Self {
        Self { guard, published }
    }
}

impl<F: Format> Deref for SharedGuard<'_, F> {
    type Target = Shared<F>;

    fn deref(&self) -> &Shared<F> {
        &self.guard
    }
}

impl<F: Format> DerefMut for SharedGuard<'_, F> {
    fn deref_mut(&mut self) -> &mut Shared<F> {
        &mut self.guard
    }
}

impl<F: Format> Drop for SharedGuard<'_, F> {
    fn drop(&mut self) {
        self.published.publish(&self.guard);
    }
}
