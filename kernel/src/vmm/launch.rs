// SPDX-License-Identifier: MIT OR Apache-2.0
//! Running an unmodified Multiboot guest kernel given as a boot module (`guest=module`).
//!
//! Console contract (the test harness and `scripts/run --guest` rely on it):
//! `guest: starting '<cmdline>' (<bytes> bytes, <N> MiB RAM) under <back end>`, the guest's serial
//! output prefixed with `[guest] `, then `guest exited with status <N>` (the value written to
//! port 0xF4 or passed to the EXIT hypercall) — or `guest stopped: <reason>` with a register
//! dump, `guest: cannot load '<cmdline>': <reason>`, or `guest: cannot run guests: <why>`.
//! The back end is this CPU's ([`backend::dispatch`]): "VT-x" or "AMD-V" in the first line.

use crate::arch::x86_64::machine::ExitStatus;
use crate::arch::x86_64::{apic, time};
use crate::bootinfo::BootInfo;
use crate::config::Config;
use crate::kprintln;
use crate::vmm::backend::{self, Backend, WithBackend};
use crate::vmm::guest_mem::GuestMemory;
use crate::vmm::loader;
use crate::vmm::run::{self, Guest, GuestEnd};
use crate::vmm::vcpu::{GuestStart, Vcpu};

/// The first boot module (the guest image) and its command line; `None` after saying so
/// under `who` if there is none.
pub fn module_image<'a>(boot: &'a BootInfo, who: &str) -> Option<(&'a [u8], &'a str)> {
    let Some(module) = boot.modules().first() else {
        kprintln!(
            "{who}: cannot load '': guest=module needs a boot module (GRUB module2, QEMU -initrd)"
        );
        return None;
    };
    // SAFETY: the loader placed the module there; its frames are reserved from the allocator
    // and identity mapped; nothing writes them while this shared view exists.
    let image = unsafe {
        core::slice::from_raw_parts(
            module.region.start as *const u8,
            module.region.len() as usize,
        )
    };
    Some((image, boot.module_args(module)))
}

/// Loads the first boot module as a Multiboot guest and runs it to the end.
pub fn run_module_guest(boot: &BootInfo, config: &Config) -> ExitStatus {
    let Some((image, cmdline)) = module_image(boot, "guest") else {
        return ExitStatus::Failure;
    };
    let launch = Launch {
        image,
        cmdline,
        ram_mib: config.guest_ram_mib,
    };
    match backend::dispatch(launch) {
        Ok(status) => status,
        Err(why) => {
            kprintln!("guest: cannot run guests: {why}");
            ExitStatus::Failure
        }
    }
}

/// A Multiboot guest to load and run.
struct Launch<'a> {
    image: &'a [u8],
    cmdline: &'a str,
    ram_mib: u32,
}

impl WithBackend for Launch<'_> {
    type Output = ExitStatus;

    fn run<B: Backend>(self) -> ExitStatus {
        let Launch {
            image,
            cmdline,
            ram_mib,
        } = self;
        let Some(mem) = guest_memory::<B>(u64::from(ram_mib) << 20, false, "guest") else {
            return ExitStatus::Failure;
        };
        let Some((mut vcpu, mut guest)) = boot_guest::<B>(mem, image, cmdline, "guest") else {
            return ExitStatus::Failure;
        };
        run_to_end::<B>(&mut vcpu, &mut guest)
    }
}

/// Loads the Multiboot kernel `image` with `cmdline` into `mem` and makes its vCPU, as
/// `qemu -kernel` would start it; says why not under `who` on failure.
pub fn boot_guest<B: Backend>(
    mut mem: GuestMemory<B::Format>,
    image: &[u8],
    cmdline: &str,
    who: &str,
) -> Option<(B::Vcpu, Guest<B::Format>)> {
    let entry = match loader::load(image, cmdline, &[], &mut mem) {
        Ok(entry) => entry,
        Err(e) => {
            kprintln!("{who}: cannot load '{cmdline}': {e}");
            return None;
        }
    };
    if entry.video_mode_ignored {
        log::warn!("guest asked for a video mode; Castor offers none (serial only)");
    }
    kprintln!(
        "{who}: starting '{cmdline}' ({} bytes, {} MiB RAM) under {}",
        image.len(),
        mem.size() >> 20,
        B::NAME
    );
    let mut vcpu = match B::new_vcpu(0, &mem, GuestStart::Protected32 { eip: entry.eip }) {
        Ok(vcpu) => vcpu,
        Err(e) => {
            kprintln!("{who}: cannot run guests: {e}");
            return None;
        }
    };
    vcpu.regs().rax = u64::from(entry.eax);
    vcpu.regs().rbx = u64::from(entry.ebx);
    Some((vcpu, Guest::new(mem)))
}

/// Runs a loaded guest until it ends, printing its output as `[guest] ...` and then
/// `guest exited with status <N>` (success) or why it stopped (failure). The host's LAPIC
/// timer interrupts it every millisecond, so a guest that only computes (no exits of its own)
/// still gets its timer interrupts: the chipset is brought up to date at every exit.
pub fn run_to_end<B: Backend>(vcpu: &mut B::Vcpu, guest: &mut Guest<B::Format>) -> ExitStatus {
    apic::timer_start_periodic((time::lapic_timer_hz() / 1000) as u32);
    let report = run::run(vcpu, guest, "[guest] ", u64::MAX);
    apic::timer_stop();
    match report.end {
        GuestEnd::Exited(status) => {
            kprintln!("guest exited with status {status}");
            ExitStatus::Success
        }
        _ => ExitStatus::Failure,
    }
}

/// Guest RAM of `bytes` for back end `B` (4 KiB-tracked for a checkpointed guest), or `None`
/// after saying under `who` that there is no host memory for it.
pub fn guest_memory<B: Backend>(
    bytes: u64,
    tracked: bool,
    who: &str,
) -> Option<GuestMemory<B::Format>> {
    let mem = match tracked {
        true => GuestMemory::<B::Format>::new_tracked(bytes),
        false => GuestMemory::<B::Format>::new(bytes),
    };
    mem.map_err(|e| {
        kprintln!(
            "{who}: cannot run guests: no host memory for {} MiB of guest RAM ({e:?})",
            bytes >> 20
        )
    })
    .ok()
}
