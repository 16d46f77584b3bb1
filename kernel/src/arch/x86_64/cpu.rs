// SPDX-License-Identifier: MIT OR Apache-2.0
//! What this CPU is and offers, from CPUID (via `raw-cpuid`).

use raw_cpuid::CpuId;

/// Features Castor cares about.
#[derive(Debug, Clone, Copy)]
pub struct CpuFeatures {
    /// Vendor string, e.g. "GenuineIntel".
    pub vendor: [u8; 12],
    /// Execute-disable page protection (required).
    pub nx: bool,
    /// On-chip local APIC (required).
    pub apic: bool,
    /// Time-stamp counter (required).
    pub tsc: bool,
    /// Invariant TSC.
    pub invariant_tsc: bool,
    /// x2APIC mode available.
    pub x2apic: bool,
    /// 1 GiB pages.
    pub huge_pages: bool,
    /// Intel VT-x.
    pub vmx: bool,
    /// AMD-V.
    pub svm: bool,
    /// Running under another hypervisor.
    pub hypervisor: bool,
    /// SSSE3, AES-NI and PCLMULQDQ: what the link's AES-256-GCM runs on.
    pub aes_gcm: bool,
}

impl CpuFeatures {
    /// Reads CPUID on this CPU.
    pub fn detect() -> Self {
        let id = CpuId::new();
        let f = id.get_feature_info();
        let ext = id.get_extended_processor_and_feature_identifiers();
        let mut vendor = [0u8; 12];
        if let Some(v) = id.get_vendor_info() {
            let s = v.as_str().as_bytes();
            let n = s.len().min(12);
            vendor[..n].copy_from_slice(&s[..n]);
        }
        Self {
            vendor,
            nx: ext.as_ref().is_some_and(|e| e.has_execute_disable()),
            apic: f.as_ref().is_some_and(|f| f.has_apic()),
            tsc: f.as_ref().is_some_and(|f| f.has_tsc()),
            invariant_tsc: id
                .get_advanced_power_mgmt_info()
                .is_some_and(|p| p.has_invariant_tsc()),
            x2apic: f.as_ref().is_some_and(|f| f.has_x2apic()),
            huge_pages: ext.as_ref().is_some_and(|e| e.has_1gib_pages()),
            vmx: f.as_ref().is_some_and(|f| f.has_vmx()),
            svm: ext.as_ref().is_some_and(|e| e.has_svm()),
            hypervisor: f.as_ref().is_some_and(|f| f.has_hypervisor()),
            aes_gcm: f
                .as_ref()
                .is_some_and(|f| f.has_ssse3() && f.has_aesni() && f.has_pclmulqdq()),
        }
    }

    /// Vendor as text.
    pub fn vendor(&self) -> &str {
        core::str::from_utf8(&self.vendor).unwrap_or("unknown")
    }

    /// The first required feature that is missing, if any.
    pub fn missing_requirement(&self) -> Option<&'static str> {
        [
            (self.nx, "NX (execute-disable)"),
            (self.apic, "local APIC"),
            (self.tsc, "TSC"),
        ]
        .into_iter()
        .find(|(has, _)| !has)
        .map(|(_, name)| name)
    }
}
