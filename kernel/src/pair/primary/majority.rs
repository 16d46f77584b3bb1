// SPDX-License-Identifier: MIT OR Apache-2.0
//! The primary's majority (`witness=on`, `castor_ft::witness`): with its backup it has one;
//! without, only while it holds the witness's lease. It renews the lease all along, so that it
//! holds it when the backup goes; a primary whose lease lapses while it has no backup stops its
//! guest at once, releases nothing more, and rejoins as a backup of the host that runs the
//! guest now (which took it over with the witness's grant), discarding its own copy.
//!
//! Console lines: see `pair::witness`, and `ft: primary: no majority (<why>); stopped the guest
//! and released nothing more; rejoining as a backup of the host that runs it`.

use super::super::backup;
use super::super::memory::PrimaryRam;
use super::super::rejoin;
use super::Host;
use super::pipeline::Wire;
use crate::arch::x86_64::machine::ExitStatus;
use crate::kprintln;
use crate::vmm::backend::Backend;

impl<B: Backend> Host<'_, B> {
    /// The witness's turn on the guest's CPU: replies in, a request out if one is due.
    pub(super) fn witness_turn(&mut self) {
        let mut w = self.pipe.wire.lock();
        self.pipe.witness_turn(&mut w, self.protected);
    }

    /// Without a backup, a primary whose lease lapsed has no majority: it must stop.
    pub(super) fn check_majority(&mut self) {
        let lapsed = self
            .pipe
            .wire
            .lock()
            .witness
            .as_ref()
            .is_some_and(|w| !w.holds());
        if !self.protected && lapsed && self.deposed.is_none() {
            self.deposed = Some("no backup, and the witness's lease has lapsed".into());
        }
    }

    /// Stops the guest for good (this host lost its majority, `why`) and serves the host that
    /// runs it now as its backup.
    pub(super) fn rejoin_as_backup(self, why: &str) -> ExitStatus {
        kprintln!(
            "ft: primary: no majority ({why}); stopped the guest and released nothing more; \
             rejoining as a backup of the host that runs it"
        );
        let Host {
            pipe,
            mut guest,
            config,
            image,
            ..
        } = self;
        let (wire, mut shared, uplink) = pipe.into_parts();
        // Nothing held is released, and no page stays protected for the guest a takeover
        // would resume on this memory later.
        shared
            .primary
            .abandon(&mut PrimaryRam(&mut guest.mem), |_| {});
        let Wire {
            mut link,
            mut witness,
            ..
        } = wire;
        rejoin::pair_as_backup(&mut link, config, &image, witness.as_mut());
        kprintln!(
            "ft: backup: standing by with {} MiB of guest RAM to be overwritten by the sync",
            guest.mem.size() >> 20
        );
        backup::serve::<B>(link, config, guest.mem, uplink, (image, witness))
    }
}
