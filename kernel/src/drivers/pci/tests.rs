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

/// MSI and MSI-X (msi.rs): message encoding, table layout, and hostile capabilities.
mod msi {
    use super::*;
    use crate::drivers::pci::msi::*;

    /// A fake MMIO space: dwords by address, all zero until written.
    #[derive(Default)]
    struct FakeMmio(RefCell<BTreeMap<u64, u32>>);

    impl Mmio for FakeMmio {
        fn read32(&self, addr: u64) -> u32 {
            assert_eq!(addr % 4, 0, "unaligned MMIO access at {addr:#x}");
            self.0.borrow().get(&addr).copied().unwrap_or(0)
        }
        fn write32(&self, addr: u64, value: u32) {
            assert_eq!(addr % 4, 0, "unaligned MMIO access at {addr:#x}");
            self.0.borrow_mut().insert(addr, value);
        }
    }

    const AT: Address = Address {
        bus: 0,
        device: 3,
        function: 0,
    };
    const TABLE_BAR: u64 = 0xFEBD_1000;

    /// A function with capability `id` at 0x40 whose registers hold `cap` (dwords from 0x40),
    /// BAR1 a 4 KiB memory BAR at `TABLE_BAR`, BAR2 an I/O BAR, BAR4 a BAR above 4 GiB.
    fn device(id: u8, cap: &[u32]) -> (FakeBus, Device) {
        device_at(id, 0x40, cap)
    }

    fn device_at(id: u8, offset: u8, cap: &[u32]) -> (FakeBus, Device) {
        let bus = FakeBus::default();
        let mut f = function(0x1AF4, 0x1041, 0x02_00_00, 0);
        for (i, v) in cap.iter().enumerate() {
            f.regs[usize::from(offset / 4) + i] = *v;
        }
        f.regs[usize::from(offset / 4)] =
            (f.regs[usize::from(offset / 4)] & !0xFFFF) | u32::from(id);
        bus.add(0, 3, 0, f);
        let mut bars = [Bar::None; 6];
        bars[1] = Bar::Memory {
            base: TABLE_BAR,
            size: 0x1000,
            wide: false,
            prefetchable: false,
        };
        bars[2] = Bar::Io {
            port: 0xC000,
            size: 0x20,
        };
        bars[4] = Bar::Memory {
            base: 0x8_0000_0000,
            size: 0x4000,
            wide: true,
            prefetchable: true,
        };
        let d = Device {
            address: AT,
            vendor: 0x1AF4,
            device: 0x1041,
            class: 2,
            subclass: 0,
            prog_if: 0,
            header_type: 0,
            irq_line: 11,
            irq_pin: 1,
            bars,
            capabilities: vec![Capability { id, offset }],
        };
        (bus, d)
    }

    #[test]
    fn messages_name_the_apic_and_vector() {
        // SDM Vol. 3A, 11.11.1/11.11.2: 0xFEE, destination id in bits 19..12, fixed, edge.
        assert_eq!(
            Message::fixed(0, 0x40),
            Message {
                address: 0xFEE0_0000,
                data: 0x40
            }
        );
        assert_eq!(
            Message::fixed(0xA5, 0xEF),
            Message {
                address: 0xFEEA_5000,
                data: 0xEF
            }
        );
    }

    #[test]
    fn msix_entries_are_address_upper_data_control() {
        let msg = Message {
            address: 0x1_FEE0_3000,
            data: 0x41,
        };
        assert_eq!(msix_entry_words(msg, false), [0xFEE0_3000, 1, 0x41, 0]);
        assert_eq!(msix_entry_words(msg, true)[3], MSIX_VECTOR_MASKED);
        assert_eq!(MSIX_ENTRY_SIZE, 16);
    }

    #[test]
    fn msix_is_programmed_masked_then_unmasked() {
        // Table size 4 (N-1 = 3), table at BAR1 + 0x800.
        let (bus, d) = device(CAP_MSIX, &[0x0003_0000, 0x800 | 1, 0x0C00 | 1]);
        let msix = Msix::find(&d, &bus).expect("valid MSI-X");
        assert_eq!(msix.entries(), 4);
        assert_eq!(msix.entry_address(3), Ok(TABLE_BAR + 0x800 + 48));
        assert_eq!(msix.entry_address(4), Err(MsiError::NoSuchEntry(4)));
        let mmio = FakeMmio::default();
        mmio.write32(TABLE_BAR + 0x800 + 12, 0xF0); // reserved control bits to keep
        msix.enable_masked(&d, &bus, &mmio);
        let control = bus.read16(AT, 0x42);
        assert_eq!(control & 0xC000, 0xC000, "enabled with the function masked");
        for i in 0..4u64 {
            assert_eq!(mmio.read32(TABLE_BAR + 0x800 + 16 * i + 12) & 1, 1);
        }
        assert_ne!(
            bus.read16(AT, reg::COMMAND) & reg::COMMAND_INTX_DISABLE,
            0,
            "INTx off"
        );
        msix.program(&mmio, 0, Message::fixed(2, 0x42)).unwrap();
        let e = TABLE_BAR + 0x800;
        assert_eq!(
            [
                mmio.read32(e),
                mmio.read32(e + 4),
                mmio.read32(e + 8),
                mmio.read32(e + 12)
            ],
            [0xFEE0_2000, 0, 0x42, 0xF0]
        );
        assert_eq!(mmio.read32(e + 16 + 12) & 1, 1, "other entries stay masked");
        assert_eq!(
            msix.program(&mmio, 9, Message::fixed(0, 0x40)),
            Err(MsiError::NoSuchEntry(9))
        );
        msix.unmask_function(&d, &bus);
        assert_eq!(
            bus.read16(AT, 0x42) & 0xC000,
            0x8000,
            "enabled, function unmasked"
        );
    }

