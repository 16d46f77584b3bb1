// SPDX-License-Identifier: MIT OR Apache-2.0
//! Multiboot 1 information structure (Multiboot Specification 0.6.96, section 3.3), as passed by
//! `qemu -kernel`. Read through [`PhysReader`] so the parser runs over test buffers on the host.

use super::{BootInfo, BootInfoError, MemKind, Protocol};

/// Read access to physical memory.
pub trait PhysReader {
    /// `len` bytes at physical address `phys`, or None if out of range.
    fn bytes(&self, phys: u64, len: usize) -> Option<&[u8]>;
}

/// Physical memory through the boot identity map.
pub struct IdentityMemory(());

impl IdentityMemory {
    /// # Safety
    /// Every address the parser follows must be identity mapped and readable (true for the
    /// loader's structures under the boot page tables, which map the first 4 GiB).
    pub unsafe fn new() -> Self {
        IdentityMemory(())
    }
}

impl PhysReader for IdentityMemory {
    fn bytes(&self, phys: u64, len: usize) -> Option<&[u8]> {
        if phys == 0 || phys.checked_add(len as u64)? > 1 << 32 {
            return None;
        }
        // SAFETY: `new`'s contract: the low 4 GiB are identity mapped and readable, and the
        // range was checked to lie below 4 GiB.
        Some(unsafe { core::slice::from_raw_parts(phys as *const u8, len) })
    }
}

