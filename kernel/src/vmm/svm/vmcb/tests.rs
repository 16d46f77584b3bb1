// SPDX-License-Identifier: MIT OR Apache-2.0
//! Layout and encoding tests of the VMCB (offsets checked against the APM's tables).

use super::*;
use core::mem::{offset_of, size_of};
use std::boxed::Box;
use std::format;

/// One field: its name, its offset, its size, and the offset the APM gives.
struct Field {
    name: &'static str,
    offset: usize,
    size: usize,
    apm: usize,
}

fn field_size<T, F>(_: fn(&T) -> &F) -> usize {
    size_of::<F>()
}

/// Lists the fields of `$ty` (every one, reserved ranges included) with the APM offsets,
/// counted from the start of the VMCB (`$base` is where `$ty` starts).
macro_rules! fields {
    ($ty:ty, $base:expr, { $($field:ident: $apm:expr,)* }) => {
        std::vec![$(Field {
            name: stringify!($field),
            offset: $base + offset_of!($ty, $field),
            size: field_size(|s: &$ty| &s.$field),
            apm: $apm,
        }),*]
    };
}

/// Each field at the APM's offset, and each one ending where the next begins (the last at
/// `end`): no compiler padding, no field of the wrong width, none missing from the list.
fn check(fields: &[Field], end: usize) {
    for f in fields {
        assert_eq!(
            f.offset, f.apm,
            "{}: at {:#x}, APM says {:#x}",
            f.name, f.offset, f.apm
        );
    }
    for pair in fields.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert_eq!(
            a.offset + a.size,
            b.offset,
            "{} must end where {} begins",
            a.name,
            b.name
        );
    }
    let last = fields.last().unwrap();
    assert_eq!(last.offset + last.size, end, "{} ends the area", last.name);
}

/// Table B-1.
#[test]
fn control_area_offsets_match_the_apm() {
    let fields = fields!(ControlArea, 0, {
        intercept_cr_read: 0x000,
        intercept_cr_write: 0x002,
        intercept_dr_read: 0x004,
        intercept_dr_write: 0x006,
        intercept_exceptions: 0x008,
        intercept_misc1: 0x00C,
        intercept_misc2: 0x010,
        intercept_misc3: 0x014,
        _reserved_018: 0x018,
        pause_filter_threshold: 0x03C,
        pause_filter_count: 0x03E,
        iopm_base_pa: 0x040,
        msrpm_base_pa: 0x048,
        tsc_offset: 0x050,
        guest_asid: 0x058,
        tlb_control: 0x05C,
        _reserved_05d: 0x05D,
        int_ctl: 0x060,
        int_state: 0x068,
        exit_code: 0x070,
        exit_info1: 0x078,
        exit_info2: 0x080,
        exit_int_info: 0x088,
        nested_control: 0x090,
        avic_apic_bar: 0x098,
        ghcb_gpa: 0x0A0,
        event_inj: 0x0A8,
        n_cr3: 0x0B0,
        virt_ext: 0x0B8,
        clean_bits: 0x0C0,
        _reserved_0c4: 0x0C4,
        next_rip: 0x0C8,
        bytes_fetched: 0x0D0,
        guest_instruction_bytes: 0x0D1,
        avic_backing_page: 0x0E0,
        _reserved_0e8: 0x0E8,
        avic_logical_table: 0x0F0,
        avic_physical_table: 0x0F8,
        _reserved_100: 0x100,
        vmsa_pa: 0x108,
        _reserved_110: 0x110,
        host_reserved: 0x3E0,
    });
    assert_eq!(fields.len(), 42);
    check(&fields, 0x400);
    assert_eq!(offset_of!(Vmcb, control), 0);
    assert_eq!(size_of::<ControlArea>(), 0x400);
}

