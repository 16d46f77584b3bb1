// SPDX-License-Identifier: MIT OR Apache-2.0
//! The wire encoding of a [`CpuState`]: fixed layout, little endian, [`ENCODED_LEN`] bytes.
//!
//! | offset | bytes | field |
//! |---|---|---|
//! | 0 | 4 | [`MAGIC`] |
//! | 4 | 2 | [`VERSION`] |
//! | 6 | 2 | [`ENCODED_LEN`] |
//! | 8 | 15 × 8 | RAX, RBX, RCX, RDX, RSI, RDI, RBP, R8-R15 |
//! | 128 | 8 × 8 | CR2, RIP, RSP, RFLAGS, CR0, CR3, CR4, EFER |
//! | 192 | 8 × 24 | CS, DS, ES, FS, GS, SS, TR, LDTR: selector (2), 0 (2), limit (4), base (8), access rights (4), 0 (4) |
//! | 384 | 2 × 16 | GDTR, IDTR: base (8), limit (2), 0 (6) |
//! | 416 | 8 × 8 | SYSENTER_CS, SYSENTER_ESP, SYSENTER_EIP, STAR, LSTAR, CSTAR, FMASK, KERNEL_GS_BASE |
//! | 480 | 3 × 8 | PAT, MTRR_DEF_TYPE, APIC_BASE |
//! | 504 | 8 | DR7 |
//! | 512 | 4 × 8 | PDPTE0-3 |
//! | 544 | 1 | flags: 0 STI blocking, 1 MOV-SS blocking, 2 interrupt window, 3 event valid, 4 event error code valid |
//! | 545 | 3 | event kind, vector, instruction length |
//! | 548 | 4 | event error code |
//! | 552 | 1 | width of a pending `IN` (0 none, 1, 2, 4) |
//! | 553 | 7 | 0 |
//! | 560 | 8 | guest TSC (version 2 from here on: [`super::ExtendedState`]) |
//! | 568 | 8 | IA32_TSC_AUX |
//! | 576 | 4 × 8 | DR0-DR3 |
//! | 608 | 3 × 8 | DR6, IA32_DEBUGCTL, pending debug exceptions |
//! | 632 | 1 | flags: 0 halted |
//! | 633 | 1 | CR8 (task priority, bits 3:0) |
//! | 634 | 6 | 0 |
//! | 640 | 8 | XCR0 of the x87/SSE image |
//! | 648 | 4 | size of the image |
//! | 652 | 4 | 0 |
//! | 656 | 512 | the image: legacy region of the XSAVE area (FXSAVE layout) |
//!
//! A state whose image has another XCR0 or size is refused as
//! [`CpuStateError::XsaveLayout`] naming both, before its length is looked at: this build
//! cannot load it, whatever else is wrong.
//!
//! Decoding is strict: anything but exactly this length, magic and version, any reserved bit
//! or byte set, any non-canonical encoding (event fields without a valid event, an error code
//! without its flag) and any state [`CpuState::check`] refuses is an error, so every accepted
//! encoding re-encodes to the same bytes.

use alloc::vec::Vec;

use super::extended::{ExtendedState, FX_AREA_LEN, FpuState, FxArea, check_layout};
use super::{CpuState, CpuStateError, DescriptorTable, EmulatedMsrs, Event, EventKind};
use crate::vmm::vcpu::{GuestRegs, Segment};

/// First bytes of every encoding.
pub const MAGIC: [u8; 4] = *b"CVCP";
/// Encoding version written and read by this build.
pub const VERSION: u16 = 2;
/// Length of every encoding.
pub const ENCODED_LEN: usize = IMAGE_AT + FX_AREA_LEN;
/// Offset of the x87/SSE image's XCR0 and size.
const LAYOUT_AT: usize = 640;
/// Offset of the x87/SSE image.
const IMAGE_AT: usize = 656;

// The state must fit the checkpoint stream's vCPU record, with room to spare.
const _: () = assert!(ENCODED_LEN <= 2048);
const _: () = assert!(ENCODED_LEN <= castor_ft::stream::MAX_VCPU_STATE_LEN);

const STI: u8 = 1 << 0;
const MOV_SS: u8 = 1 << 1;
const WINDOW: u8 = 1 << 2;
const EVENT: u8 = 1 << 3;
const ERROR_CODE: u8 = 1 << 4;
const HALTED: u8 = 1 << 0;

struct Writer(Vec<u8>);