fn u32_at(b: &[u8], off: usize) -> Result<u32, BootInfoError> {
    b.get(off..off + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or(BootInfoError::Malformed("structure truncated"))
}

fn u64_at(b: &[u8], off: usize) -> Result<u64, BootInfoError> {
    Ok(u64::from(u32_at(b, off)?) | (u64::from(u32_at(b, off + 4)?) << 32))
}

/// A NUL-terminated string at `phys` (at most `max` bytes).
fn c_string(mem: &impl PhysReader, phys: u64, max: usize) -> &[u8] {
    // Read byte by byte so a string near the end of memory is not rejected.
    let mut len = 0;
    while len < max {
        match mem.bytes(phys + len as u64, 1) {
            Some([0]) | None => break,
            Some(_) => len += 1,
        }
    }
    mem.bytes(phys, len).unwrap_or(&[])
}

const FLAG_CMDLINE: u32 = 1 << 2;
const FLAG_MODULES: u32 = 1 << 3;
const FLAG_MMAP: u32 = 1 << 6;

/// Parses the Multiboot 1 information at `info`.
pub fn parse(mem: &impl PhysReader, info: u64) -> Result<BootInfo, BootInfoError> {
    let b = mem
        .bytes(info, 52)
        .ok_or(BootInfoError::Malformed("info address out of range"))?;
    let flags = u32_at(b, 0)?;
    let mut out = BootInfo::empty(Protocol::Multiboot1);
    if flags & FLAG_CMDLINE != 0 {
        out.set_cmdline(c_string(mem, u64::from(u32_at(b, 16)?), super::MAX_CMDLINE));
    }
    if flags & FLAG_MODULES != 0 {
        let (count, addr) = (u32_at(b, 20)? as usize, u64::from(u32_at(b, 24)?));
        let table = mem
            .bytes(addr, count.min(256) * 16)
            .ok_or(BootInfoError::Malformed("module table out of range"))?;
        for m in table.chunks_exact(16) {
            let (start, end) = (u64::from(u32_at(m, 0)?), u64::from(u32_at(m, 4)?));
            if end < start {
                return Err(BootInfoError::Malformed("module ends before it starts"));
            }
            out.push_module(
                start,
                end,
                c_string(mem, u64::from(u32_at(m, 8)?), super::MAX_MODULE_CMDLINE),
            );
        }
    }
    if flags & FLAG_MMAP != 0 {
        let (len, addr) = (u32_at(b, 44)? as usize, u64::from(u32_at(b, 48)?));
        let map = mem
            .bytes(addr, len)
            .ok_or(BootInfoError::Malformed("memory map out of range"))?;
        let mut off = 0;
        // Each entry: size (of the rest), base_addr u64, length u64, type u32.
        while off + 24 <= map.len() {
            let size = u32_at(map, off)? as usize;
            if size < 20 {
                return Err(BootInfoError::Malformed("memory map entry too small"));
            }
            let (base, length) = (u64_at(map, off + 4)?, u64_at(map, off + 12)?);
            out.push_area(
                base,
                length,
                MemKind::from_multiboot(u32_at(map, off + 20)?),
            );
            off += 4 + size;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::region::Region;
    use std::vec::Vec;

    /// Test memory: one buffer at physical address 0x1000.
    struct Buffer(Vec<u8>);
    const BASE: u64 = 0x1000;

    impl PhysReader for Buffer {
        fn bytes(&self, phys: u64, len: usize) -> Option<&[u8]> {
            let start = usize::try_from(phys.checked_sub(BASE)?).ok()?;
            self.0.get(start..start.checked_add(len)?)
        }
    }

    fn put32(buf: &mut [u8], off: usize, v: u32) {
        buf[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }

    fn sample() -> Buffer {
        let mut m = std::vec![0u8; 0x400];
        put32(&mut m, 0, FLAG_CMDLINE | FLAG_MODULES | FLAG_MMAP);
        put32(&mut m, 16, 0x1100); // cmdline
        m[0x100..0x100 + 25].copy_from_slice(b"/boot/castor selftest=all");
        put32(&mut m, 20, 1); // one module
        put32(&mut m, 24, 0x1200);
        put32(&mut m, 0x200, 0x20_0000);
        put32(&mut m, 0x204, 0x20_8000);
        put32(&mut m, 0x208, 0x1280);
        m[0x280..0x285].copy_from_slice(b"guest");
        put32(&mut m, 44, 48); // two entries of 24 bytes
        put32(&mut m, 48, 0x1300);
        for (i, (base, len, kind)) in [(0u64, 0x9fc00u64, 1u32), (0x10_0000, 0x7ee_0000, 1)]
            .into_iter()
            .enumerate()
        {
            let o = 0x300 + i * 24;
            put32(&mut m, o, 20);
            m[o + 4..o + 12].copy_from_slice(&base.to_le_bytes());
            m[o + 12..o + 20].copy_from_slice(&len.to_le_bytes());
            put32(&mut m, o + 20, kind);
        }
        Buffer(m)
    }

    #[test]
    fn parses_cmdline_modules_and_memory_map() {
        let info = parse(&sample(), BASE).unwrap();
        assert_eq!(info.cmdline().unwrap(), "/boot/castor selftest=all");
        assert_eq!(info.modules().len(), 1);
        assert_eq!(info.modules()[0].region, Region::new(0x20_0000, 0x20_8000));
        assert_eq!(info.modules()[0].cmdline(), "guest");
        assert_eq!(info.areas().len(), 2);
        assert_eq!(info.areas()[1].region, Region::new(0x10_0000, 0x7fe_0000));
        assert_eq!(info.areas()[1].kind, MemKind::Available);
    }

    #[test]
    fn rejects_malformed_structures_without_panicking() {
        let mut bad = sample();
        put32(&mut bad.0, 0x300, 4); // entry size too small
        assert_eq!(
            parse(&bad, BASE).unwrap_err(),
            BootInfoError::Malformed("memory map entry too small")
        );
        let mut bad = sample();
        put32(&mut bad.0, 48, 0xdead_0000); // memory map pointer out of range
        assert!(parse(&bad, BASE).is_err());
        assert!(parse(&sample(), 0x9999_0000).is_err());
        // Truncate the buffer at every length: never a panic.
        let full = sample().0;
        for n in 0..full.len() {
            let _ = parse(&Buffer(full[..n].to_vec()), BASE);
        }
    }
}