/// Table B-2 (whose offsets count from the save area: here + 0x400).
#[test]
fn save_area_offsets_match_the_apm() {
    let fields = fields!(SaveArea, offset_of!(Vmcb, save), {
        es: 0x400,
        cs: 0x410,
        ss: 0x420,
        ds: 0x430,
        fs: 0x440,
        gs: 0x450,
        gdtr: 0x460,
        ldtr: 0x470,
        idtr: 0x480,
        tr: 0x490,
        _reserved_4a0: 0x4A0,
        cpl: 0x4CB,
        _reserved_4cc: 0x4CC,
        efer: 0x4D0,
        _reserved_4d8: 0x4D8,
        cr4: 0x548,
        cr3: 0x550,
        cr0: 0x558,
        dr7: 0x560,
        dr6: 0x568,
        rflags: 0x570,
        rip: 0x578,
        _reserved_580: 0x580,
        rsp: 0x5D8,
        s_cet: 0x5E0,
        ssp: 0x5E8,
        isst_addr: 0x5F0,
        rax: 0x5F8,
        star: 0x600,
        lstar: 0x608,
        cstar: 0x610,
        sfmask: 0x618,
        kernel_gs_base: 0x620,
        sysenter_cs: 0x628,
        sysenter_esp: 0x630,
        sysenter_eip: 0x638,
        cr2: 0x640,
        _reserved_648: 0x648,
        g_pat: 0x668,
        dbgctl: 0x670,
        br_from: 0x678,
        br_to: 0x680,
        last_excp_from: 0x688,
        last_excp_to: 0x690,
        _reserved_698: 0x698,
        spec_ctrl: 0x6E0,
    });
    assert_eq!(fields.len(), 46);
    check(&fields, 0x6E8);
    let vmcb = fields!(Vmcb, 0, {
        control: 0x000,
        save: 0x400,
        _reserved_6e8: 0x6E8,
    });
    check(&vmcb, 0x1000);
}

#[test]
fn segment_layout_and_vmcb_size() {
    assert_eq!(offset_of!(Segment, selector), 0);
    assert_eq!(offset_of!(Segment, attrib), 2);
    assert_eq!(offset_of!(Segment, limit), 4);
    assert_eq!(offset_of!(Segment, base), 8);
    assert_eq!(size_of::<Segment>(), 16);
    assert_eq!(size_of::<Vmcb>(), 4096);
    assert_eq!(core::mem::align_of::<Vmcb>(), 4096);
    // Typed fields keep the width of the raw field.
    assert_eq!(size_of::<InterceptMisc1>(), 4);
    assert_eq!(size_of::<InterruptState>(), 8);
    assert_eq!(size_of::<ExitCode>(), 8);
    assert_eq!(size_of::<EventInfo>(), 8);
    assert_eq!(size_of::<NestedControl>(), 8);
    assert_eq!(size_of::<CleanBits>(), 4);
    assert_eq!(size_of::<TlbControl>(), 1);
}

/// Writes through the typed fields land on the APM's bytes.
#[test]
fn fields_write_the_right_bytes() {
    let mut v = Box::new(Vmcb::zeroed());
    v.control.intercept_misc2 = InterceptMisc2::VMRUN | InterceptMisc2::VMMCALL;
    v.control.guest_asid = 1;
    v.control.tlb_control = TlbControl::FLUSH_GUEST;
    v.control.nested_control = NestedControl::NP_ENABLE;
    v.control.exit_code = ExitCode::INVALID;
    v.save.cpl = 3;
    v.save.efer = 0x1000;
    v.save.rip = 0x1122_3344_5566_7788;
    v.save.cs = Segment::from_access_rights(0x08, 0, 0xFFFF_FFFF, 0xA09B);
    // SAFETY: `Vmcb` is 4096 plain bytes (asserted above); viewing them as `u8` is valid.
    let bytes: &[u8; 4096] = unsafe { &*(&*v as *const Vmcb).cast::<[u8; 4096]>() };
    assert_eq!(bytes[0x010], 0b11);
    assert_eq!(bytes[0x058], 1);
    assert_eq!(bytes[0x05C], 3);
    assert_eq!(bytes[0x090], 1);
    assert_eq!(&bytes[0x070..0x078], &[0xFF; 8]);
    assert_eq!(bytes[0x4CB], 3);
    assert_eq!(bytes[0x4D1], 0x10);
    assert_eq!(bytes[0x578], 0x88);
    assert_eq!(bytes[0x57F], 0x11);
    assert_eq!(
        &bytes[0x410..0x418],
        &[0x08, 0, 0x9B, 0x0A, 0xFF, 0xFF, 0xFF, 0xFF]
    );
    let set = bytes.iter().filter(|&&b| b != 0).count();
    assert_eq!(set, 1 + 1 + 1 + 1 + 8 + 1 + 1 + 8 + 7);
}

