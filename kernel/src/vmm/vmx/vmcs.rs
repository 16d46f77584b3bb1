// SPDX-License-Identifier: MIT OR Apache-2.0
//! A VMCS region and typed access to the current VMCS.
//!
//! [`Vmcs::load`] makes the VMCS current and returns a [`LoadedVmcs`], the only way to reach
//! VMREAD and VMWRITE: holding one proves this VMCS is current on this CPU. The per-CPU
//! `current_vmcs` mirrors the CPU's current-VMCS pointer, so loading the VMCS that is current
//! already (every VM entry of a vCPU that does not migrate) skips the VMPTRLD. Only VMPTRLD sets
//! that pointer; VMXON and a VMCLEAR of the current VMCS make it invalid (the "Operation"
//! sections of VMPTRLD, VMCLEAR and VMXON, SDM Vol. 3C, chapter 31); all three go through here
//! and [`forget_current`]. It borrows the [`Vmcs`]
//! mutably (no second load while in use) and is neither `Send` nor `Sync` (a VMCS is current on
//! one CPU only, SDM Vol. 3C, 26.11.1).

use core::marker::PhantomData;
use core::mem::ManuallyDrop;

use super::caps::VmxCaps;
use super::fields::{Field, Writable};
use core::sync::atomic::Ordering;

use crate::arch::x86_64::instr::vmx::{self as vmxi, VmFail};
use crate::arch::x86_64::percpu;
use crate::mm::OwnedFrames;

/// A 4 KiB VMCS region owned by one vCPU.
pub struct Vmcs {
    /// Freed only after a successful VMCLEAR (see `Drop`), hence `ManuallyDrop`.
    frame: ManuallyDrop<OwnedFrames>,
}

impl Vmcs {
    /// Allocates a region, stamps the revision id and VMCLEARs it (SDM Vol. 3C, 26.11.3: a
    /// VMCS must be clear before its first VMLAUNCH).
    pub fn new(caps: &VmxCaps) -> Option<Self> {
        let frame = OwnedFrames::zeroed(1)?;
        // SAFETY: a fresh zeroed frame, identity mapped, owned by this VMCS from now on; the
        // revision id is its first 32 bits (SDM Vol. 3C, 26.2).
        unsafe { frame.ptr(0).cast::<u32>().write_volatile(caps.revision) };
        // SAFETY: the region holds the right revision id and belongs to this value.
        unsafe { vmxi::vmclear(frame.phys()) }.ok()?;
        cleared(frame.phys());
        Some(Self {
            frame: ManuallyDrop::new(frame),
        })
    }

    /// Physical address of the region.
    pub fn phys(&self) -> u64 {
        self.frame.phys()
    }

    /// Makes this VMCS current on this CPU.
    #[inline]
    pub fn load(&mut self) -> Result<LoadedVmcs<'_>, VmFail> {
        let current = &percpu::current().current_vmcs;
        if current.load(Ordering::Relaxed) != self.phys() {
            // SAFETY: the region is ours and initialized; VMX is on (the region could not have
            // been VMCLEARed otherwise).
            unsafe { vmxi::vmptrld(self.phys()) }?;
            current.store(self.phys(), Ordering::Relaxed);
        }
        Ok(LoadedVmcs {
            _vmcs: PhantomData,
            _not_send: PhantomData,
        })
    }
}

impl Drop for Vmcs {
    fn drop(&mut self) {
        // SAFETY: VMCLEAR makes the region inactive so the CPU holds no cached state pointing at
        // the frame once it is freed.
        let done = unsafe { vmxi::vmclear(self.phys()) };
        if done.is_ok() {
            cleared(self.phys());
            // SAFETY: dropped once, here, and `self.frame` is not used afterwards.
            unsafe { ManuallyDrop::drop(&mut self.frame) };
        } else {
            log::error!("VMCLEAR of {:#x} failed; leaking the frame", self.phys());
        }
    }
}

/// After a VMCLEAR of `phys`: if it was current on this CPU, no VMCS is now.
fn cleared(phys: u64) {
    let _ = percpu::current().current_vmcs.compare_exchange(
        phys,
        0,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
}

/// After VMXON on this CPU: no VMCS is current (VMXON sets the current-VMCS pointer invalid).
pub fn forget_current() {
    percpu::current().current_vmcs.store(0, Ordering::Relaxed);
}

/// Proof that a VMCS is current on this CPU; gives typed VMREAD/VMWRITE.
pub struct LoadedVmcs<'a> {
    _vmcs: PhantomData<&'a mut Vmcs>,
    _not_send: PhantomData<*const ()>,
}

impl LoadedVmcs<'_> {
    /// Reads a field.
    #[inline(always)]
    pub fn read<F: Field>(&self, field: F) -> Result<F::Value, VmFail> {
        // SAFETY: `self` proves a VMCS is current; unsupported fields fail with VMfailValid.
        unsafe { vmxi::vmread(field.encoding()) }.map(F::from_raw)
    }

    /// Writes a field; read-only fields do not implement [`Writable`].
    #[inline(always)]
    pub fn write<F: Writable>(&mut self, field: F, value: F::Value) -> Result<(), VmFail> {
        // SAFETY: `self` proves a VMCS is current. Host-state values are set by `vcpu` from the
        // running kernel's own state, so a VM exit returns to a consistent host.
        unsafe { vmxi::vmwrite(field.encoding(), F::to_raw(value)) }
    }
}
