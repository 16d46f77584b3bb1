// SPDX-License-Identifier: MIT OR Apache-2.0
//! VMCS field encodings (Intel SDM Vol. 3D, appendix B), grouped by width and access type.
//!
//! Each group is its own type, so the compiler knows a field's width and whether it may be
//! written: the read-only groups ([`ReadOnly32`], [`ReadOnly64`], [`ReadOnlyN`] — VM-exit
//! information) do not implement [`Writable`], so `vmcs.write(ReadOnly32::ExitReason, 0)` does
//! not compile. The encoding layout is in SDM Vol. 3C, 26.11.2 "VMREAD, VMWRITE, and Encodings
//! of VMCS Fields": bit 0 access type (full/high), bits 9:1 index, bits 11:10 type (control,
//! read-only data, guest state, host state), bits 14:13 width (16-bit, 64-bit, 32-bit, natural).

/// A VMCS field: its encoding and the Rust type of its value.
pub trait Field: Copy {
    /// Value type (`u16`, `u32` or `u64`).
    type Value: Copy;
    /// The field's encoding.
    fn encoding(self) -> u32;
    /// Converts what VMREAD returned.
    fn from_raw(raw: u64) -> Self::Value;
    /// Converts a value for VMWRITE.
    fn to_raw(value: Self::Value) -> u64;
}

/// Fields that software may write (control, guest-state and host-state fields).
pub trait Writable: Field {}