#[test]
fn segment_attributes_convert_from_and_to_vmx_rights() {
    // 64-bit code: type 0xB, S, P; L, G.
    assert_eq!(Segment::attrib_from_access_rights(0xA09B), 0xA9B);
    assert_eq!(Segment::attrib_from_access_rights(0x209B), 0x29B);
    // 32-bit flat data: D/B, G.
    assert_eq!(Segment::attrib_from_access_rights(0xC093), 0xC93);
    // Busy TSS; unusable LDTR.
    assert_eq!(Segment::attrib_from_access_rights(0x8B), 0x8B);
    assert_eq!(Segment::attrib_from_access_rights(1 << 16), 0);
    let s = Segment::from_access_rights(0x10, 0x1000, 0xFFFF, 0xC093);
    assert_eq!(
        (s.selector, s.base, s.limit, s.attrib),
        (0x10, 0x1000, 0xFFFF, 0xC93)
    );
    assert_eq!(s.access_rights(), 0xC093);
    assert_eq!(
        Segment::default().access_rights(),
        1 << 16,
        "not present = unusable"
    );
}

#[test]
fn exact_attributes_survive_a_round_trip_through_vmx_rights() {
    for attrib in 0..0x1000u16 {
        let s = Segment {
            attrib,
            ..Segment::default()
        };
        assert_eq!(Segment::attrib_exact(s.access_rights()), attrib);
    }
    // Unusable with other bits set (as VT-x may save it): not present, bits kept.
    assert_eq!(Segment::attrib_exact((1 << 16) | 0xC093), 0xC13);
    assert_eq!(Segment::attrib_exact(0xA09B), 0xA9B);
}

