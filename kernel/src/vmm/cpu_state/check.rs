// SPDX-License-Identifier: MIT OR Apache-2.0
//! The rules a [`CpuState`] must meet before either back end enters it: reserved bits clear,
//! addresses canonical, and the consistency conditions of Intel SDM Vol. 3C, 27.3.1 "Checks on
//! the Guest State Area" (27.3.1.1 control registers and MSRs, 27.3.1.2 segment registers,
//! 27.3.1.3 descriptor-table registers, 27.3.1.4 RIP and RFLAGS, 27.3.1.5 non-register state)
//! and 27.2.1.3 "Checks on VM-Entry Control Fields" (event injection), which cover what AMD-V's
//! VMRUN checks as well (APM Vol. 2, 15.5.1 "Basic Operation": EFER/CR0/CR4 consistency, and
//! 15.20 "Event Injection"). Checking here turns a corrupt or hostile checkpoint into a clear
//! error before any hardware sees it.

use super::{
    CR0_PE, CR0_PG, CR4_PAE, CpuState, CpuStateError, EFER_LMA, EventKind, RFLAGS_IF, RFLAGS_VM,
    UNUSABLE,
};
use crate::vmm::vcpu::Segment;

use CpuStateError::{Invalid, Reserved};

/// CR0 bits that exist: PE, MP, EM, TS, ET, NE, WP, AM, NW, CD, PG.
const CR0_DEFINED: u64 = 0xE005_003F;
const CR0_NW: u64 = 1 << 29;
const CR0_CD: u64 = 1 << 30;
/// CR4 bits that exist: 0-14 (VME … SMXE) and 16-25 (FSGSBASE … UINTR); bit 15 is reserved.
const CR4_DEFINED: u64 = 0x03FF_7FFF;
const CR4_LA57: u64 = 1 << 12;
/// Guest-visible EFER bits: SCE, LME, LMA, NXE.
const EFER_DEFINED: u64 = (1 << 0) | (1 << 8) | (1 << 10) | (1 << 11);
const EFER_LME: u64 = 1 << 8;
/// Physical addresses have at most 52 bits (SDM Vol. 3A, 4.1.4).
const ABOVE_MAXPHYADDR: u64 = !((1 << 52) - 1);
/// RFLAGS: bit 1 is always set; bits 3, 5, 15 and 63:22 are reserved.
const RFLAGS_FIXED1: u64 = 1 << 1;
const RFLAGS_RESERVED: u64 = (1 << 3) | (1 << 5) | (1 << 15) | !((1 << 22) - 1);
/// Access rights bits 11:8 are reserved in a usable segment, 31:17 always.
const RIGHTS_RESERVED_USABLE: u32 = 0xF00;
const RIGHTS_RESERVED: u32 = !0x1_FFFF;
const RIGHTS_S: u32 = 1 << 4;
const RIGHTS_P: u32 = 1 << 7;
const RIGHTS_L: u32 = 1 << 13;
const RIGHTS_DB: u32 = 1 << 14;
const RIGHTS_G: u32 = 1 << 15;
/// Present PDPTE bits that must be zero under PAE paging: 2:1 and 8:5 (SDM Vol. 3A, 4.4.1),
/// and those above the physical-address width.
const PDPTE_RESERVED: u64 = 0b1_1110_0110 | ABOVE_MAXPHYADDR;
/// Exceptions that push an error code: #DF, #TS, #NP, #SS, #GP, #PF, #AC, #CP.
const ERROR_CODE_VECTORS: [u8; 8] = [8, 10, 11, 12, 13, 14, 17, 21];

/// Whether `v` is canonical for `bits`-bit linear addresses.
fn canonical(v: u64, bits: u32) -> bool {
    let shift = 64 - bits;
    (((v << shift) as i64) >> shift) as u64 == v
}

fn ensure(ok: bool, error: CpuStateError) -> Result<(), CpuStateError> {
    if ok { Ok(()) } else { Err(error) }
}

/// All checks; see the module documentation.
pub(super) fn check(s: &CpuState) -> Result<(), CpuStateError> {
    ensure(s.regs.reserved == 0, Reserved("register padding"))?;
    control_registers(s)?;
    rip_and_rflags(s)?;
    segments(s)?;
    tables_and_msrs(s)?;
    pdptes(s)?;
    interruptibility_and_event(s)?;
    super::extended::check(s)
}

fn linear_bits(s: &CpuState) -> u32 {
    if s.cr4 & CR4_LA57 != 0 { 57 } else { 48 }
}

