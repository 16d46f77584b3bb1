// SPDX-License-Identifier: MIT OR Apache-2.0
//! Whole-guest device state: round trips, exactly-once timer ticks across failovers between
//! hosts with different TSCs, and refusal of truncated, random, forged and mismatched states.

use alloc::boxed::Box;
use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;
use core::ops::RangeInclusive;

use super::*;
use crate::testutil::Rng;
use crate::vmm::devices::clock::GuestClock;
use crate::vmm::devices::debug_exit::DebugExit;
use crate::vmm::devices::lapic::{LapicConfig, regs};
use crate::vmm::devices::serial::{COM1, Serial};
use crate::vmm::devices::{Effect, PortDevice};
use crate::vmm::vcpu::Width;

const RAM: u64 = 64 << 20;
/// Unix time of guest time 0 in these tests.
const UNIX_BASE: u64 = 1_795_306_477;
/// PIT count for 1000 Hz.
const HZ_1000: u16 = 1193;

/// PIT clocks up to guest time `ns` (the 8254's 105/88 MHz input).
fn pit_clock(ns: u64) -> u64 {
    (u128::from(ns) * 21 / 17_600) as u64
}

/// A chipset as Linux sets it up: PIC bases 0x20/0x28 with nothing masked, the PIT at 1000 Hz
/// from guest time 0, RTC update interrupts on.
fn linux_chipset() -> ChipsetState {
    let mut interrupts = Interrupts::new(LapicConfig {
        apic_id: 0,
        timer_hz: 25_000_000,
        tsc_hz: 2_000_000_000,
    });
    for (port, v) in [
        (0x20, 0x11),
        (0x21, 0x20),
        (0x21, 0x04),
        (0x21, 0x01),
        (0xA0, 0x11),
        (0xA1, 0x28),
        (0xA1, 0x02),
        (0xA1, 0x01),
        (0x21, 0x00),
        (0xA1, 0x00),
    ] {
        interrupts.pic.io_write(port, 1, v);
    }
    let mut pit = Pit::new();
    pit.io_write(0x43, 1, 0x34);
    pit.io_write(0x40, 1, u32::from(HZ_1000 & 0xFF));
    pit.io_write(0x40, 1, u32::from(HZ_1000 >> 8));
    let mut rtc = Rtc::new(RAM, 0);
    rtc.io_write(0x70, 1, 0x0B);
    rtc.io_write(0x71, 1, 0x12); // 24-hour BCD, update-ended interrupt
    ChipsetState {
        interrupts,
        pit,
        rtc,
        pm: Pm::new(),
        ram: RAM,
        guest_ns: 0,
    }
}

/// What the monitor does at guest time `now` (chipset.rs `Chipset::update`).
fn update(c: &mut ChipsetState, now: u64) {
    c.pit.advance(now);
    c.rtc.set_time(UNIX_BASE + now / 1_000_000_000);
    c.rtc.deliver(&mut c.interrupts.pic);
    c.pit.deliver(&mut c.interrupts.pic);
    c.guest_ns = now;
}

/// The guest's handlers return: non-specific EOIs until nothing is in service.
fn end_of_interrupts(c: &mut ChipsetState) {
    for _ in 0..16 {
        if c.interrupts.pic.isr() & 0xFF00 != 0 {
            c.interrupts.pic.io_write(0xA0, 1, 0x20);
        }
        if c.interrupts.pic.isr() & 0xFF != 0 {
            c.interrupts.pic.io_write(0x20, 1, 0x20);
        }
    }
}

/// A guest taking up to `budget` interrupts, the last one still in its handler at the next
/// exit if `hold`. Returns the vectors it took.
fn guest_handles(c: &mut ChipsetState, budget: u64, hold: bool) -> Vec<u8> {
    let mut taken = Vec::new();
    for n in 0..budget {
        end_of_interrupts(c);
        c.pit.deliver(&mut c.interrupts.pic);
        let Some(v) = c.interrupts.pic.pending_vector() else {
            break;
        };
        assert_eq!(c.interrupts.pic.acknowledge(), Some(v));
        if v == 0x28 {
            c.rtc.io_write(0x70, 1, 0x0C); // the RTC handler reads register C
            c.rtc.io_read(0x71, 1);
            c.rtc.deliver(&mut c.interrupts.pic);
        }
        taken.push(v);
        if !(hold && n + 1 == budget) {
            end_of_interrupts(c);
        }
    }
    c.pit.deliver(&mut c.interrupts.pic);
    taken
}

