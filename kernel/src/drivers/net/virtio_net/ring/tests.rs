// SPDX-License-Identifier: MIT OR Apache-2.0
//! Host unit tests of the virtqueue rings, against a simulated device.

use super::*;

/// 16-byte aligned, zeroed ring memory.
#[repr(C, align(4096))]
struct Memory([u8; 8192]);

/// The device side, reading and writing the same memory.
struct Device {
    ring: *mut u8,
    layout: Layout,
    next_avail: u16,
    used_idx: u16,
}

impl Device {
    fn r16(&self, off: usize) -> u16 {
        // SAFETY: test memory, inside the layout.
        unsafe { ptr::read_volatile(self.ring.add(off).cast::<u16>()) }
    }
    fn w16(&self, off: usize, v: u16) {
        // SAFETY: test memory, inside the layout.
        unsafe { ptr::write_volatile(self.ring.add(off).cast::<u16>(), v) }
    }
    fn w32(&self, off: usize, v: u32) {
        // SAFETY: test memory, inside the layout.
        unsafe { ptr::write_volatile(self.ring.add(off).cast::<u32>(), v) }
    }
    fn desc(&self, id: u16) -> (u64, u32, u16) {
        let d = usize::from(id) * 16;
        // SAFETY: test memory, inside the layout.
        unsafe {
            (
                ptr::read_volatile(self.ring.add(d).cast::<u64>()),
                ptr::read_volatile(self.ring.add(d + 8).cast::<u32>()),
                ptr::read_volatile(self.ring.add(d + 12).cast::<u16>()),
            )
        }
    }
    /// Takes the next available descriptor id, if the driver published one.
    fn take_avail(&mut self) -> Option<u16> {
        if self.r16(self.layout.avail + 2) == self.next_avail {
            return None;
        }
        let slot = usize::from(self.next_avail & (self.layout.size - 1));
        self.next_avail = self.next_avail.wrapping_add(1);
        Some(self.r16(self.layout.avail + 4 + 2 * slot))
    }
    /// Writes a used entry and publishes it.
    fn give_used(&mut self, id: u32, len: u32) {
        let slot = usize::from(self.used_idx & (self.layout.size - 1));
        self.w32(self.layout.used + 4 + 8 * slot, id);
        self.w32(self.layout.used + 8 + 8 * slot, len);
        self.used_idx = self.used_idx.wrapping_add(1);
        self.w16(self.layout.used + 2, self.used_idx);
    }
}

fn setup(mem: &mut Memory, size: u16) -> (SplitQueue, Device) {
    let layout = Layout::new(size).unwrap();
    assert!(layout.bytes <= mem.0.len());
    let ring = mem.0.as_mut_ptr();
    // SAFETY: zeroed, 4096-aligned memory of sufficient size, used only by this test.
    let q = unsafe { SplitQueue::new(ring, layout) };
    let d = Device {
        ring,
        layout,
        next_avail: 0,
        used_idx: 0,
    };
    (q, d)
}

#[test]
fn layout_matches_the_spec_table() {
    let l = Layout::new(256).unwrap();
    assert_eq!((l.avail, l.used, l.bytes), (4096, 4616, 4616 + 6 + 2048));
    let l = Layout::new(1).unwrap();
    assert_eq!((l.avail, l.used, l.bytes), (16, 24, 38));
    let l = Layout::new(2).unwrap();
    // avail 32..42, used aligned to 44
    assert_eq!((l.avail, l.used, l.bytes), (32, 44, 66));
    assert_eq!(Layout::new(0), None);
    assert_eq!(Layout::new(3), None);
    assert_eq!(Layout::new(512), None);
}

#[test]
fn size_is_the_largest_power_of_two_allowed() {
    assert_eq!(choose_size(0), None);
    assert_eq!(choose_size(1), Some(1));
    assert_eq!(choose_size(255), Some(128));
    assert_eq!(choose_size(256), Some(256));
    assert_eq!(choose_size(300), Some(256));
    assert_eq!(choose_size(u16::MAX), Some(256));
}

#[test]
fn posted_buffers_become_visible_on_publish() {
    let mut mem = Memory([0; 8192]);
    let (mut q, mut d) = setup(&mut mem, 8);
    assert_eq!(q.layout(), Layout::new(8).unwrap());
    let id = q.alloc().unwrap();
    assert_eq!(id, 0);
    assert!(q.post(id, 0x1234_5000, 1526, DESC_F_WRITE));
    assert_eq!(d.take_avail(), None, "not yet published");
    q.publish();
    assert_eq!(d.take_avail(), Some(0));
    assert_eq!(d.desc(0), (0x1234_5000, 1526, DESC_F_WRITE));
    assert_eq!(q.in_flight(), 1);
    assert!(!q.post(id, 0, 0, 0), "already in flight");
    assert!(!q.post(8, 0, 0, 0), "out of range");
}

