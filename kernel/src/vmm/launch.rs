// SPDX-License-Identifier: MIT OR Apache-2.0
//! Running an unmodified guest kernel given as a boot module (`guest=module`): the first boot
//! module is the kernel, a Linux bzImage or a Multiboot kernel ([`loader::load`] tells them
//! apart), its module string the kernel's command line; every further boot module is handed to
//! the guest in order: to a Linux kernel as its initrd (several are concatenated, as GRUB's
//! `initrd a b` does), to a Multiboot kernel as its boot modules, each with its module string.
//!
//! Console contract (the test harness and `scripts/run --guest` rely on it):
//! `guest: <format> kernel with <N> module(s)` (format: `Multiboot` or `Linux boot protocol
//! <x.yy>`), `guest: starting '<cmdline>' (<bytes> bytes, <N> MiB RAM) under <back end>`, the
//! guest's serial
//! output prefixed with `[guest] `, then `guest exited with status <N>` (the value written to
//! port 0xF4 or passed to the EXIT hypercall) — or `guest stopped: <reason>` with a register
//! dump, `guest: cannot load '<cmdline>': <reason>`, or `guest: cannot run guests: <why>`.
//! The back end is this CPU's ([`backend::dispatch`]): "VT-x" or "AMD-V" in the first line.

use crate::arch::x86_64::apic;
use crate::arch::x86_64::machine::ExitStatus;
use alloc::vec::Vec;

use crate::bootinfo::{BootInfo, Module};
use crate::config::{Config, GuestNet};
use alloc::boxed::Box;

use crate::drivers::net::{self, Nic};
use crate::kprintln;
use crate::vmm::backend::{self, Backend, WithBackend};
use crate::vmm::guest_mem::GuestMemory;
use crate::vmm::loader::{self, GuestModule};
use crate::vmm::nic_io::NetHost;
use crate::vmm::run::{self, Guest, GuestEnd};
use crate::vmm::uplink::Uplink;
use crate::vmm::vcpu::Vcpu;

/// The guest's files, from the boot modules: the kernel image and its command line, then the
/// modules it is given (a Linux initrd's parts, or Multiboot boot modules).
pub struct GuestFiles<'a> {
    /// The kernel image (the first boot module).
    pub image: &'a [u8],
    /// Its command line (the first boot module's string).
    pub cmdline: &'a str,
    /// The following boot modules, in order, with their strings.
    pub modules: Vec<GuestModule<'a>>,
}

/// The guest's files from the boot modules ([`GuestFiles`]); `None` after saying so under
/// `who` if there is no boot module.
pub fn guest_files<'a>(boot: &'a BootInfo, who: &str) -> Option<GuestFiles<'a>> {
    let Some((first, rest)) = boot.modules().split_first() else {
        kprintln!(
            "{who}: cannot load '': guest=module needs a boot module (GRUB module2, QEMU -initrd)"
        );
        return None;
    };
    let bytes = |module: &Module| {
        // SAFETY: the loader placed the module there; its frames are reserved from the
        // allocator and identity mapped; nothing writes them while this shared view exists.
        unsafe {
            core::slice::from_raw_parts(
                module.region.start as *const u8,
                module.region.len() as usize,
            )
        }
    };
    let modules = rest
        .iter()
        .map(|m| GuestModule {
            data: bytes(m),
            args: boot.module_args(m),
        })
        .collect();
    Some(GuestFiles {
        image: bytes(first),
        cmdline: boot.module_args(first),
        modules,
    })
}

/// Loads the guest from the boot modules and runs it to the end.
pub fn run_module_guest(boot: &BootInfo, config: &Config) -> ExitStatus {
    let Some(files) = guest_files(boot, "guest") else {
        return ExitStatus::Failure;
    };
    // Without a peer link every NIC is free: `shared` takes the first as `nic` does.
    let uplink = match config.guest_net {
        GuestNet::OwnNic | GuestNet::Shared => match guest_uplink(config.guest_mac, "guest") {
            Some(uplink) => Some(uplink),
            None => return ExitStatus::Failure,
        },
        GuestNet::Off => None,
    };
    let launch = Launch {
        files,
        ram_mib: config.guest_ram_mib,
        uplink,
    };
    match backend::dispatch(launch) {
        Ok(status) => status,
        Err(why) => {
            kprintln!("guest: cannot run guests: {why}");
            ExitStatus::Failure
        }
    }
}