/// Drives `c` for `steps` exits chosen by `seed`: guest time steps (some exactly on the next
/// PIT tick, some just before it) and guest interrupt handling. Returns (step, vector) for
/// every interrupt taken.
fn drive(c: &mut ChipsetState, seed: u64, steps: usize) -> Vec<(usize, u8)> {
    let mut rng = Rng::new(seed);
    let mut events = Vec::new();
    for step in 0..steps {
        let r = rng.next();
        let now = match r % 4 {
            0 => c.pit.next_deadline().unwrap_or(c.guest_ns),
            1 => c.pit.next_deadline().map_or(c.guest_ns, |d| d - 1),
            _ => c.guest_ns + (r >> 8) % 3_000_000,
        }
        .max(c.guest_ns);
        update(c, now);
        let taken = guest_handles(c, (r >> 40) % 4, r >> 63 == 1);
        events.extend(taken.into_iter().map(|v| (step, v)));
    }
    events
}

fn round_trip(c: &ChipsetState) -> ChipsetState {
    let bytes = c.save_state();
    let restored = ChipsetState::restore_state(&bytes, c.ram).unwrap();
    assert_eq!(&restored, c);
    assert_eq!(restored.save_state(), bytes, "canonical encoding");
    restored
}

/// The same 10k future exits applied to a chipset and to its save/restore copy give the same
/// interrupts at the same exits, and the same devices at the end.
#[test]
fn restored_pit_and_pic_deliver_the_same_future_interrupts() {
    let mut a = linux_chipset();
    drive(&mut a, 0x1234_5678_9ABC_DEF1, 3_000);
    // Saved mid-flight: ticks backlogged, one in IRR, one in service.
    let now = a.guest_ns + 5_000_000;
    update(&mut a, now);
    guest_handles(&mut a, 1, true);
    assert!(a.pit.pending_ticks() > 0);
    assert_eq!((a.interrupts.pic.isr(), a.interrupts.pic.irr() & 1), (1, 1));
    let mut b = round_trip(&a);
    let seed = 0x0F1E_2D3C_4B5A_6978;
    let ea = drive(&mut a, seed, 10_000);
    let eb = drive(&mut b, seed, 10_000);
    assert!(ea.iter().filter(|e| e.1 == 0x20).count() > 5_000);
    assert!(ea.iter().any(|e| e.1 == 0x28), "RTC interrupts too");
    assert_eq!(ea, eb);
    assert_eq!(a, b);
}

/// Ten seconds of 1000 Hz PIT ticks while the guest fails over every ~100 exits to a host with
/// a different TSC value and rate: guest time never goes back, and every tick the PIT produced
/// in that time is taken by the guest exactly once.
#[test]
fn ticks_reach_the_guest_exactly_once_across_failovers() {
    let mut rng = Rng::new(0x5DEE_CE66_D1CE_4E5B);
    let mut c = linux_chipset();
    let mut hz = 2_000_000_000;
    let mut tsc = 1 << 40;
    let mut clock = GuestClock::start(tsc, hz);
    let (mut ticks, mut failovers, mut max_backlog) = (0_u64, 0, 0);
    let end = 10_000_000_000;
    while c.guest_ns < end {
        let r = rng.next();
        tsc += r % (hz / 500); // up to 2 ms
        let now = clock.at(tsc).min(end);
        assert!(now >= c.guest_ns, "guest time is monotonic");
        update(&mut c, now);
        max_backlog = max_backlog.max(c.pit.pending_ticks());
        let taken = guest_handles(&mut c, (r >> 40) % 4, r >> 63 == 1);
        ticks += taken.iter().filter(|&&v| v == 0x20).count() as u64;
        if r >> 20 & 0x7F == 0 {
            // The primary saves a little after the last exit (ticks since then are not
            // counted yet); the backup resumes on its own clock.
            tsc += rng.below(hz / 1000);
            c.guest_ns = clock.at(tsc).min(end);
            let saved = c.save_state();
            c = ChipsetState::restore_state(&saved, RAM).unwrap();
            hz = 1_000_000_000 + rng.below(4_000_000_000);
            tsc = rng.below(1 << 50);
            clock = GuestClock::resume(c.guest_ns, tsc, hz);
            assert_eq!(clock.at(tsc), c.guest_ns);
            failovers += 1;
        }
    }
    loop {
        let taken = guest_handles(&mut c, 4, false);
        if taken.is_empty() {
            break;
        }
        ticks += taken.iter().filter(|&&v| v == 0x20).count() as u64;
    }
    assert!(failovers > 30, "{failovers} failovers");
    assert!(max_backlog > 2, "the guest fell behind at times");
    let expected = pit_clock(end) / u64::from(HZ_1000);
    assert_eq!(expected, 10_001);
    assert_eq!(ticks, expected);
    assert_eq!(c.pit.delivered_ticks(), expected);
    assert_eq!(c.pit.dropped_ticks(), 0);
}

