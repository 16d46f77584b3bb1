// SPDX-License-Identifier: MIT OR Apache-2.0
//! A VMCS region and typed access to the current VMCS.
//!
//! [`Vmcs::load`] runs VMPTRLD and returns a [`LoadedVmcs`], the only way to reach VMREAD and
//! VMWRITE: holding one proves this VMCS is current on this CPU. It borrows the [`Vmcs`]
//! mutably (no second load while in use) and is neither `Send` nor `Sync` (a VMCS is current on
//! one CPU only, SDM Vol. 3C, 26.11.1).

use core::marker::PhantomData;
use core::mem::ManuallyDrop;

use super::caps::VmxCaps;
use super::fields::{Field, Writable};
use crate::arch::x86_64::instr::vmx::{self as vmxi, VmFail};
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
        Some(Self {
            frame: ManuallyDrop::new(frame),
        })
    }

    /// Physical address of the region.
    pub fn phys(&self) -> u64 {
        self.frame.phys()
    }

    /// Makes this VMCS current on this CPU.
    pub fn load(&mut self) -> Result<LoadedVmcs<'_>, VmFail> {
        // SAFETY: the region is ours and initialized; VMX is on (the region could not have been
        // VMCLEARed otherwise).
        unsafe { vmxi::vmptrld(self.phys()) }?;
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
        let cleared = unsafe { vmxi::vmclear(self.phys()) };
        if cleared.is_ok() {
            // SAFETY: dropped once, here, and `self.frame` is not used afterwards.
            unsafe { ManuallyDrop::drop(&mut self.frame) };
        } else {
            log::error!("VMCLEAR of {:#x} failed; leaking the frame", self.phys());
        }
    }
}

/// Proof that a VMCS is current on this CPU; gives typed VMREAD/VMWRITE.
pub struct LoadedVmcs<'a> {
    _vmcs: PhantomData<&'a mut Vmcs>,
    _not_send: PhantomData<*const ()>,
}

impl LoadedVmcs<'_> {
    /// Reads a field.
    pub fn read<F: Field>(&self, field: F) -> Result<F::Value, VmFail> {
        // SAFETY: `self` proves a VMCS is current; unsupported fields fail with VMfailValid.
        unsafe { vmxi::vmread(field.encoding()) }.map(F::from_raw)
    }

    /// Writes a field; read-only fields do not implement [`Writable`].
    pub fn write<F: Writable>(&mut self, field: F, value: F::Value) -> Result<(), VmFail> {
        // SAFETY: `self` proves a VMCS is current. Host-state values are set by `vcpu` from the
        // running kernel's own state, so a VM exit returns to a consistent host.
        unsafe { vmxi::vmwrite(field.encoding(), F::to_raw(value)) }
    }
}
