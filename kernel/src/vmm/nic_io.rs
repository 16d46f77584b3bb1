// SPDX-License-Identifier: MIT OR Apache-2.0
//! Moving frames between the guest's network card (`devices::virtio::VirtioNet`) and whatever
//! carries them on the host side ([`NetHost`]): the monitor's half of the card's DMA.
//!
//! The card reads and writes guest RAM directly ([`Dma`]), which neither sets the nested
//! page tables' dirty flags nor faults on a write-protected page. A checkpointing primary
//! must see both, or a checkpoint would miss a received frame or an epoch still being sent
//! would change under the sender: every page the card is about to write is announced first
//! ([`NetHost::before_write`]), so the primary can copy it aside or send it and count it
//! dirty, exactly as for a guest write fault.

use alloc::vec::Vec;

use super::devices::virtio::{GuestDma, RxOutcome, TxReport};
use super::guest_mem::{GuestMemory, PAGE_SIZE};
use super::guest_nic::GSI;
use super::run::Guest;
use crate::drivers::net::MAX_FRAME;
use crate::mm::pagetable::Format;

/// The host side of the guest's network card.
pub trait NetHost<F: Format> {
    /// How many bytes of frames [`send`](Self::send) takes now, counting
    /// [`FRAME_OVERHEAD`] for each: frames beyond that wait in the guest's transmit ring
    /// (back-pressure, never a drop).
    fn room(&self) -> usize;
    /// A frame the guest transmitted, within the [`room`](Self::room) just reported.
    fn send(&mut self, frame: &[u8]);
    /// The next frame for the guest, copied into `buf` (its length), if one waits.
    fn receive(&mut self, buf: &mut [u8]) -> Option<usize>;
    /// The card is about to write guest page `gfn` of `mem` (default: nothing to do).
    fn before_write(&mut self, _mem: &mut GuestMemory<F>, _gfn: u64) {}
}

/// Bytes [`NetHost::room`] counts for each frame besides its own: the header of the output
/// item that holds it on a primary (`castor_ft::epoch::items`).
pub const FRAME_OVERHEAD: usize = castor_ft::epoch::items::ITEM_HEADER_LEN;

/// Guest RAM as the card's DMA sees it, announcing writes to the host side.
struct Dma<'a, F: Format> {
    mem: &'a mut GuestMemory<F>,
    host: &'a mut dyn NetHost<F>,
}

impl<F: Format> GuestDma for Dma<'_, F> {
    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> bool {
        self.mem
            .slice_mut(gpa, buf.len())
            .map(|s| buf.copy_from_slice(s))
            .is_some()
    }

    fn write(&mut self, gpa: u64, data: &[u8]) -> bool {
        let Some(end) = gpa.checked_add(data.len() as u64) else {
            return false;
        };
        if data.is_empty() || end > self.mem.size() {
            return data.is_empty();
        }
        for gfn in gpa / PAGE_SIZE..=(end - 1) / PAGE_SIZE {
            self.host.before_write(self.mem, gfn);
        }
        self.mem.write(gpa, data)
    }
}

/// What one round of [`Guest::service_nic`] moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NicActivity {
    /// Frames the guest sent that the host side took.
    pub sent: usize,
    /// The host side refused a frame (it waits in the guest's ring).
    pub blocked: bool,
    /// Frames handed to the guest.
    pub delivered: usize,
}

/// Most frames taken from the host side in one round (the rest wait in the host NIC's ring).
const RX_BURST: usize = 32;

impl<F: Format> Guest<F> {
    /// One round of the card's I/O, if the guest has a card: the frames the guest queued go
    /// to `host` (until it refuses one), then frames from `host` go to the guest (until its
    /// receive ring is full, when the rest are dropped as by a NIC without buffers); then the
    /// card's interrupt line is driven to its level.
    pub fn service_nic(&mut self, host: &mut dyn NetHost<F>) -> NicActivity {
        let Some(nic) = self.nic.as_mut() else {
            return NicActivity::default();
        };
        let mut room = host.room();
        let mut frames: Vec<Vec<u8>> = Vec::new();
        let mut dma = Dma {
            mem: &mut self.mem,
            host,
        };
        let TxReport { blocked, .. } = nic.transmit(&mut dma, &mut |frame: &[u8]| {
            let need = frame.len() + FRAME_OVERHEAD;
            if need > room {
                return false;
            }
            room -= need;
            frames.push(frame.to_vec());
            true
        });
        let mut activity = NicActivity {
            sent: frames.len(),
            blocked,
            delivered: 0,
        };
        for frame in &frames {
            dma.host.send(frame);
        }
        let mut buf = [0u8; MAX_FRAME];
        for _ in 0..RX_BURST {
            let Some(len) = dma.host.receive(&mut buf) else {
                break;
            };
            match nic.receive(&mut dma, &buf[..len]) {
                RxOutcome::Delivered => activity.delivered += 1,
                // Counted by the card: the frame is lost, as on a NIC without buffers.
                RxOutcome::NoBuffers | RxOutcome::Dropped | RxOutcome::NotReady => {}
                RxOutcome::Broken => break,
            }
        }
        self.drive_nic_line();
        activity
    }

    /// Drives the card's I/O APIC pin to its interrupt level.
    pub(crate) fn drive_nic_line(&mut self) {
        if let Some(nic) = &self.nic {
            self.chipset
                .interrupts_mut()
                .set_pin_level(GSI, nic.irq_level());
        }
    }
}