/// A register device with a state rule (at most 100), to test a bus of several devices.
struct Mailbox(u8);

const MAILBOX: u16 = 0x510;

impl PortDevice for Mailbox {
    fn ports(&self) -> RangeInclusive<u16> {
        MAILBOX..=MAILBOX
    }
    fn read(&mut self, _port: u16, _width: Width) -> u32 {
        u32::from(self.0)
    }
    fn write(&mut self, _port: u16, _width: Width, value: u32) -> Effect {
        self.0 = (value as u8).min(100);
        Effect::None
    }
    fn state_id(&self) -> Option<DeviceId> {
        Some(DeviceId::from_raw(0x00FF_0510))
    }
    fn save_state(&self, w: &mut StateWriter) {
        w.u8(self.0);
    }
    fn restore_state(&mut self, r: &mut StateReader<'_>) -> Result<(), StateError> {
        let v = r.u8()?;
        ensure(v <= 100, "mailbox", u64::from(v))?;
        self.0 = v;
        Ok(())
    }
}

/// The guest's standard bus: COM1 and the debug-exit port.
fn bus() -> PortBus {
    let mut bus = PortBus::default();
    bus.attach(Box::new(Serial::default()));
    bus.attach(Box::new(DebugExit));
    bus
}

fn out(bus: &mut PortBus, text: &[u8]) {
    for &b in text {
        bus.write(COM1, 1, u32::from(b));
    }
}

/// Every device in a state worth keeping: the slave PIC between ICW2 and ICW3, every PIT
/// channel counting (channel 0 with a half-read latch, channel 2 in mode 0 with its status
/// latched), the RTC with NMIs masked and an index set, the UART with DLAB set and a partial
/// line.
fn busy_guest() -> (ChipsetState, PortBus) {
    let mut c = linux_chipset();
    drive(&mut c, 77, 500);
    c.interrupts.pic.io_write(0xA0, 1, 0x11);
    c.interrupts.pic.io_write(0xA1, 1, 0x30);
    c.pit.io_write(0x43, 1, 0x74); // channel 1, mode 2
    c.pit.io_write(0x41, 1, 18);
    c.pit.io_write(0x41, 1, 0);
    c.pit.io_write(0x61, 1, 1);
    c.pit.io_write(0x43, 1, 0xB0); // channel 2, mode 0
    c.pit.io_write(0x42, 1, 0xFF);
    c.pit.io_write(0x42, 1, 0x7F);
    let now = c.guest_ns + 1_234_567;
    update(&mut c, now);
    c.pit.io_write(0x43, 1, 0x00);
    c.pit.io_read(0x40, 1);
    c.pit.io_write(0x43, 1, 0xE8);
    c.rtc.io_write(0x70, 1, 0x80 | 0x32);
    // The APICs in use: the local APIC enabled with its timer counting in periodic mode and a
    // request waiting, the PIT routed through I/O APIC pin 2 with the index register set; the
    // PM timer's SCI enabled.
    let now = c.guest_ns;
    let i = &mut c.interrupts;
    let _ = i.lapic.write(regs::SVR, 4, 0x1FF, now);
    let _ = i.lapic.write(regs::TIMER_DIVIDE, 4, 0xB, now);
    let _ = i.lapic.write(regs::LVT_TIMER, 4, 0x2_0040, now);
    let _ = i.lapic.write(regs::TIMER_INITIAL, 4, 1_000_000, now);
    let _ = i.lapic.write(regs::ICR_LOW, 4, 0x4_0050, now);
    i.ioapic.write(0, 4, 0x14, &mut i.lapic);
    i.ioapic.write(0x10, 4, 0x31, &mut i.lapic);
    i.ioapic.write(0, 4, 0x12, &mut i.lapic);
    c.pm.advance(now);
    c.pm.io_write(0x602, 2, 1);
    c.guest_ns += 999;
    let mut bus = bus();
    out(&mut bus, b"booted\nhalf a li");
    let _ = bus.take_output(false);
    bus.write(COM1 + 3, 1, 0x83);
    bus.write(COM1, 1, 0x01);
    (c, bus)
}