fn control_registers(s: &CpuState) -> Result<(), CpuStateError> {
    ensure(s.cr0 & !CR0_DEFINED == 0, Reserved("CR0"))?;
    ensure(
        s.cr0 & CR0_PG == 0 || s.cr0 & CR0_PE != 0,
        Invalid("CR0.PG without CR0.PE"),
    )?;
    ensure(
        s.cr0 & CR0_NW == 0 || s.cr0 & CR0_CD != 0,
        Invalid("CR0.NW without CR0.CD"),
    )?;
    ensure(s.cr4 & !CR4_DEFINED == 0, Reserved("CR4"))?;
    ensure(s.cr3 & ABOVE_MAXPHYADDR == 0, Reserved("CR3"))?;
    ensure(s.efer & !EFER_DEFINED == 0, Reserved("EFER"))?;
    let lma = s.efer & EFER_LMA != 0;
    let paging = s.cr0 & CR0_PG != 0;
    ensure(
        !lma || (paging && s.cr4 & CR4_PAE != 0 && s.efer & EFER_LME != 0),
        Invalid("EFER.LMA without CR0.PG, CR4.PAE and EFER.LME"),
    )?;
    ensure(
        !paging || lma == (s.efer & EFER_LME != 0),
        Invalid("EFER.LME and EFER.LMA differ with paging on"),
    )?;
    ensure(s.dr7 >> 32 == 0, Reserved("DR7"))
}

fn rip_and_rflags(s: &CpuState) -> Result<(), CpuStateError> {
    ensure(
        s.rflags & RFLAGS_FIXED1 != 0 && s.rflags & RFLAGS_RESERVED == 0,
        Reserved("RFLAGS"),
    )?;
    let lma = s.efer & EFER_LMA != 0;
    ensure(
        s.rflags & RFLAGS_VM == 0 || (!lma && s.cr0 & CR0_PE != 0),
        Invalid("RFLAGS.VM outside protected mode or in IA-32e mode"),
    )?;
    if lma && s.cs.rights & RIGHTS_L != 0 {
        ensure(
            canonical(s.rip, linear_bits(s)),
            Invalid("RIP (not canonical)"),
        )
    } else {
        ensure(
            s.rip >> 32 == 0,
            Invalid("RIP (above 4 GiB outside 64-bit mode)"),
        )
    }
}

fn usable(seg: &Segment) -> bool {
    seg.rights & UNUSABLE == 0
}

/// A usable segment's limit agrees with its granularity: byte granular up to 1 MiB, 4 KiB
/// granular with the low 12 bits all ones.
fn limit_matches_granularity(seg: &Segment) -> bool {
    let g = seg.rights & RIGHTS_G != 0;
    (seg.limit & 0xFFF == 0xFFF || !g) && (seg.limit <= 0xF_FFFF || g)
}

fn segments(s: &CpuState) -> Result<(), CpuStateError> {
    for seg in s.segments() {
        ensure(
            seg.rights & RIGHTS_RESERVED == 0,
            Reserved("segment access rights"),
        )?;
        if usable(seg) {
            ensure(
                seg.rights & RIGHTS_RESERVED_USABLE == 0,
                Reserved("segment access rights"),
            )?;
            ensure(
                limit_matches_granularity(seg),
                Invalid("segment limit for its granularity"),
            )?;
        }
    }
    let bits = linear_bits(s);
    let lma = s.efer & EFER_LMA != 0;
    let cs = s.cs.rights;
    ensure(usable(&s.cs), Invalid("CS (unusable)"))?;
    ensure(
        cs & RIGHTS_S != 0 && cs & RIGHTS_P != 0,
        Invalid("CS (not a present code or data segment)"),
    )?;
    ensure(
        !(lma && cs & RIGHTS_L != 0 && cs & RIGHTS_DB != 0),
        Invalid("CS (L and D/B both set)"),
    )?;
    ensure(s.cs.base >> 32 == 0, Invalid("CS base"))?;
    for seg in [&s.ss, &s.ds, &s.es] {
        ensure(
            !usable(seg) || seg.base >> 32 == 0,
            Invalid("SS/DS/ES base above 4 GiB"),
        )?;
    }
    for seg in [&s.fs, &s.gs] {
        ensure(
            canonical(seg.base, bits),
            Invalid("FS/GS base (not canonical)"),
        )?;
    }
    let tr = s.tr.rights;
    let tr_type = tr & 0xF;
    ensure(usable(&s.tr), Invalid("TR (unusable)"))?;
    ensure(
        tr & RIGHTS_S == 0 && tr & RIGHTS_P != 0 && (tr_type == 11 || (tr_type == 3 && !lma)),
        Invalid("TR (not a present busy TSS)"),
    )?;
    ensure(
        canonical(s.tr.base, bits),
        Invalid("TR base (not canonical)"),
    )?;
    if usable(&s.ldtr) {
        let ldtr = s.ldtr.rights;
        ensure(
            ldtr & 0xF == 2 && ldtr & RIGHTS_S == 0 && ldtr & RIGHTS_P != 0,
            Invalid("LDTR (not a present LDT)"),
        )?;
        ensure(
            canonical(s.ldtr.base, bits),
            Invalid("LDTR base (not canonical)"),
        )?;
    }
    Ok(())
}