/// A guest to load and run.
struct Launch<'a> {
    files: GuestFiles<'a>,
    ram_mib: u32,
    /// The host NIC of the guest's network card, if it has one.
    uplink: Option<Uplink>,
}

/// The first NIC nothing else took, carrying the traffic of a guest card with MAC `mac`
/// (`guest_net=nic`); `None` after saying why under `who` if there is none.
pub fn guest_uplink(mac: [u8; 6], who: &str) -> Option<Uplink> {
    let Some(nic) = net::take_first() else {
        kprintln!(
            "{who}: guest_net=nic needs a NIC of its own (virtio-net or e1000); none is left"
        );
        return None;
    };
    Some(bridge(nic, mac, who, ""))
}

/// The guest card with MAC `mac` bridged to `nic`, said under `who` (`how`: more words for
/// the line).
pub fn bridge(nic: Box<dyn Nic>, mac: [u8; 6], who: &str, how: &str) -> Uplink {
    let uplink = Uplink::new(nic, mac);
    kprintln!(
        "{who}: guest network card {} bridged to {}{how}",
        castor_ft::link::ether::MacAddr(mac),
        uplink.nic_name()
    );
    uplink
}

impl WithBackend for Launch<'_> {
    type Output = ExitStatus;

    fn run<B: Backend>(self) -> ExitStatus {
        let Launch {
            files,
            ram_mib,
            mut uplink,
        } = self;
        let nic = uplink.as_ref().map(|u| u.guest_mac());
        let Some(mem) = guest_memory::<B>(u64::from(ram_mib) << 20, false, "guest") else {
            return ExitStatus::Failure;
        };
        let Some((mut vcpu, mut guest)) = boot_guest::<B>(mem, &files, nic, "guest") else {
            return ExitStatus::Failure;
        };
        run_to_end::<B>(&mut vcpu, &mut guest, uplink.as_mut())
    }
}

/// Loads the guest kernel of `files` into `mem` and makes its vCPU, as `qemu -kernel` would
/// start it, with a network card of MAC `nic` if given; says why not under `who` on failure.
pub fn boot_guest<B: Backend>(
    mut mem: GuestMemory<B::Format>,
    files: &GuestFiles<'_>,
    nic: Option<[u8; 6]>,
    who: &str,
) -> Option<(B::Vcpu, Guest<B::Format>)> {
    let GuestFiles {
        image,
        cmdline,
        ref modules,
    } = *files;
    let entry = match loader::load(image, cmdline, modules, &mut mem) {
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
        "{who}: {} kernel with {} module(s)",
        entry.format,
        modules.len()
    );
    kprintln!(
        "{who}: starting '{cmdline}' ({} bytes, {} MiB RAM) under {}",
        image.len(),
        mem.size() >> 20,
        B::NAME
    );
    let mut vcpu = match B::new_vcpu(0, &mem, entry.start) {
        Ok(vcpu) => vcpu,
        Err(e) => {
            kprintln!("{who}: cannot run guests: {e}");
            return None;
        }
    };
    let regs = vcpu.regs();
    regs.rax = u64::from(entry.eax);
    regs.rbx = u64::from(entry.ebx);
    regs.rsi = u64::from(entry.esi);
    let guest = match nic {
        Some(mac) => Guest::with_nic(mem, mac),
        None => Guest::new(mem),
    };
    Some((vcpu, guest))
}

/// Runs a loaded guest until it ends, printing its output as `[guest] ...` and then
/// `guest exited with status <N>` (success) or why it stopped (failure). The host's LAPIC
/// timer interrupts it every millisecond, so a guest that only computes (no exits of its own)
/// still gets its timer interrupts: the chipset is brought up to date at every exit. The
/// guest's network card, if any, is bridged to `uplink`.
pub fn run_to_end<B: Backend>(
    vcpu: &mut B::Vcpu,
    guest: &mut Guest<B::Format>,
    uplink: Option<&mut Uplink>,
) -> ExitStatus {
    apic::start_host_tick();
    let net = uplink.map(|u| u as &mut dyn NetHost<B::Format>);
    let report = run::run_with_nic(vcpu, guest, "[guest] ", u64::MAX, net);
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