/// Loads a blob into a fresh chipset state and `bus`, as `Guest::restore_devices` does.
fn load(blob: &[u8], bus: &mut PortBus) -> Result<ChipsetState, StateError> {
    let s = decode(blob)?;
    let c = ChipsetState::restore_state(s.chipset, RAM)?;
    bus.restore_state(s.bus)?;
    Ok(c)
}

fn blob_of(c: &ChipsetState, bus: &PortBus) -> Vec<u8> {
    encode(&c.save_state(), &bus.save_state())
}

#[test]
fn whole_guest_state_round_trips() {
    let (c, mut bus) = busy_guest();
    assert!(c.rtc.nmi_masked());
    let blob = blob_of(&c, &bus);
    assert_eq!(&blob[..6], b"CSDV\x04\x00");
    let mut other = self::bus();
    out(&mut other, b"something else");
    let restored = load(&blob, &mut other).unwrap();
    assert_eq!(restored, c);
    assert_eq!(other.save_state(), bus.save_state());
    assert_eq!(blob_of(&restored, &other), blob, "canonical encoding");
    assert_eq!(other.read(COM1, 1), 1, "DLAB set: the divisor reads back");
    for b in [&mut bus, &mut other] {
        b.write(COM1 + 3, 1, 0x03);
        out(b, b"ne\n");
    }
    assert_eq!(other.take_output(false), ["half a line"]);
    assert_eq!(bus.take_output(false), ["half a line"]);
}

#[test]
fn largest_state_is_far_below_the_stream_limit() {
    let (mut c, mut bus) = busy_guest();
    // Every optional PIT field present on every channel: mode 2 with a reload pending, a
    // half-read latch, a status latch and half a count written.
    for ch in 0..3_u16 {
        let sc = (ch as u8) << 6;
        c.pit.io_write(0x43, 1, u32::from(sc | 0x34));
        c.pit.io_write(0x40 + ch, 1, 0);
        c.pit.io_write(0x40 + ch, 1, 0x10);
        c.pit.io_write(0x40 + ch, 1, 0);
        c.pit.io_write(0x40 + ch, 1, 0x08);
        c.pit.io_write(0x43, 1, u32::from(sc));
        c.pit.io_read(0x40 + ch, 1);
        c.pit.io_write(0x43, 1, 0xE0 | 2 << ch); // status only (both bits are active low)
        c.pit.io_write(0x40 + ch, 1, 0x55);
    }
    c.pit.io_write(0x61, 1, 1);
    // The longest partial line: 255 bytes (the 256th ends it).
    bus.write(COM1 + 3, 1, 0x03);
    while bus.save_state().len() < 4 + 4 + 16 + 255 {
        out(&mut bus, b"y");
    }
    let blob = blob_of(&c, &bus);
    assert_eq!(load(&blob, &mut self::bus()).unwrap(), c);
    assert_eq!(blob.len(), 1101, "the largest state this build writes");
    assert!(
        blob.len() * 3 <= MAX_LEN,
        "and MAX_LEN is 1/16 of the stream's bound"
    );
}

#[test]
fn every_truncation_is_refused() {
    let (c, bus) = busy_guest();
    let (chip, bus_bytes) = (c.save_state(), bus.save_state());
    let blob = encode(&chip, &bus_bytes);
    for n in 0..blob.len() {
        let mut target = self::bus();
        let before = target.save_state();
        assert!(
            matches!(
                load(&blob[..n], &mut target),
                Err(StateError::Truncated { .. })
            ),
            "blob cut at {n}"
        );
        assert_eq!(target.save_state(), before);
    }
    // Cut inside a section whose framing is intact: the device models notice.
    for n in 0..chip.len() {
        let cut = encode(&chip[..n], &bus_bytes);
        assert!(
            matches!(
                load(&cut, &mut self::bus()),
                Err(StateError::Truncated { .. })
            ),
            "chipset cut at {n}"
        );
    }
    for n in 0..bus_bytes.len() {
        let mut target = self::bus();
        let before = target.save_state();
        let cut = encode(&chip, &bus_bytes[..n]);
        let e = load(&cut, &mut target).unwrap_err();
        match n {
            0 => assert_eq!(e, StateError::MissingDevice(DeviceId::uart16550(COM1))),
            _ => assert!(
                matches!(e, StateError::Truncated { .. }),
                "bus cut at {n}: {e:?}"
            ),
        }
        assert_eq!(target.save_state(), before);
    }
}

