// SPDX-License-Identifier: MIT OR Apache-2.0
//! Events whose delivery a nested page fault interrupts, and the guest's CR8, with the 64-bit
//! built-in guest in events mode (`g64_events` in `vmm/guests/long64_modes.S`).
//!
//! The guest executes INT $0x80 and INT3 each with its stack on a page the host has
//! write-protected, so pushing the interrupt frame stops the guest with a nested page fault in
//! the middle of the delivery (the exit reports the event: EXITINTINFO on AMD-V, IDT-vectoring
//! information on VT-x). After the host gives the page back, the handler must run exactly once
//! and return to the instruction after the INT: a back end that injects a software interrupt
//! again with RIP still on the instruction runs it twice (AMD64 APM Vol. 2, 15.7.2; the VT-x
//! path re-injects with the instruction length, SDM Vol. 3C, 28.2.4 and 27.6.1.3).
//!
//! Then the guest writes CR8 and reads it back: the value is the guest's own, and the host's
//! task priority must not change (VT-x: CR8-load/store exiting, SDM Vol. 3C, 26.3; AMD-V:
//! V_INTR_MASKING, CR8 accesses use V_TPR, APM Vol. 2, 15.21.1). Both emulators honour this,
//! so a back end that let CR8 through would change this CPU's TPR and fail here.

use alloc::vec::Vec;

use super::Verdict;
use crate::arch::x86_64::instr;
use crate::ensure;
use crate::vmm::backend::Backend;
use crate::vmm::guest_mem::{GuestMemory, PAGE_SIZE};
use crate::vmm::guests::{Builtin, EVENT_STACKS, RESULTS};
use crate::vmm::run::{self, Guest, GuestEnd, Step};
use crate::vmm::vcpu::Vcpu;

const GUEST_RAM: u64 = 4 << 20;
const MAX_EXITS: u32 = 10_000;

/// Runs the events guest under `B` and checks what it and the host saw.
pub fn check<B: Backend>() -> Verdict {
    let mut mem = GuestMemory::<B::Format>::new_tracked(GUEST_RAM)
        .map_err(|e| alloc::format!("guest RAM: {e:?}"))?;
    let start = Builtin::Events
        .load(&mut mem)
        .map_err(|_| "events guest does not fit")?;
    for gfn in EVENT_STACKS {
        ensure!(mem.write_protect(gfn), "stack page {gfn:#x} not protected");
    }
    let mut vcpu = B::new_vcpu(0, &mem, start).map_err(|e| alloc::format!("vcpu: {e}"))?;
    vcpu.regs().rdi = Builtin::Events.initial_rdi();
    let mut guest = Guest::new(mem);
    let tpr = instr::read_cr8();
    let mut faults = [0u32; 2];
    let mut output = Vec::new();
    let mut end = GuestEnd::TooManyExits;
    for _ in 0..MAX_EXITS {
        guest.mem.sync_tlb(&mut vcpu);
        match run::step(&mut vcpu, &mut guest, &mut output) {
            Step::Continue | Step::HostInterrupt | Step::Preempted => {}
            Step::WriteFault { gpa } => {
                let gfn = gpa / PAGE_SIZE;
                let Some(i) = EVENT_STACKS.iter().position(|&s| s == gfn) else {
                    end = GuestEnd::BadAccess { gpa, write: true };
                    break;
                };
                ensure!(
                    guest.mem.unprotect(gfn),
                    "page {gfn:#x} faulted unprotected"
                );
                faults[i] += 1;
            }
            Step::Halt => {
                end = GuestEnd::Halted;
                break;
            }
            Step::End(e) => {
                end = e;
                break;
            }
        }
    }
    let guest_tpr = instr::read_cr8();
    if guest_tpr != tpr {
        // SAFETY: puts back this CPU's own value, read above.
        unsafe { instr::write_cr8(tpr) };
    }
    ensure!(
        guest_tpr == tpr,
        "the guest's CR8 reached the host: TPR class {tpr} became {guest_tpr}"
    );
    ensure!(end == GuestEnd::Exited(0x35), "events guest ended {end:?}");
    ensure!(
        faults == [1, 1],
        "stack write faults {faults:?}: the deliveries were not interrupted once each"
    );
    let r = [0, 1, 2, 3].map(|i| guest.mem.read_u64(RESULTS + 8 * i).unwrap_or(u64::MAX));
    ensure!(
        r == [1, 1, 1, 1],
        "INT $0x80 ran {} times (return RIP right: {}), INT3 {} times (return RIP right: {})",
        r[0],
        r[1],
        r[2],
        r[3]
    );
    Ok(
        "INT $0x80 and INT3 interrupted by nested page faults ran once each, CR8 the guest's"
            .into(),
    )
}