impl Writer {
    fn bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.bytes(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.bytes(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
    fn zeros(&mut self, n: usize) {
        self.0.resize(self.0.len() + n, 0);
    }
}

/// Reads fields in order; every read is bounds checked (a short input is an error, never a
/// panic), though `decode` checks the length first.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], CpuStateError> {
        let (head, rest) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or(CpuStateError::Length(0))?;
        self.rest = rest;
        Ok(*head)
    }
    fn u8(&mut self) -> Result<u8, CpuStateError> {
        Ok(self.take::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, CpuStateError> {
        self.take().map(u16::from_le_bytes)
    }
    fn u32(&mut self) -> Result<u32, CpuStateError> {
        self.take().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Result<u64, CpuStateError> {
        self.take().map(u64::from_le_bytes)
    }
    /// `n` bytes that must be zero.
    fn zeros(&mut self, n: usize, what: &'static str) -> Result<(), CpuStateError> {
        let (head, rest) = self
            .rest
            .split_at_checked(n)
            .ok_or(CpuStateError::Length(0))?;
        if head.iter().any(|&b| b != 0) {
            return Err(CpuStateError::Reserved(what));
        }
        self.rest = rest;
        Ok(())
    }
}

fn gprs_mut(r: &mut GuestRegs) -> [&mut u64; 15] {
    [
        &mut r.rax, &mut r.rbx, &mut r.rcx, &mut r.rdx, &mut r.rsi, &mut r.rdi, &mut r.rbp,
        &mut r.r8, &mut r.r9, &mut r.r10, &mut r.r11, &mut r.r12, &mut r.r13, &mut r.r14,
        &mut r.r15,
    ]
}

fn gprs(r: &GuestRegs) -> [u64; 15] {
    [
        r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.r8, r.r9, r.r10, r.r11, r.r12, r.r13,
        r.r14, r.r15,
    ]
}

impl CpuState {
    /// The encoding (see the module documentation). A state that fails [`CpuState::check`]
    /// still encodes, but will not decode.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(ENCODED_LEN));
        w.bytes(&MAGIC);
        w.u16(VERSION);
        w.u16(ENCODED_LEN as u16);
        for v in gprs(&self.regs) {
            w.u64(v);
        }
        for v in [
            self.regs.cr2,
            self.rip,
            self.rsp,
            self.rflags,
            self.cr0,
            self.cr3,
            self.cr4,
            self.efer,
        ] {
            w.u64(v);
        }
        for s in self.segments() {
            w.u16(s.selector);
            w.zeros(2);
            w.u32(s.limit);
            w.u64(s.base);
            w.u32(s.rights);
            w.zeros(4);
        }
        for t in [self.gdtr, self.idtr] {
            w.u64(t.base);
            w.u16(t.limit);
            w.zeros(6);
        }
        for v in [
            self.sysenter_cs,
            self.sysenter_esp,
            self.sysenter_eip,
            self.star,
            self.lstar,
            self.cstar,
            self.sfmask,
            self.kernel_gs_base,
            self.msrs.pat,
            self.msrs.mtrr_def_type,
            self.msrs.apic_base,
            self.dr7,
        ] {
            w.u64(v);
        }
        for v in self.pdpte {
            w.u64(v);
        }
        let mut flags = 0;
        for (on, bit) in [
            (self.sti_blocking, STI),
            (self.mov_ss_blocking, MOV_SS),
            (self.interrupt_window, WINDOW),
            (self.event.is_some(), EVENT),
            (
                self.event.is_some_and(|e| e.error_code.is_some()),
                ERROR_CODE,
            ),
        ] {
            if on {
                flags |= bit;
            }
        }
        w.u8(flags);
        match self.event {
            Some(e) => {
                w.u8(e.kind as u8);
                w.u8(e.vector);
                w.u8(e.instruction_len);
                w.u32(e.error_code.unwrap_or(0));
            }
            None => w.zeros(7),
        }
        w.u8(self.pending_io_in.unwrap_or(0));
        w.zeros(7);
        let e = &self.ext;
        for v in [e.tsc, e.tsc_aux] {
            w.u64(v);
        }
        for v in e.dr {
            w.u64(v);
        }
        for v in [e.dr6, e.debugctl, e.pending_debug] {
            w.u64(v);
        }
        w.u8(if e.halted { HALTED } else { 0 });
        w.u8(e.tpr);
        w.zeros(6);
        debug_assert_eq!(w.0.len(), LAYOUT_AT);
        w.u64(e.fpu.xcr0);
        w.u32(FX_AREA_LEN as u32);
        w.zeros(4);
        w.bytes(&e.fpu.area.0);
        debug_assert_eq!(w.0.len(), ENCODED_LEN);
        w.0
    }

    /// Decodes and checks an encoding (see the module documentation).
    pub fn from_bytes(bytes: &[u8]) -> Result<CpuState, CpuStateError> {
        let length = CpuStateError::Length(bytes.len());
        let mut r = Reader { rest: bytes };
        if r.take::<4>().map_err(|_| length)? != MAGIC {
            return Err(CpuStateError::Magic);
        }
        let version = r.u16().map_err(|_| length)?;
        if version != VERSION {
            return Err(CpuStateError::Version(version));
        }
        if let Some(layout) = bytes.get(LAYOUT_AT..IMAGE_AT) {
            let mut l = Reader { rest: layout };
            check_layout(l.u64()?, l.u32()?)?;
        }
        if bytes.len() != ENCODED_LEN {
            return Err(length);
        }
        if usize::from(r.u16()?) != ENCODED_LEN {
            return Err(CpuStateError::Invalid("length field"));
        }
        let mut regs = GuestRegs::default();
        for slot in gprs_mut(&mut regs) {
            *slot = r.u64()?;
        }
        regs.cr2 = r.u64()?;
        let mut scalars = [0u64; 7];
        for v in &mut scalars {
            *v = r.u64()?;
        }
        let [rip, rsp, rflags, cr0, cr3, cr4, efer] = scalars;
        let mut segments = [Segment {
            selector: 0,
            base: 0,
            limit: 0,
            rights: 0,
        }; 8];
        for s in &mut segments {
            s.selector = r.u16()?;
            r.zeros(2, "segment padding")?;
            s.limit = r.u32()?;
            s.base = r.u64()?;
            s.rights = r.u32()?;
            r.zeros(4, "segment padding")?;
        }
        let mut tables = [DescriptorTable::default(); 2];
        for t in &mut tables {
            t.base = r.u64()?;
            t.limit = r.u16()?;
            r.zeros(6, "descriptor-table padding")?;
        }
        let mut msrs = [0u64; 12];
        for v in &mut msrs {
            *v = r.u64()?;
        }
        let mut pdpte = [0u64; 4];
        for v in &mut pdpte {
            *v = r.u64()?;
        }
        let flags = r.u8()?;
        if flags & !(STI | MOV_SS | WINDOW | EVENT | ERROR_CODE) != 0 {
            return Err(CpuStateError::Reserved("flags"));
        }
        let (kind, vector, instruction_len, error_code) = (r.u8()?, r.u8()?, r.u8()?, r.u32()?);
        let has_error = flags & ERROR_CODE != 0;
        if !has_error && error_code != 0 {
            return Err(CpuStateError::Reserved("error code without its flag"));
        }
        let event = if flags & EVENT != 0 {
            Some(Event {
                kind: EventKind::from_number(kind).ok_or(CpuStateError::Invalid("event kind"))?,
                vector,
                error_code: has_error.then_some(error_code),
                instruction_len,
            })
        } else if has_error || (kind, vector, instruction_len) != (0, 0, 0) {
            return Err(CpuStateError::Reserved("event fields without an event"));
        } else {
            None
        };
        let pending_io_in = match r.u8()? {
            0 => None,
            w @ (1 | 2 | 4) => Some(w),
            _ => return Err(CpuStateError::Invalid("pending IN width")),
        };
        r.zeros(7, "padding after the pending IN")?;
        let ext = extended(&mut r)?;
        let [cs, ds, es, fs, gs, ss, tr, ldtr] = segments;
        let [gdtr, idtr] = tables;
        let [
            sysenter_cs,
            sysenter_esp,
            sysenter_eip,
            star,
            lstar,
            cstar,
            sfmask,
            kernel_gs_base,
            pat,
            mtrr_def_type,
            apic_base,
            dr7,
        ] = msrs;
        let state = CpuState {
            regs,
            rip,
            rsp,
            rflags,
            cr0,
            cr3,
            cr4,
            efer,
            cs,
            ds,
            es,
            fs,
            gs,
            ss,
            tr,
            ldtr,
            gdtr,
            idtr,
            sysenter_cs,
            sysenter_esp,
            sysenter_eip,
            star,
            lstar,
            cstar,
            sfmask,
            kernel_gs_base,
            msrs: EmulatedMsrs {
                pat,
                mtrr_def_type,
                apic_base,
            },
            dr7,
            pdpte,
            sti_blocking: flags & STI != 0,
            mov_ss_blocking: flags & MOV_SS != 0,
            event,
            interrupt_window: flags & WINDOW != 0,
            pending_io_in,
            ext,
        };
        state.check()?;
        Ok(state)
    }
}

/// The version-2 part, from offset 560 (the layout was checked before).
fn extended(r: &mut Reader<'_>) -> Result<ExtendedState, CpuStateError> {
    let (tsc, tsc_aux) = (r.u64()?, r.u64()?);
    let mut dr = [0u64; 4];
    for v in &mut dr {
        *v = r.u64()?;
    }
    let (dr6, debugctl, pending_debug) = (r.u64()?, r.u64()?, r.u64()?);
    let flags = r.u8()?;
    if flags & !HALTED != 0 {
        return Err(CpuStateError::Reserved("extended flags"));
    }
    let tpr = r.u8()?;
    r.zeros(6, "extended padding")?;
    let xcr0 = r.u64()?;
    r.u32()?;
    r.zeros(4, "image padding")?;
    let area = FxArea(r.take::<FX_AREA_LEN>()?);
    Ok(ExtendedState {
        tsc,
        tsc_aux,
        dr,
        dr6,
        debugctl,
        pending_debug,
        halted: flags & HALTED != 0,
        tpr,
        fpu: FpuState { xcr0, area },
    })
}