#[test]
fn intercept_bits_follow_table_b1() {
    assert_eq!(InterceptMisc1::INTR.bits(), 1);
    assert_eq!(InterceptMisc1::VINTR.bits(), 1 << 4);
    assert_eq!(InterceptMisc1::CPUID.bits(), 1 << 18);
    assert_eq!(InterceptMisc1::HLT.bits(), 1 << 24);
    assert_eq!(InterceptMisc1::IOIO_PROT.bits(), 1 << 27);
    assert_eq!(InterceptMisc1::MSR_PROT.bits(), 1 << 28);
    assert_eq!(InterceptMisc1::SHUTDOWN.bits(), 1 << 31);
    assert_eq!(InterceptMisc1::all().bits(), u32::MAX, "32 distinct bits");
    assert_eq!(InterceptMisc2::VMRUN.bits(), 1);
    assert_eq!(InterceptMisc2::XSETBV.bits(), 1 << 13);
    assert_eq!(InterceptMisc2::all().bits(), 0xFFFF);
    assert_eq!(InterceptMisc2::cr_write_trap(0).bits(), 1 << 16);
    assert_eq!(InterceptMisc2::cr_write_trap(15).bits(), 1 << 31);
    assert_eq!(InterceptMisc3::INVPCID.bits(), 1 << 2);
    // Appendix C numbers the intercepts of each word in bit order: bit n of misc1 exits
    // with 0x60 + n, of misc2 with 0x80 + n, of misc3 with 0xA0 + n. Both tables agree.
    for (flag, code) in [
        (InterceptMisc1::INTR, ExitCode::INTR),
        (InterceptMisc1::NMI, ExitCode::NMI),
        (InterceptMisc1::SMI, ExitCode::SMI),
        (InterceptMisc1::INIT, ExitCode::INIT),
        (InterceptMisc1::VINTR, ExitCode::VINTR),
        (InterceptMisc1::CR0_SEL_WRITE, ExitCode::CR0_SEL_WRITE),
        (InterceptMisc1::IDTR_READ, ExitCode::IDTR_READ),
        (InterceptMisc1::GDTR_READ, ExitCode::GDTR_READ),
        (InterceptMisc1::LDTR_READ, ExitCode::LDTR_READ),
        (InterceptMisc1::TR_READ, ExitCode::TR_READ),
        (InterceptMisc1::IDTR_WRITE, ExitCode::IDTR_WRITE),
        (InterceptMisc1::GDTR_WRITE, ExitCode::GDTR_WRITE),
        (InterceptMisc1::LDTR_WRITE, ExitCode::LDTR_WRITE),
        (InterceptMisc1::TR_WRITE, ExitCode::TR_WRITE),
        (InterceptMisc1::RDTSC, ExitCode::RDTSC),
        (InterceptMisc1::RDPMC, ExitCode::RDPMC),
        (InterceptMisc1::PUSHF, ExitCode::PUSHF),
        (InterceptMisc1::POPF, ExitCode::POPF),
        (InterceptMisc1::CPUID, ExitCode::CPUID),
        (InterceptMisc1::RSM, ExitCode::RSM),
        (InterceptMisc1::IRET, ExitCode::IRET),
        (InterceptMisc1::INTN, ExitCode::SWINT),
        (InterceptMisc1::INVD, ExitCode::INVD),
        (InterceptMisc1::PAUSE, ExitCode::PAUSE),
        (InterceptMisc1::HLT, ExitCode::HLT),
        (InterceptMisc1::INVLPG, ExitCode::INVLPG),
        (InterceptMisc1::INVLPGA, ExitCode::INVLPGA),
        (InterceptMisc1::IOIO_PROT, ExitCode::IOIO),
        (InterceptMisc1::MSR_PROT, ExitCode::MSR),
        (InterceptMisc1::TASK_SWITCH, ExitCode::TASK_SWITCH),
        (InterceptMisc1::FERR_FREEZE, ExitCode::FERR_FREEZE),
        (InterceptMisc1::SHUTDOWN, ExitCode::SHUTDOWN),
    ] {
        assert_eq!(flag.bits().count_ones(), 1);
        assert_eq!(
            code.0,
            0x60 + u64::from(flag.bits().trailing_zeros()),
            "{code:?}"
        );
    }
    assert_eq!(InterceptMisc1::all().iter().count(), 32);
    for (flag, code) in [
        (InterceptMisc2::VMRUN, ExitCode::VMRUN),
        (InterceptMisc2::VMMCALL, ExitCode::VMMCALL),
        (InterceptMisc2::VMLOAD, ExitCode::VMLOAD),
        (InterceptMisc2::VMSAVE, ExitCode::VMSAVE),
        (InterceptMisc2::STGI, ExitCode::STGI),
        (InterceptMisc2::CLGI, ExitCode::CLGI),
        (InterceptMisc2::SKINIT, ExitCode::SKINIT),
        (InterceptMisc2::RDTSCP, ExitCode::RDTSCP),
        (InterceptMisc2::ICEBP, ExitCode::ICEBP),
        (InterceptMisc2::WBINVD, ExitCode::WBINVD),
        (InterceptMisc2::MONITOR, ExitCode::MONITOR),
        (InterceptMisc2::MWAIT, ExitCode::MWAIT),
        (
            InterceptMisc2::MWAIT_CONDITIONAL,
            ExitCode::MWAIT_CONDITIONAL,
        ),
        (InterceptMisc2::XSETBV, ExitCode::XSETBV),
        (InterceptMisc2::RDPRU, ExitCode::RDPRU),
        (InterceptMisc2::EFER_WRITE_TRAP, ExitCode::EFER_WRITE_TRAP),
    ] {
        assert_eq!(flag.bits().count_ones(), 1);
        assert_eq!(
            code.0,
            0x80 + u64::from(flag.bits().trailing_zeros()),
            "{code:?}"
        );
    }
    assert_eq!(InterceptMisc2::all().iter().count(), 16);
    for (flag, code) in [
        (InterceptMisc3::INVLPGB, ExitCode::INVLPGB),
        (InterceptMisc3::INVLPGB_ILLEGAL, ExitCode::INVLPGB_ILLEGAL),
        (InterceptMisc3::INVPCID, ExitCode::INVPCID),
        (InterceptMisc3::MCOMMIT, ExitCode::MCOMMIT),
        (InterceptMisc3::TLBSYNC, ExitCode::TLBSYNC),
    ] {
        assert_eq!(flag.bits().count_ones(), 1);
        assert_eq!(
            code.0,
            0xA0 + u64::from(flag.bits().trailing_zeros()),
            "{code:?}"
        );
    }
    assert_eq!(InterceptMisc3::all().iter().count(), 5);
    for n in 0..16 {
        assert_eq!(
            ExitCode::cr_write_trap(n).0,
            0x80 + u64::from(InterceptMisc2::cr_write_trap(n).bits().trailing_zeros())
        );
    }
    let mut c = Box::new(Vmcb::zeroed()).control;
    c.intercept_exception(14);
    c.intercept_exception(1);
    assert_eq!(c.intercept_exceptions, (1 << 14) | (1 << 1));
}

