// SPDX-License-Identifier: MIT OR Apache-2.0
//! Enumeration against a simulated bus: BAR sizing, bridges, multifunction devices,
//! capability lists (including a looping one).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::vec::Vec;

use super::*;

/// A simulated function: 64 config registers, and per-BAR size masks (writes of all ones
/// read back as the mask, as hardware does).
#[derive(Clone)]
struct Function {
    regs: [u32; 64],
    bar_masks: [u32; 6],
}

impl Default for Function {
    fn default() -> Self {
        Self {
            regs: [0; 64],
            bar_masks: [0; 6],
        }
    }
}

#[derive(Default)]
struct FakeBus(RefCell<BTreeMap<(u8, u8, u8), Function>>);

impl FakeBus {
    fn add(&self, bus: u8, device: u8, function: u8, f: Function) {
        self.0.borrow_mut().insert((bus, device, function), f);
    }
}

impl ConfigSpace for FakeBus {
    fn read32(&self, at: Address, offset: u16) -> u32 {
        match self.0.borrow().get(&(at.bus, at.device, at.function)) {
            Some(f) => f.regs[usize::from(offset / 4)],
            None => u32::MAX,
        }
    }
    fn write32(&self, at: Address, offset: u16, value: u32) {
        if let Some(f) = self
            .0
            .borrow_mut()
            .get_mut(&(at.bus, at.device, at.function))
        {
            let i = usize::from(offset / 4);
            let bar = i.wrapping_sub(4);
            f.regs[i] = if bar < 6 && value == u32::MAX {
                f.bar_masks[bar] | (f.regs[i] & 0xF)
            } else {
                value
            };
        }
    }
}

fn function(vendor: u16, device: u16, class: u32, header: u8) -> Function {
    let mut f = Function::default();
    f.regs[0] = u32::from(vendor) | (u32::from(device) << 16);
    f.regs[2] = class << 8;
    f.regs[3] = u32::from(header) << 16;
    f.regs[15] = 0x0000_010B; // INTA#, line 11
    f
}

#[test]
fn sizes_memory_io_and_64_bit_bars() {
    let bus = FakeBus::default();
    let mut nic = function(0x8086, 0x100E, 0x02_00_00, 0);
    nic.regs[4] = 0xFEB8_0000; // 32-bit memory BAR, 128 KiB
    nic.bar_masks[0] = 0xFFFE_0000;
    nic.regs[5] = 0xC001; // I/O BAR, 64 ports
    nic.bar_masks[1] = 0xFFFF_FFC1;
    nic.regs[6] = 0x0000_000C; // 64-bit prefetchable, 16 KiB at 0x8_0000_0000
    nic.regs[7] = 0x8;
    nic.bar_masks[2] = 0xFFFF_C00C;
    nic.bar_masks[3] = 0xFFFF_FFFF;
    bus.add(0, 3, 0, nic);
    let devices = enumerate(&bus);
    assert_eq!(devices.len(), 1);
    let d = &devices[0];
    assert_eq!(
        (d.vendor, d.device, d.class, d.subclass),
        (0x8086, 0x100E, 2, 0)
    );
    assert_eq!((d.irq_line, d.irq_pin), (11, 1));
    assert_eq!(
        d.bars[0],
        Bar::Memory {
            base: 0xFEB8_0000,
            size: 0x2_0000,
            wide: false,
            prefetchable: false
        }
    );
    assert_eq!(
        d.bars[1],
        Bar::Io {
            port: 0xC000,
            size: 0x40
        }
    );
    assert_eq!(
        d.bars[2],
        Bar::Memory {
            base: 0x8_0000_0000,
            size: 0x4000,
            wide: true,
            prefetchable: true
        }
    );
    assert_eq!(
        d.bars[3],
        Bar::None,
        "the upper half of a 64-bit BAR is not a BAR"
    );
    // Sizing restored the BARs and the command register.
    assert_eq!(bus.read32(d.address, reg::BAR0), 0xFEB8_0000);
    assert_eq!(bus.read32(d.address, reg::BAR0 + 12), 0x8);
}

#[test]
fn follows_bridges_and_multifunction_devices_once() {
    let bus = FakeBus::default();
    bus.add(0, 0, 0, function(0x8086, 0x29C0, 0x06_00_00, 0));
    let mut multi = function(0x8086, 0x2918, 0x06_01_00, 0x80);
    multi.regs[3] |= 0; // multifunction bit set via header 0x80
    bus.add(0, 31, 0, multi);
    bus.add(0, 31, 3, function(0x8086, 0x2930, 0x0C_05_00, 0));
    let mut bridge = function(0x1B36, 0x0001, 0x06_04_00, 1);
    bridge.regs[6] = 0x0001_0100; // primary 0, secondary 1
    bus.add(0, 30, 0, bridge);
    let mut looping = function(0x1B36, 0x0001, 0x06_04_00, 1);
    looping.regs[6] = 0x0000_0001; // secondary bus 0: a loop back to the root
    bus.add(1, 1, 0, looping);
    bus.add(1, 0, 0, function(0x1AF4, 0x1041, 0x02_00_00, 0));
    let addrs: Vec<_> = enumerate(&bus)
        .iter()
        .map(|d| d.address.to_string())
        .collect();
    assert_eq!(
        addrs,
        [
            "00:00.0", "00:1e.0", "01:00.0", "01:01.0", "00:1f.0", "00:1f.3"
        ]
    );
}

#[test]
fn capability_lists_are_read_and_loops_bounded() {
    let bus = FakeBus::default();
    let mut f = function(0x1AF4, 0x1041, 0x02_00_00, 0);
    f.regs[1] = (u32::from(reg::STATUS_CAPABILITIES)) << 16;
    f.regs[13] = 0x40;
    f.regs[16] = 0x0000_5011; // MSI-X at 0x40 -> 0x50
    f.regs[20] = 0x0000_4009; // vendor at 0x50 -> 0x40: a loop
    bus.add(0, 4, 0, f);
    let d = &enumerate(&bus)[0];
    assert_eq!(
        d.capability(CAP_MSIX),
        Some(Capability {
            id: 0x11,
            offset: 0x40
        })
    );
    assert_eq!(
        d.capability(CAP_VENDOR),
        Some(Capability {
            id: 0x09,
            offset: 0x50
        })
    );
    assert_eq!(
        d.capabilities.len(),
        48,
        "a looping list stops at the most that fit"
    );
    assert_eq!(d.class_name(), "ethernet");
}