#[test]
fn free_list_runs_out_and_refills() {
    let mut mem = Memory([0; 8192]);
    let (mut q, _d) = setup(&mut mem, 4);
    let ids: Vec<u16> = (0..4).map(|_| q.alloc().unwrap()).collect();
    assert_eq!(ids, [0, 1, 2, 3]);
    assert_eq!(q.alloc(), None);
    q.release(2);
    q.release(2);
    q.release(9);
    assert_eq!(q.free_count(), 2, "duplicates are not checked, ranges are");
    assert_eq!(q.alloc(), Some(2));
}

#[test]
fn indices_wrap_around_u16() {
    let mut mem = Memory([0; 8192]);
    let (mut q, mut d) = setup(&mut mem, 4);
    // 70000 round trips pass the 16-bit index wrap, two buffers in flight at a time.
    for n in 0..70_000u32 {
        for _ in 0..2 {
            let id = q.alloc().unwrap();
            assert!(q.post(id, u64::from(id) * 0x1000, 60, 0));
        }
        q.publish();
        while let Some(id) = d.take_avail() {
            d.give_used(u32::from(id), n);
        }
        for _ in 0..2 {
            let u = q.pop_used().unwrap().unwrap();
            assert_eq!(u.len, n);
            q.release(u.id);
        }
        assert_eq!(q.pop_used(), Ok(None));
        assert_eq!(q.free_count(), 4);
    }
}

/// Something a misbehaving device does to the rings.
type Misdeed = dyn Fn(&mut Device);

#[test]
fn device_errors_are_caught() {
    // Each case on a fresh queue with two buffers in flight: the driver gives up on a
    // device after its first error.
    let cases: [(&Misdeed, UsedError); 4] = [
        (&|d| d.give_used(4, 0), UsedError::BadId(4)),
        (&|d| d.give_used(u32::MAX, 0), UsedError::BadId(u32::MAX)),
        (&|d| d.give_used(3, 0), UsedError::NotInFlight(3)),
        (
            &|d| d.w16(d.layout.used + 2, 3),
            UsedError::Overrun {
                used_idx: 3,
                last_used: 0,
            },
        ),
    ];
    for (device_does, error) in cases {
        let mut mem = Memory([0; 8192]);
        let (mut q, mut d) = setup(&mut mem, 4);
        for _ in 0..2 {
            let id = q.alloc().unwrap();
            q.post(id, 0, 0, 0);
        }
        q.publish();
        device_does(&mut d);
        assert_eq!(q.pop_used(), Err(error));
    }
    // The same id returned twice.
    let mut mem = Memory([0; 8192]);
    let (mut q, mut d) = setup(&mut mem, 4);
    for _ in 0..2 {
        let id = q.alloc().unwrap();
        q.post(id, 0, 0, 0);
    }
    q.publish();
    d.give_used(0, 7);
    assert_eq!(q.pop_used(), Ok(Some(Used { id: 0, len: 7 })));
    d.give_used(0, 7);
    assert_eq!(q.pop_used(), Err(UsedError::NotInFlight(0)));
}

#[test]
fn notification_is_batched_and_suppressible() {
    let mut mem = Memory([0; 8192]);
    let (mut q, d) = setup(&mut mem, 4);
    assert!(!q.take_notify(), "nothing posted");
    for _ in 0..3 {
        let id = q.alloc().unwrap();
        q.post(id, 0, 0, 0);
    }
    q.publish();
    assert_eq!(q.unnotified(), 3);
    assert!(q.take_notify());
    assert!(!q.take_notify(), "already notified");
    let id = q.alloc().unwrap();
    q.post(id, 0, 0, 0);
    q.publish();
    d.w16(d.layout.used, USED_F_NO_NOTIFY);
    assert!(!q.take_notify(), "device suppressed notifications");
    assert_eq!(q.unnotified(), 0);
}

#[test]
fn avail_flags_are_written() {
    let mut mem = Memory([0; 8192]);
    let (mut q, d) = setup(&mut mem, 4);
    q.set_avail_flags(AVAIL_F_NO_INTERRUPT);
    assert_eq!(d.r16(d.layout.avail), AVAIL_F_NO_INTERRUPT);
}