#[test]
fn exit_codes_follow_appendix_c() {
    assert_eq!(ExitCode::cr_read(3), ExitCode(0x03));
    assert_eq!(ExitCode::cr_write(8), ExitCode(0x18));
    assert_eq!(ExitCode::dr_read(7), ExitCode(0x27));
    assert_eq!(ExitCode::dr_write(6), ExitCode(0x36));
    assert_eq!(ExitCode::exception(14), ExitCode(0x4E));
    assert_eq!(ExitCode::cr_write_trap(4), ExitCode(0x94));
    assert_eq!(ExitCode(0x18).cr_access(), Some((8, true)));
    assert_eq!(ExitCode(0x00).cr_access(), Some((0, false)));
    assert_eq!(ExitCode(0x3F).dr_access(), Some((15, true)));
    assert_eq!(ExitCode(0x40).exception_vector(), Some(0));
    assert_eq!(ExitCode(0x5F).exception_vector(), Some(31));
    assert_eq!(ExitCode(0x60).exception_vector(), None);
    assert_eq!(ExitCode::CPUID.cr_access(), None);
    for (code, value) in [
        (ExitCode::INTR, 0x60),
        (ExitCode::NMI, 0x61),
        (ExitCode::SMI, 0x62),
        (ExitCode::INIT, 0x63),
        (ExitCode::VINTR, 0x64),
        (ExitCode::CR0_SEL_WRITE, 0x65),
        (ExitCode::CPUID, 0x72),
        (ExitCode::HLT, 0x78),
        (ExitCode::INVLPG, 0x79),
        (ExitCode::INVLPGA, 0x7A),
        (ExitCode::IOIO, 0x7B),
        (ExitCode::MSR, 0x7C),
        (ExitCode::TASK_SWITCH, 0x7D),
        (ExitCode::FERR_FREEZE, 0x7E),
        (ExitCode::SHUTDOWN, 0x7F),
        (ExitCode::VMRUN, 0x80),
        (ExitCode::VMMCALL, 0x81),
        (ExitCode::VMLOAD, 0x82),
        (ExitCode::VMSAVE, 0x83),
        (ExitCode::STGI, 0x84),
        (ExitCode::CLGI, 0x85),
        (ExitCode::SKINIT, 0x86),
        (ExitCode::RDTSCP, 0x87),
        (ExitCode::ICEBP, 0x88),
        (ExitCode::WBINVD, 0x89),
        (ExitCode::MONITOR, 0x8A),
        (ExitCode::MWAIT, 0x8B),
        (ExitCode::MWAIT_CONDITIONAL, 0x8C),
        (ExitCode::XSETBV, 0x8D),
        (ExitCode::NPF, 0x400),
        (ExitCode::INVALID, u64::MAX),
    ] {
        assert_eq!(code.0, value, "{code:?}");
    }
    assert_eq!(
        format!("{:?}", ExitCode::exception(13)),
        "ExitCode(0x4d exception 13)"
    );
    assert_eq!(
        format!("{:?}", ExitCode::cr_write(3)),
        "ExitCode(0x13 CR write 3)"
    );
    assert_eq!(
        format!("{:?}", ExitCode::cr_write_trap(8)),
        "ExitCode(0x98 CR write trap 8)"
    );
    assert_eq!(
        format!("{}", ExitCode::NPF),
        "ExitCode(0x400 nested page fault)"
    );
    assert_eq!(format!("{}", ExitCode(0x1234)), "ExitCode(0x1234 unknown)");
    // Usable as match patterns.
    let kind = match ExitCode(0x78) {
        ExitCode::CPUID => "cpuid",
        ExitCode::HLT => "hlt",
        _ => "other",
    };
    assert_eq!(kind, "hlt");
}

