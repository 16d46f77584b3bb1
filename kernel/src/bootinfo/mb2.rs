// SPDX-License-Identifier: MIT OR Apache-2.0
//! Multiboot 2 information (Multiboot2 Specification 1.0, section 3.6), read with the
//! `multiboot2` crate. The ACPI RSDP arrives as a copy inside a tag; Castor copies it once more
//! into its own memory so the ACPI code can keep using it after the loader's structures are gone.

use multiboot2::{BootInformation, BootInformationHeader};

use super::{BootInfo, BootInfoError, MemKind, Protocol};

/// Room for an ACPI 2.0+ RSDP (36 bytes), aligned as the `acpi` crate reads it.
#[repr(C, align(16))]
struct RsdpCopy([u8; 36]);

static RSDP: spin::Once<RsdpCopy> = spin::Once::new();

/// Parses the Multiboot 2 information at `info`.
///
/// # Safety
/// `info` must be the address GRUB passed in EBX, identity mapped and still intact.
pub unsafe fn parse(info: u64) -> Result<BootInfo, BootInfoError> {
    // SAFETY: forwarded from the caller; `load` validates sizes and alignment.
    let mbi = unsafe { BootInformation::load(info as *const BootInformationHeader) }
        .map_err(|_| BootInfoError::Malformed("multiboot2 information rejected"))?;
    let mut out = BootInfo::empty(Protocol::Multiboot2);
    if let Some(cmdline) = mbi.command_line_tag() {
        out.set_cmdline(cmdline.cmdline().unwrap_or("").as_bytes());
    }
    for module in mbi.module_tags() {
        out.push_module(
            u64::from(module.start_address()),
            u64::from(module.end_address()),
            module.cmdline().unwrap_or("").as_bytes(),
        );
    }
    if let Some(map) = mbi.memory_map_tag() {
        for area in map.memory_areas() {
            out.push_area(
                area.start_address(),
                area.size(),
                MemKind::from_multiboot(area.typ().val()),
            );
        }
    }
    // The RSDP bytes follow the 8-byte tag header (type, size).
    let rsdp = match (mbi.rsdp_v2_tag(), mbi.rsdp_v1_tag()) {
        (Some(v2), _) if v2.checksum_is_valid() => Some((v2 as *const _ as *const u8, 36)),
        (_, Some(v1)) if v1.checksum_is_valid() => Some((v1 as *const _ as *const u8, 20)),
        _ => None,
    };
    if let Some((tag, len)) = rsdp {
        let mut copy = RsdpCopy([0; 36]);
        // SAFETY: the tag is inside the validated boot information and holds `len` RSDP bytes
        // after its 8-byte header (the tag's size covers them: checked by the checksum above).
        copy.0[..len].copy_from_slice(unsafe { core::slice::from_raw_parts(tag.add(8), len) });
        out.rsdp = Some(RSDP.call_once(|| copy).0.as_ptr() as u64);
    }
    Ok(out)
}