/// Random bytes, random bytes behind a valid header, and valid states with a few bytes
/// changed: never a panic; whatever is accepted is a state this build could have written
/// (it re-encodes to the same bytes) and the restored devices run.
#[test]
fn random_and_corrupted_states_never_panic() {
    let mut rng = Rng::new(0xA076_1D64_78BD_642F);
    let (c, bus) = busy_guest();
    let good = blob_of(&c, &bus);
    let mut accepted = 0;
    for i in 0..300_000_u64 {
        let mut b = match i % 3 {
            0 => (0..rng.below(96)).map(|_| rng.next() as u8).collect(),
            1 => {
                let mut b = good[..6].to_vec();
                b.extend((0..rng.below(800)).map(|_| rng.next() as u8));
                b
            }
            _ => {
                let mut b = good.clone();
                for _ in 0..=rng.below(3) {
                    let at = rng.below(b.len() as u64) as usize;
                    b[at] ^= 1 << rng.below(8);
                }
                b
            }
        };
        if i % 3 == 1 && rng.below(2) == 0 {
            // Plausible framing: a chipset section of the right length.
            let len = (good.len() - 6 - 8 - bus.save_state().len()) as u32;
            b.truncate(6);
            b.extend_from_slice(&len.to_le_bytes());
            b.extend((0..len + 4 + rng.below(300) as u32).map(|_| rng.next() as u8));
        }
        let mut target = self::bus();
        if let Ok(mut restored) = load(&b, &mut target) {
            assert_eq!(
                blob_of(&restored, &target),
                b,
                "accepted only canonical states"
            );
            accepted += 1;
            if accepted % 64 == 1 {
                run_random_traffic(&mut restored, &mut target, &mut rng);
            }
        }
    }
    assert!(
        accepted > 1_000,
        "flips in CMOS RAM and counts are valid states"
    );
}

fn run_random_traffic(c: &mut ChipsetState, bus: &mut PortBus, rng: &mut Rng) {
    let ports = [
        0x20,
        0x21,
        0xA0,
        0xA1,
        0x40,
        0x42,
        0x43,
        0x61,
        0x70,
        0x71,
        COM1,
        COM1 + 3,
    ];
    for _ in 0..500 {
        let r = rng.next();
        let port = ports[(r % ports.len() as u64) as usize];
        match (r >> 8) % 4 {
            0 => {
                let now = c.guest_ns.saturating_add(r >> 40);
                update(c, now);
            }
            1 => _ = guest_handles(c, 2, false),
            2 => _ = bus.read(port, 1),
            _ if Pic::decodes(port) => c.interrupts.pic.io_write(port, 1, (r >> 16) as u32),
            _ if Pit::decodes(port) => c.pit.io_write(port, 1, (r >> 16) as u32),
            _ if Rtc::decodes(port) => c.rtc.io_write(port, 1, (r >> 16) as u32),
            _ => _ = bus.write(port, 1, (r >> 16) as u32),
        }
    }
}