#[test]
fn event_injection_encoding() {
    // #GP(0): vector 13, type 3, EV, V.
    let gp = EventInfo::exception(13, Some(0));
    assert_eq!(gp.0, 0x8000_0B0D);
    assert_eq!(
        (gp.valid(), gp.vector(), gp.event_type(), gp.error_code()),
        (true, 13, Some(EventType::Exception), Some(0))
    );
    // #PF with error code 6 in bits 63:32.
    assert_eq!(EventInfo::exception(14, Some(6)).0, 0x0000_0006_8000_0B0E);
    // #UD: no error code.
    assert_eq!(EventInfo::exception(6, None).0, 0x8000_0306);
    assert_eq!(EventInfo::external(0x20).0, 0x8000_0020);
    assert_eq!(EventInfo::nmi().0, 0x8000_0202);
    assert_eq!(EventInfo::software_interrupt(0x80).0, 0x8000_0480);
    assert!(!EventInfo::NONE.valid());
    assert_eq!(
        EventInfo(0x8000_0100).event_type(),
        None,
        "type 1 is reserved"
    );
    assert_eq!(EventInfo::exception(6, None).error_code(), None);
    assert_eq!(
        format!("{:?}", EventInfo::exception(14, Some(6))),
        "EventInfo(Some(Exception) vector 14 error 0x6)"
    );
    assert!(exception_has_error_code(8) && exception_has_error_code(14));
    assert!(exception_has_error_code(17) && !exception_has_error_code(6));
    assert!(!exception_has_error_code(3) && !exception_has_error_code(18));
}

#[test]
fn virtual_interrupt_control() {
    let mut c = Box::new(Vmcb::zeroed()).control;
    c.set_v_intr_masking(true);
    c.set_v_tpr(0x1F);
    assert_eq!(c.v_tpr(), 0xF);
    c.request_virtual_interrupt(0x30, 3, true);
    assert_eq!(c.int_ctl, 0x30_0113_010F);
    assert!(c.v_irq() && c.v_intr_masking());
    assert_eq!(c.v_intr_vector(), 0x30);
    c.request_virtual_interrupt(0x41, 2, false);
    assert_eq!(c.int_ctl, 0x41_0102_010F);
    c.clear_virtual_interrupt();
    assert!(!c.v_irq());
    c.set_v_intr_masking(false);
    assert_eq!(c.int_ctl, 0x41_0002_000F);
}