    #[test]
    fn hostile_msix_capabilities_are_refused() {
        let find = |cap: &[u32]| {
            let (bus, d) = device(CAP_MSIX, cap);
            Msix::find(&d, &bus)
        };
        assert_eq!(find(&[0, 7, 0]), Err(MsiError::BadBir(7)));
        assert_eq!(find(&[0, 6, 0]), Err(MsiError::BadBir(6)));
        assert_eq!(
            find(&[0, 0, 0]),
            Err(MsiError::UnusableBar(0)),
            "BAR0 absent"
        );
        assert_eq!(find(&[0, 2, 0]), Err(MsiError::UnusableBar(2)), "I/O BAR");
        assert_eq!(
            find(&[0, 4, 0]),
            Err(MsiError::UnusableBar(4)),
            "above 4 GiB"
        );
        assert_eq!(
            find(&[0, 5, 0]),
            Err(MsiError::UnusableBar(5)),
            "upper half of a 64-bit BAR"
        );
        // 2048 entries × 16 bytes = 32 KiB in a 4 KiB BAR.
        assert_eq!(find(&[0x07FF_0000, 1, 0]), Err(MsiError::TableOutsideBar));
        // The last entry one dword past the end; an offset that would wrap.
        assert_eq!(
            find(&[0x0001_0000, 0xFF8 | 1, 0]),
            Err(MsiError::TableOutsideBar)
        );
        assert_eq!(
            find(&[0, 0xFFFF_FFF8 | 1, 0]),
            Err(MsiError::TableOutsideBar)
        );
        // Exactly fitting is fine.
        assert!(find(&[0x0001_0000, 0xFE0 | 1, 0]).is_ok());
        // A capability whose registers run off the end of configuration space.
        let (bus, d) = device_at(CAP_MSIX, 0xF8, &[0, 1]);
        assert_eq!(Msix::find(&d, &bus), Err(MsiError::BadCapability));
        let (bus, mut d) = device(CAP_MSIX, &[0, 1, 0]);
        d.capabilities.clear();
        assert_eq!(Msix::find(&d, &bus), Err(MsiError::Absent));
    }

    #[test]
    fn msi_layouts_follow_the_control_register() {
        let plain = MsiLayout::new(0);
        assert_eq!(
            plain,
            MsiLayout {
                upper_address: None,
                data: 0x08,
                mask: None,
                len: 0x0A
            }
        );
        let wide_masked = MsiLayout::new((1 << 7) | (1 << 8));
        assert_eq!(
            wide_masked,
            MsiLayout {
                upper_address: Some(0x08),
                data: 0x0C,
                mask: Some(0x10),
                len: 0x18
            }
        );
        let masked = MsiLayout::new(1 << 8);
        assert_eq!(
            (masked.data, masked.mask, masked.len),
            (0x08, Some(0x0C), 0x14)
        );
    }

    #[test]
    fn msi_is_programmed_for_one_message() {
        // 64-bit, per-vector masking, 4 messages capable, MME and vector 0 mask left set.
        let control = (1u32 << 7) | (1 << 8) | (0b010 << 1) | (0b010 << 4);
        let (bus, d) = device(CAP_MSI, &[control << 16, 0, 0, 0, 0b1111]);
        let msi = Msi::find(&d, &bus).unwrap();
        msi.enable(&d, &bus, Message::fixed(1, 0x43));
        assert_eq!(bus.read32(AT, 0x44), 0xFEE0_1000);
        assert_eq!(bus.read32(AT, 0x48), 0);
        assert_eq!(bus.read16(AT, 0x4C), 0x43);
        assert_eq!(
            bus.read32(AT, 0x50),
            0b1110,
            "vector 0 unmasked, others kept"
        );
        let c = bus.read16(AT, 0x42);
        assert_eq!(c & 1, 1, "enabled");
        assert_eq!(c & (0b111 << 4), 0, "one message");
        // 32-bit, no masking: data right after the address.
        let (bus, d) = device(CAP_MSI, &[0, 0, 0]);
        Msi::find(&d, &bus)
            .unwrap()
            .enable(&d, &bus, Message::fixed(0, 0x44));
        assert_eq!(
            (bus.read32(AT, 0x44), bus.read16(AT, 0x48)),
            (0xFEE0_0000, 0x44)
        );
        // 64-bit with masking does not fit at 0xF0.
        let (bus, d) = device_at(CAP_MSI, 0xF0, &[((1 << 7) | (1 << 8)) << 16]);
        assert_eq!(Msi::find(&d, &bus), Err(MsiError::BadCapability));
    }
}