macro_rules! fields {
    ($(#[$doc:meta])* $name:ident: $ty:ty, writable = $w:tt { $($(#[$fdoc:meta])* $field:ident = $enc:expr,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(u32)]
        pub enum $name {
            $($(#[$fdoc])* $field = $enc,)*
        }

        impl Field for $name {
            type Value = $ty;
            fn encoding(self) -> u32 {
                self as u32
            }
            fn from_raw(raw: u64) -> $ty {
                raw as $ty
            }
            fn to_raw(value: $ty) -> u64 {
                value as u64
            }
        }

        fields!(@writable $w $name);
    };
    (@writable true $name:ident) => { impl Writable for $name {} };
    (@writable false $name:ident) => {};
}

fields! {
    /// 16-bit control fields (SDM Vol. 3D, B.1.1).
    Control16: u16, writable = true {
        /// Virtual-processor identifier.
        Vpid = 0x0000,
    }
}

fields! {
    /// 16-bit guest-state fields (SDM Vol. 3D, B.1.2).
    Guest16: u16, writable = true {
        /// ES selector.
        EsSelector = 0x0800,
        /// CS selector.
        CsSelector = 0x0802,
        /// SS selector.
        SsSelector = 0x0804,
        /// DS selector.
        DsSelector = 0x0806,
        /// FS selector.
        FsSelector = 0x0808,
        /// GS selector.
        GsSelector = 0x080A,
        /// LDTR selector.
        LdtrSelector = 0x080C,
        /// TR selector.
        TrSelector = 0x080E,
        /// PML index.
        PmlIndex = 0x0812,
    }
}

fields! {
    /// 16-bit host-state fields (SDM Vol. 3D, B.1.3).
    Host16: u16, writable = true {
        /// ES selector.
        EsSelector = 0x0C00,
        /// CS selector.
        CsSelector = 0x0C02,
        /// SS selector.
        SsSelector = 0x0C04,
        /// DS selector.
        DsSelector = 0x0C06,
        /// FS selector.
        FsSelector = 0x0C08,
        /// GS selector.
        GsSelector = 0x0C0A,
        /// TR selector.
        TrSelector = 0x0C0C,
    }
}

fields! {
    /// 64-bit control fields (SDM Vol. 3D, B.2.1).
    Control64: u64, writable = true {
        /// Address of I/O bitmap A (ports 0x0000-0x7FFF).
        IoBitmapA = 0x2000,
        /// Address of I/O bitmap B (ports 0x8000-0xFFFF).
        IoBitmapB = 0x2002,
        /// Address of the MSR bitmaps.
        MsrBitmaps = 0x2004,
        /// VM-exit MSR-store address.
        ExitMsrStore = 0x2006,
        /// VM-exit MSR-load address.
        ExitMsrLoad = 0x2008,
        /// VM-entry MSR-load address.
        EntryMsrLoad = 0x200A,
        /// PML address.
        PmlAddress = 0x200E,
        /// TSC offset.
        TscOffset = 0x2010,
        /// EPT pointer.
        Eptp = 0x201A,
    }
}

fields! {
    /// 64-bit read-only data fields (SDM Vol. 3D, B.2.2).
    ReadOnly64: u64, writable = false {
        /// Guest-physical address of an EPT violation or misconfiguration.
        GuestPhysicalAddress = 0x2400,
    }
}

fields! {
    /// 64-bit guest-state fields (SDM Vol. 3D, B.2.3).
    Guest64: u64, writable = true {
        /// VMCS link pointer (all ones when unused).
        VmcsLinkPointer = 0x2800,
        /// IA32_DEBUGCTL.
        DebugCtl = 0x2802,
        /// IA32_PAT.
        Pat = 0x2804,
        /// IA32_EFER.
        Efer = 0x2806,
        /// PDPTE0 (PAE paging without EPT reloading).
        Pdpte0 = 0x280A,
        /// PDPTE1.
        Pdpte1 = 0x280C,
        /// PDPTE2.
        Pdpte2 = 0x280E,
        /// PDPTE3.
        Pdpte3 = 0x2810,
    }
}

fields! {
    /// 64-bit host-state fields (SDM Vol. 3D, B.2.4).
    Host64: u64, writable = true {
        /// IA32_PAT.
        Pat = 0x2C00,
        /// IA32_EFER.
        Efer = 0x2C02,
    }
}

fields! {
    /// 32-bit control fields (SDM Vol. 3D, B.3.1).
    Control32: u32, writable = true {
        /// Pin-based VM-execution controls.
        PinBased = 0x4000,
        /// Primary processor-based VM-execution controls.
        ProcBased = 0x4002,
        /// Exception bitmap.
        ExceptionBitmap = 0x4004,
        /// Page-fault error-code mask.
        PfErrorMask = 0x4006,
        /// Page-fault error-code match.
        PfErrorMatch = 0x4008,
        /// CR3-target count.
        Cr3TargetCount = 0x400A,
        /// VM-exit controls.
        ExitControls = 0x400C,
        /// VM-exit MSR-store count.
        ExitMsrStoreCount = 0x400E,
        /// VM-exit MSR-load count.
        ExitMsrLoadCount = 0x4010,
        /// VM-entry controls.
        EntryControls = 0x4012,
        /// VM-entry MSR-load count.
        EntryMsrLoadCount = 0x4014,
        /// VM-entry interruption-information field.
        EntryInterruptionInfo = 0x4016,
        /// VM-entry exception error code.
        EntryExceptionErrorCode = 0x4018,
        /// VM-entry instruction length.
        EntryInstructionLength = 0x401A,
        /// TPR threshold.
        TprThreshold = 0x401C,
        /// Secondary processor-based VM-execution controls.
        ProcBased2 = 0x401E,
    }
}

fields! {
    /// 32-bit read-only data fields (SDM Vol. 3D, B.3.2).
    ReadOnly32: u32, writable = false {
        /// VM-instruction error.
        VmInstructionError = 0x4400,
        /// Exit reason.
        ExitReason = 0x4402,
        /// VM-exit interruption information.
        ExitInterruptionInfo = 0x4404,
        /// VM-exit interruption error code.
        ExitInterruptionErrorCode = 0x4406,
        /// IDT-vectoring information.
        IdtVectoringInfo = 0x4408,
        /// IDT-vectoring error code.
        IdtVectoringErrorCode = 0x440A,
        /// VM-exit instruction length.
        ExitInstructionLength = 0x440C,
        /// VM-exit instruction information.
        ExitInstructionInfo = 0x440E,
    }
}

fields! {
    /// 32-bit guest-state fields (SDM Vol. 3D, B.3.3).
    Guest32: u32, writable = true {
        /// ES limit.
        EsLimit = 0x4800,
        /// CS limit.
        CsLimit = 0x4802,
        /// SS limit.
        SsLimit = 0x4804,
        /// DS limit.
        DsLimit = 0x4806,
        /// FS limit.
        FsLimit = 0x4808,
        /// GS limit.
        GsLimit = 0x480A,
        /// LDTR limit.
        LdtrLimit = 0x480C,
        /// TR limit.
        TrLimit = 0x480E,
        /// GDTR limit.
        GdtrLimit = 0x4810,
        /// IDTR limit.
        IdtrLimit = 0x4812,
        /// ES access rights.
        EsAccessRights = 0x4814,
        /// CS access rights.
        CsAccessRights = 0x4816,
        /// SS access rights.
        SsAccessRights = 0x4818,
        /// DS access rights.
        DsAccessRights = 0x481A,
        /// FS access rights.
        FsAccessRights = 0x481C,
        /// GS access rights.
        GsAccessRights = 0x481E,
        /// LDTR access rights.
        LdtrAccessRights = 0x4820,
        /// TR access rights.
        TrAccessRights = 0x4822,
        /// Interruptibility state.
        InterruptibilityState = 0x4824,
        /// Activity state.
        ActivityState = 0x4826,
        /// IA32_SYSENTER_CS.
        SysenterCs = 0x482A,
        /// VMX-preemption timer value.
        PreemptionTimerValue = 0x482E,
    }
}

fields! {
    /// 32-bit host-state fields (SDM Vol. 3D, B.3.4).
    Host32: u32, writable = true {
        /// IA32_SYSENTER_CS.
        SysenterCs = 0x4C00,
    }
}

fields! {
    /// Natural-width control fields (SDM Vol. 3D, B.4.1).
    ControlN: u64, writable = true {
        /// CR0 guest/host mask.
        Cr0Mask = 0x6000,
        /// CR4 guest/host mask.
        Cr4Mask = 0x6002,
        /// CR0 read shadow.
        Cr0ReadShadow = 0x6004,
        /// CR4 read shadow.
        Cr4ReadShadow = 0x6006,
    }
}

fields! {
    /// Natural-width read-only data fields (SDM Vol. 3D, B.4.2).
    ReadOnlyN: u64, writable = false {
        /// Exit qualification.
        ExitQualification = 0x6400,
        /// Guest-linear address.
        GuestLinearAddress = 0x640A,
    }
}

fields! {
    /// Natural-width guest-state fields (SDM Vol. 3D, B.4.3).
    GuestN: u64, writable = true {
        /// CR0.
        Cr0 = 0x6800,
        /// CR3.
        Cr3 = 0x6802,
        /// CR4.
        Cr4 = 0x6804,
        /// ES base.
        EsBase = 0x6806,
        /// CS base.
        CsBase = 0x6808,
        /// SS base.
        SsBase = 0x680A,
        /// DS base.
        DsBase = 0x680C,
        /// FS base.
        FsBase = 0x680E,
        /// GS base.
        GsBase = 0x6810,
        /// LDTR base.
        LdtrBase = 0x6812,
        /// TR base.
        TrBase = 0x6814,
        /// GDTR base.
        GdtrBase = 0x6816,
        /// IDTR base.
        IdtrBase = 0x6818,
        /// DR7.
        Dr7 = 0x681A,
        /// RSP.
        Rsp = 0x681C,
        /// RIP.
        Rip = 0x681E,
        /// RFLAGS.
        Rflags = 0x6820,
        /// Pending debug exceptions.
        PendingDebugExceptions = 0x6822,
        /// IA32_SYSENTER_ESP.
        SysenterEsp = 0x6824,
        /// IA32_SYSENTER_EIP.
        SysenterEip = 0x6826,
    }
}

fields! {
    /// Natural-width host-state fields (SDM Vol. 3D, B.4.4).
    HostN: u64, writable = true {
        /// CR0.
        Cr0 = 0x6C00,
        /// CR3.
        Cr3 = 0x6C02,
        /// CR4.
        Cr4 = 0x6C04,
        /// FS base.
        FsBase = 0x6C06,
        /// GS base.
        GsBase = 0x6C08,
        /// TR base.
        TrBase = 0x6C0A,
        /// GDTR base.
        GdtrBase = 0x6C0C,
        /// IDTR base.
        IdtrBase = 0x6C0E,
        /// IA32_SYSENTER_ESP.
        SysenterEsp = 0x6C10,
        /// IA32_SYSENTER_EIP.
        SysenterEip = 0x6C12,
        /// RSP.
        Rsp = 0x6C14,
        /// RIP.
        Rip = 0x6C16,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Width (bits 14:13) and type (bits 11:10) of an encoding.
    fn width_and_type(enc: u32) -> (u32, u32) {
        ((enc >> 13) & 3, (enc >> 10) & 3)
    }

    #[test]
    fn encodings_agree_with_their_group() {
        // Width: 0 = 16-bit, 1 = 64-bit, 2 = 32-bit, 3 = natural. Type: 0 = control,
        // 1 = read-only data, 2 = guest state, 3 = host state.
        assert_eq!(width_and_type(Control16::Vpid.encoding()), (0, 0));
        assert_eq!(width_and_type(Guest16::TrSelector.encoding()), (0, 2));
        assert_eq!(width_and_type(Host16::TrSelector.encoding()), (0, 3));
        assert_eq!(width_and_type(Control64::Eptp.encoding()), (1, 0));
        assert_eq!(
            width_and_type(ReadOnly64::GuestPhysicalAddress.encoding()),
            (1, 1)
        );
        assert_eq!(width_and_type(Guest64::Efer.encoding()), (1, 2));
        assert_eq!(width_and_type(Host64::Efer.encoding()), (1, 3));
        assert_eq!(width_and_type(Control32::ProcBased2.encoding()), (2, 0));
        assert_eq!(width_and_type(ReadOnly32::ExitReason.encoding()), (2, 1));
        assert_eq!(width_and_type(Guest32::ActivityState.encoding()), (2, 2));
        assert_eq!(width_and_type(Host32::SysenterCs.encoding()), (2, 3));
        assert_eq!(width_and_type(ControlN::Cr4ReadShadow.encoding()), (3, 0));
        assert_eq!(
            width_and_type(ReadOnlyN::ExitQualification.encoding()),
            (3, 1)
        );
        assert_eq!(width_and_type(GuestN::Rip.encoding()), (3, 2));
        assert_eq!(width_and_type(HostN::Rip.encoding()), (3, 3));
    }

    #[test]
    fn values_keep_their_width() {
        assert_eq!(Guest16::from_raw(0x1_0008), 0x0008u16);
        assert_eq!(ReadOnly32::from_raw(0xffff_ffff_0000_0030), 0x30u32);
        assert_eq!(GuestN::to_raw(u64::MAX), u64::MAX);
    }
}
