// SPDX-License-Identifier: MIT OR Apache-2.0
//! Where the checkpoint pipeline's time goes outside the stun: encoding pages (deltas,
//! compression, the stream's digest) and the peer link's parts (taking frames from the NIC,
//! opening and handling them, making and sealing frames, handing them to the NIC). Printed
//! after the summary as
//!
//! `ft: primary: sender: <P> pages encoded in <E> ms (<u> us/page); link: NIC receive <a> ms,
//! frames in <b> ms, frames out <c> ms (sealing included), NIC transmit <d> ms; <S>% of the
//! <T> ms since protection began`
//!
//! On a host with one CPU that share is the guest's CPU's; with the pipeline beside the guest,
//! the pipeline's CPU's.

use alloc::string::String;

use crate::link::peer::LinkCycles;

/// The sender's and the link's time since protection began.
#[derive(Debug, Default, Clone, Copy)]
pub struct SenderTime {
    encode_ns: u64,
    pages: u64,
    /// The link's counters when these figures began, and as last seen.
    link: Option<(LinkCycles, LinkCycles)>,
}

impl SenderTime {
    /// `pages` pages encoded in `ns`.
    pub fn encoded(&mut self, pages: usize, ns: u64) {
        self.encode_ns += ns;
        self.pages += pages as u64;
    }

    /// The link's counters now (they count from the link's start; the first look is the
    /// baseline).
    pub fn link(&mut self, now: LinkCycles) {
        let base = self.link.map_or(now, |(base, _)| base);
        self.link = Some((base, now));
    }

    /// The line, over the `elapsed_ns` since protection began, for a TSC of `tsc_hz`.
    pub fn line(&self, elapsed_ns: u64, tsc_hz: u64) -> String {
        let (base, now) = self.link.unwrap_or_default();
        let ns =
            |cycles: u64| (u128::from(cycles) * 1_000_000_000 / u128::from(tsc_hz.max(1))) as u64;
        let parts = [
            now.nic_receive - base.nic_receive,
            now.link_receive - base.link_receive,
            now.link_transmit - base.link_transmit,
            now.nic_transmit - base.nic_transmit,
        ]
        .map(ns);
        let busy = self.encode_ns + parts.iter().sum::<u64>();
        let share = busy * 1000 / elapsed_ns.max(1);
        let ms = |ns: u64| ns / 1_000_000;
        alloc::format!(
            "ft: primary: sender: {} pages encoded in {} ms ({} us/page); link: NIC receive {} \
             ms, frames in {} ms, frames out {} ms (sealing included), NIC transmit {} ms; \
             {}.{}% of the {} ms since protection began",
            self.pages,
            ms(self.encode_ns),
            self.encode_ns / self.pages.max(1) / 1000,
            ms(parts[0]),
            ms(parts[1]),
            ms(parts[2]),
            ms(parts[3]),
            share / 10,
            share % 10,
            ms(elapsed_ns),
        )
    }
}
