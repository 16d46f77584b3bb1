// SPDX-License-Identifier: MIT OR Apache-2.0
//! Saved state of the virtio-mmio transport: every register a driver wrote or reads back,
//! each queue's configuration and position, and why the device broke, if it did. The device
//! ID and the offered features are the device model's constants, not state.

use super::status::{DEVICE_NEEDS_RESET, DRIVER_BITS, DRIVER_OK, FEATURES_OK};
use super::{INT_CONFIG, INT_USED, Queue, QueueError, Transport};
use crate::vmm::devices::state::{StateError, StateReader, StateWriter, ensure};

impl<const N: usize> Transport<N> {
    /// Appends the transport state: status u8, device and driver feature selectors u32,
    /// driver features u64, queue selector u32, interrupt status u8, configuration
    /// generation u32, the broken reason as an option of (tag u8, value u64), then per queue
    /// a notified flag and the queue (`Queue::save`).
    pub fn save(&self, w: &mut StateWriter) {
        w.u8(self.status);
        w.u32(self.device_features_sel);
        w.u32(self.driver_features_sel);
        w.u64(self.driver_features);
        w.u32(self.queue_sel);
        w.u8(self.isr);
        w.u32(self.config_generation);
        w.option(self.broken, |w, e| {
            let (tag, value) = e.encode();
            w.u8(tag);
            w.u64(value);
        });
        for (q, &n) in self.queues.iter().zip(&self.notified) {
            w.flag(n);
            q.save(w);
        }
    }

    /// A transport state [`save`](Self::save) wrote, for a device with `device_id` offering
    /// `offered`; refused unless the device could be in it.
    pub fn restore(
        r: &mut StateReader<'_>,
        device_id: u32,
        offered: u64,
    ) -> Result<Self, StateError> {
        let mut t = Self::new(device_id, offered);
        t.status = r.bits(DRIVER_BITS | DEVICE_NEEDS_RESET, "virtio status")?;
        t.device_features_sel = r.u32()?;
        t.driver_features_sel = r.u32()?;
        t.driver_features = r.u64()?;
        t.queue_sel = r.u32()?;
        t.isr = r.bits(INT_USED | INT_CONFIG, "virtio interrupt status")?;
        t.config_generation = r.u32()?;
        t.broken = r.option("virtio broken", |r| {
            let (tag, value) = (r.u8()?, r.u64()?);
            QueueError::decode(tag, value).ok_or(StateError::Invalid {
                field: "virtio broken reason",
                value: u64::from(tag) << 56 ^ value,
            })
        })?;
        for (q, n) in t.queues.iter_mut().zip(&mut t.notified) {
            *n = r.flag("virtio queue notified")?;
            *q = Queue::restore(r)?;
        }
        let s = t.status;
        let ordered = s & DRIVER_OK == 0 || s & FEATURES_OK != 0;
        let needs_reset = s & DEVICE_NEEDS_RESET != 0;
        ensure(
            ordered && needs_reset == t.broken.is_some(),
            "virtio status",
            u64::from(s),
        )?;
        if s & FEATURES_OK != 0 {
            let f = t.driver_features;
            ensure(t.acceptable(f), "virtio driver features", f)?;
        }
        Ok(t)
    }
}