#[test]
fn wrong_header_device_set_or_ram_are_refused_by_name() {
    let (c, bus) = busy_guest();
    let chip = c.save_state();
    let com1 = bus.save_state();
    let serial = &com1[8..];

    let mut b = blob_of(&c, &bus);
    b[4] = 1;
    let e = load(&b, &mut self::bus()).unwrap_err();
    assert_eq!(
        e,
        StateError::Version {
            found: 1,
            supported: 4
        }
    );
    assert_eq!(
        e.to_string(),
        "device state version 1 is not supported (this build reads 4)",
        "a blob from before the UART's receiver, the APICs and PM registers is refused"
    );
    b[..4].copy_from_slice(b"QEVM");
    assert!(
        load(&b, &mut self::bus())
            .unwrap_err()
            .to_string()
            .contains("magic")
    );

    // A UART at COM2, which this guest does not have.
    let mut w = StateWriter::new();
    w.u32(DeviceId::uart16550(0x2F8).raw());
    w.section(|w| w.bytes(serial));
    let e = load(&encode(&chip, &w.into_bytes()), &mut self::bus()).unwrap_err();
    assert_eq!(e, StateError::UnknownDevice(DeviceId::uart16550(0x2F8)));
    assert!(e.to_string().contains("16550 UART at port 0x2f8"), "{e}");

    let e = load(&encode(&chip, &[]), &mut self::bus()).unwrap_err();
    assert_eq!(e.to_string(), "device state lacks 16550 UART at port 0x3f8");

    let twice = [com1.as_slice(), com1.as_slice()].concat();
    let e = load(&encode(&chip, &twice), &mut self::bus()).unwrap_err();
    assert_eq!(e, StateError::DuplicateDevice(DeviceId::uart16550(COM1)));

    let e = ChipsetState::restore_state(&chip, RAM * 2).unwrap_err();
    assert_eq!(
        e,
        StateError::RamSize {
            saved: RAM,
            here: RAM * 2
        }
    );
    assert!(e.to_string().contains("67108864 bytes of RAM"), "{e}");

    let behind = ChipsetState {
        guest_ns: c.pit.now() - 1,
        ..c.clone()
    };
    assert_eq!(
        ChipsetState::restore_state(&behind.save_state(), RAM),
        Err(StateError::Invalid {
            field: "PIT time after guest time",
            value: c.pit.now()
        })
    );

    let long = vec![0; MAX_LEN + 1];
    assert_eq!(
        decode(&long),
        Err(StateError::TooLong {
            len: MAX_LEN + 1,
            max: MAX_LEN
        })
    );
}

/// A bus restore that fails part-way leaves every device as it was, including those restored
/// before the failing one.
#[test]
fn failed_bus_restore_leaves_every_device_as_it_was() {
    let (_, mut primary) = busy_guest();
    primary.attach(Box::new(Mailbox(0)));
    primary.write(MAILBOX, 1, 42);
    let good = primary.save_state();
    let mut backup = bus();
    backup.attach(Box::new(Mailbox(7)));
    out(&mut backup, b"backup's own");
    let before = backup.save_state();

    let mut forged = good.clone();
    *forged.last_mut().unwrap() = 101;
    let e = backup.restore_state(&forged).unwrap_err();
    assert_eq!(
        e,
        StateError::Invalid {
            field: "mailbox",
            value: 101
        }
    );
    assert_eq!(backup.save_state(), before, "COM1 was rolled back");

    let mut long = good.clone();
    let n = long.len();
    long[n - 5] = 2; // the mailbox section claims two bytes ...
    long.push(0); // ... and has them, but the mailbox reads one
    assert!(matches!(
        backup.restore_state(&long),
        Err(StateError::Trailing { .. })
    ));
    assert_eq!(backup.save_state(), before);

    backup.restore_state(&good).unwrap();
    assert_eq!(backup.save_state(), good);
    assert_eq!(backup.read(MAILBOX, 1), 42);
}

/// The network card's section: absent for a guest without one, the card's exact state for a
/// guest with one, refused under another device's id or with bytes left over.
#[test]
fn the_network_card_travels_in_its_own_section() {
    use crate::vmm::devices::virtio::VirtioNet;
    let (c, bus) = busy_guest();
    let plain = blob_of(&c, &bus);
    assert_eq!(restore_nic(decode(&plain).unwrap().nic), Ok(None));

    let mut nic = VirtioNet::new([0x52, 0x54, 0, 0xca, 0x57, 1]);
    nic.mmio_write(0x70, 4, 1); // status: ACKNOWLEDGE
    let blob = encode_with_nic(&c.save_state(), &bus.save_state(), &nic_section(Some(&nic)));
    let s = decode(&blob).unwrap();
    assert_eq!(restore_nic(s.nic), Ok(Some(nic.clone())));
    assert_eq!(ChipsetState::restore_state(s.chipset, RAM).unwrap(), c);

    let mut other = nic_section(Some(&nic));
    other[..4].copy_from_slice(&DeviceId::virtio_mmio(1).raw().to_le_bytes());
    assert_eq!(
        restore_nic(&other),
        Err(StateError::UnknownDevice(DeviceId::virtio_mmio(1)))
    );
    let mut long = nic_section(Some(&nic));
    long.push(0);
    assert!(matches!(
        restore_nic(&long),
        Err(StateError::Trailing { .. })
    ));
}