#[test]
fn ioio_exit_info_decodes() {
    // `out dx, al` to 0x3F8: port 0x3F8, SZ8, A64 (the CPU sets an address size even for
    // non-string instructions).
    let info = IoioInfo::decode(0x03F8_0210);
    assert_eq!(
        info,
        IoioInfo {
            port: 0x3F8,
            input: false,
            string: false,
            rep: false,
            size: 1,
            address_bits: 64,
            segment: 0,
        }
    );
    // `in eax, 0xCFC`.
    let info = IoioInfo::decode(0x0CFC_0041);
    assert_eq!((info.port, info.input, info.size), (0xCFC, true, 4));
    // `rep insw` from port 0x1F0 with 32-bit addresses, segment ES.
    let info = IoioInfo::decode(0x01F0_012D);
    assert_eq!(
        (
            info.port,
            info.input,
            info.string,
            info.rep,
            info.size,
            info.address_bits
        ),
        (0x1F0, true, true, true, 2, 32)
    );
    // `rep outsb` with 16-bit addresses from DS (segment 3, reported with decode assists).
    let info = IoioInfo::decode(0x0080_0C9C);
    assert_eq!(
        (
            info.port,
            info.input,
            info.string,
            info.rep,
            info.size,
            info.address_bits
        ),
        (0x80, false, true, true, 1, 16)
    );
    assert_eq!(info.segment, 3);
    assert_eq!(IoioInfo::decode(0).size, 0);
}

#[test]
fn npf_exit_info_decodes() {
    // A write to a present, read-only page while translating the final address.
    let npf = NpfInfo::decode(0x1_0000_0007);
    assert!(npf.contains(NpfInfo::PRESENT | NpfInfo::WRITE | NpfInfo::USER));
    assert!(npf.contains(NpfInfo::FINAL_TRANSLATION));
    assert!(!npf.contains(NpfInfo::FETCH) && !npf.contains(NpfInfo::GUEST_PAGE_TABLE));
    // An instruction fetch from an unmapped page during the guest's page-table walk.
    let npf = NpfInfo::decode(0x2_0000_0014);
    assert!(npf.contains(NpfInfo::FETCH | NpfInfo::GUEST_PAGE_TABLE));
    assert!(!npf.contains(NpfInfo::PRESENT));
    // Unknown bits survive.
    assert_eq!(NpfInfo::decode(1 << 40).bits(), 1 << 40);
}

#[test]
fn msr_permission_map_positions() {
    assert_eq!(msrpm_position(0), Some((0, 0)));
    // IA32_APIC_BASE 0x1B: bits 54/55 of the first range.
    assert_eq!(msrpm_position(0x1B), Some((6, 6)));
    assert_eq!(msrpm_position(0x1FFF), Some((0x7FF, 6)));
    // EFER C000_0080 at 0x800 + 0x80 * 2 / 8.
    assert_eq!(msrpm_position(0xC000_0080), Some((0x820, 0)));
    // KernelGsBase C000_0102.
    assert_eq!(msrpm_position(0xC000_0102), Some((0x840, 4)));
    assert_eq!(msrpm_position(0xC001_0000), Some((0x1000, 0)));
    assert_eq!(msrpm_position(0xC001_1FFF), Some((0x17FF, 6)));
    assert_eq!(msrpm_position(0x2000), None);
    assert_eq!(msrpm_position(0x4000_0000), None);
    assert_eq!(msrpm_position(0xC000_2000), None);
    assert_eq!((MSRPM_SIZE, IOPM_SIZE), (2 * 4096, 3 * 4096));
}

#[test]
fn zeroed_vmcb_is_all_zero_and_debug_skips_reserved() {
    let v = Box::new(Vmcb::default());
    // SAFETY: as in `fields_write_the_right_bytes`.
    let bytes: &[u8; 4096] = unsafe { &*(&*v as *const Vmcb).cast::<[u8; 4096]>() };
    assert!(bytes.iter().all(|&b| b == 0));
    let dump = format!("{v:?}");
    assert!(dump.contains("exit_code: ExitCode(0x0 CR read 0)"));
    assert!(!dump.contains("_reserved"));
}