fn memory_type_valid(t: u64) -> bool {
    matches!(t, 0 | 1 | 4 | 5 | 6)
}

fn tables_and_msrs(s: &CpuState) -> Result<(), CpuStateError> {
    let bits = linear_bits(s);
    for base in [s.gdtr.base, s.idtr.base] {
        ensure(
            canonical(base, bits),
            Invalid("GDTR/IDTR base (not canonical)"),
        )?;
    }
    ensure(s.sysenter_cs >> 32 == 0, Reserved("IA32_SYSENTER_CS"))?;
    ensure(s.sfmask >> 32 == 0, Reserved("IA32_FMASK"))?;
    for v in [
        s.sysenter_esp,
        s.sysenter_eip,
        s.lstar,
        s.cstar,
        s.kernel_gs_base,
    ] {
        ensure(
            canonical(v, bits),
            Invalid("SYSENTER_ESP/EIP, LSTAR, CSTAR or KERNEL_GS_BASE (not canonical)"),
        )?;
    }
    // Each PAT entry UC, WC, WT, WP, WB or UC- (SDM Vol. 3A, 13.12.2).
    ensure(
        s.msrs
            .pat
            .to_le_bytes()
            .iter()
            .all(|&t| memory_type_valid(u64::from(t)) || t == 7),
        Invalid("IA32_PAT (reserved memory type)"),
    )?;
    // MTRR_DEF_TYPE: type in 7:0, FE bit 10, E bit 11 (SDM Vol. 3A, 13.11.2.1).
    let def = s.msrs.mtrr_def_type;
    ensure(def & !0xCFF == 0, Reserved("IA32_MTRR_DEF_TYPE"))?;
    ensure(
        memory_type_valid(def & 0xFF),
        Invalid("IA32_MTRR_DEF_TYPE (memory type)"),
    )?;
    // APIC_BASE: BSP bit 8, x2APIC bit 10, enable bit 11, base from bit 12 (SDM Vol. 3A,
    // 11.4.4).
    ensure(
        s.msrs.apic_base & (0x2FF | ABOVE_MAXPHYADDR) == 0,
        Reserved("IA32_APIC_BASE"),
    )
}

fn pdptes(s: &CpuState) -> Result<(), CpuStateError> {
    if s.pae_paging() {
        for e in s.pdpte {
            ensure(e & 1 == 0 || e & PDPTE_RESERVED == 0, Reserved("PDPTE"))?;
        }
        Ok(())
    } else {
        ensure(s.pdpte == [0; 4], Reserved("PDPTEs without PAE paging"))
    }
}

fn interruptibility_and_event(s: &CpuState) -> Result<(), CpuStateError> {
    ensure(
        !(s.sti_blocking && s.mov_ss_blocking),
        Invalid("blocking by STI and by MOV SS at once"),
    )?;
    let interrupts_on = s.rflags & RFLAGS_IF != 0;
    ensure(
        !s.sti_blocking || interrupts_on,
        Invalid("blocking by STI with RFLAGS.IF clear"),
    )?;
    ensure(
        matches!(s.pending_io_in, None | Some(1 | 2 | 4)),
        Invalid("pending IN width"),
    )?;
    let Some(e) = s.event else {
        return Ok(());
    };
    match e.kind {
        EventKind::External => ensure(
            interrupts_on && !s.sti_blocking && !s.mov_ss_blocking,
            Invalid("external interrupt injected while the guest blocks interrupts"),
        )?,
        EventKind::Nmi => ensure(
            e.vector == 2 && !s.mov_ss_blocking,
            Invalid("NMI (vector other than 2, or blocked by MOV SS)"),
        )?,
        EventKind::HardwareException => {
            ensure(e.vector < 32, Invalid("hardware exception vector above 31"))?
        }
        _ => {}
    }
    let needs_error_code = e.kind == EventKind::HardwareException
        && s.cr0 & CR0_PE != 0
        && ERROR_CODE_VECTORS.contains(&e.vector);
    ensure(
        e.error_code.is_some() == needs_error_code,
        Invalid("event error code (only and always with #DF, #TS, #NP, #SS, #GP, #PF, #AC, #CP)"),
    )?;
    if e.kind.is_software() {
        ensure(e.instruction_len <= 15, Invalid("event instruction length"))
    } else {
        ensure(
            e.instruction_len == 0,
            Invalid("instruction length for a hardware event"),
        )
    }
}
