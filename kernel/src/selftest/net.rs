// SPDX-License-Identifier: MIT OR Apache-2.0
//! The host NIC drivers, end to end: with two NICs on one Ethernet segment (e.g. QEMU
//! `-netdev hubport` pairs), frames of every size sent from each to the other arrive intact,
//! in order, each exactly once; and, with interrupts enabled meanwhile, every NIC with an
//! interrupt connected (MSI-X on virtio-net, which must have one) that received frames got
//! interrupts for them. Needs two NICs; named explicitly (`selftest=net`).

use alloc::vec;

use super::Outcome;
use crate::arch::x86_64::{instr, time};
use crate::drivers::net::{MAX_FRAME, MIN_FRAME, NICS, Nic, NicError};

const FRAMES: u32 = 2000;
/// Test EtherType (IEEE 802 local experimental 2).
const ETHERTYPE: [u8; 2] = [0x88, 0xB6];
/// How long to wait for one frame, in TSC-derived nanoseconds.
const TIMEOUT_NS: u64 = 2_000_000_000;

/// Frame `n` from `src` to `dst`: a size sweeping 60..=1514 and a payload derived from `n`.
fn frame(n: u32, src: [u8; 6], dst: [u8; 6], buf: &mut [u8]) -> usize {
    let len = 60 + (n as usize * 97) % (MAX_FRAME - 60 + 1);
    buf[..6].copy_from_slice(&dst);
    buf[6..12].copy_from_slice(&src);
    buf[12..14].copy_from_slice(&ETHERTYPE);
    buf[14..18].copy_from_slice(&n.to_le_bytes());
    for (i, b) in buf[18..len].iter_mut().enumerate() {
        *b = (n as usize).wrapping_mul(31).wrapping_add(i * 7) as u8;
    }
    len
}

fn send(nic: &mut dyn Nic, data: &[u8]) -> Result<(), alloc::string::String> {
    let deadline = time::now_ns() + TIMEOUT_NS;
    loop {
        match nic.transmit(data) {
            Ok(()) => return Ok(()),
            Err(NicError::Full) if time::now_ns() < deadline => nic.poll(),
            Err(e) => return Err(alloc::format!("{} transmit: {e}", nic.name())),
        }
    }
}

/// Sends FRAMES frames from `a` to `b` and checks each as it arrives; returns frames/s.
fn one_way(a: &mut dyn Nic, b: &mut dyn Nic) -> Result<u64, alloc::string::String> {
    let (mut out, mut got) = (vec![0u8; MAX_FRAME], vec![0u8; MAX_FRAME]);
    let start = time::now_ns();
    for n in 0..FRAMES {
        let len = frame(n, a.mac(), b.mac(), &mut out);
        send(a, &out[..len])?;
        let deadline = time::now_ns() + TIMEOUT_NS;
        loop {
            b.poll();
            a.poll();
            match b.receive(&mut got) {
                // Anything else on the segment (e.g. firmware chatter) is not ours.
                Some(l) if l >= MIN_FRAME && got[12..14] != ETHERTYPE => continue,
                Some(l) => {
                    if l < len || got[..len] != out[..len] {
                        let seq = u32::from_le_bytes([got[14], got[15], got[16], got[17]]);
                        return Err(alloc::format!(
                            "{} -> {}: frame {n} ({len} bytes) arrived as {l} bytes, sequence {seq}",
                            a.name(),
                            b.name()
                        ));
                    }
                    break;
                }
                None if time::now_ns() > deadline => {
                    return Err(alloc::format!(
                        "{} -> {}: frame {n} lost",
                        a.name(),
                        b.name()
                    ));
                }
                None => core::hint::spin_loop(),
            }
        }
    }
    let elapsed = (time::now_ns() - start).max(1);
    Ok(u64::from(FRAMES) * 1_000_000_000 / elapsed)
}

/// Two NICs exchange frames both ways.
pub fn two_nics() -> Outcome {
    let mut nics = NICS.lock();
    if nics.len() < 2 {
        return Outcome::Skipped(alloc::format!(
            "needs two NICs on one segment, found {}",
            nics.len()
        ));
    }
    let (first, rest) = nics.split_at_mut(1);
    let (a, b) = (&mut *first[0], &mut *rest[0]);
    let before = [snapshot(a), snapshot(b)];
    // SAFETY: the IDT is loaded and dispatches device vectors (arch::x86_64::irq) and the
    // timer; the handlers take no lock the code below holds (they only read device registers
    // and count). The LAPIC timer is stopped and I/O APIC pins other than NIC lines masked.
    unsafe { instr::sti() };
    let result = one_way(a, b).and_then(|ab| one_way(b, a).map(|ba| (ab, ba)));
    instr::cli();
    let (ab, ba) = match result {
        Ok(rates) => rates,
        Err(e) => return Outcome::Failed(e),
    };
    let mut irqs = alloc::vec::Vec::new();
    for (nic, (rx0, irq0)) in [&*a, &*b].into_iter().zip(before) {
        let received = nic.stats().rx_frames - rx0;
        match (nic.interrupts(), irq0) {
            (Some((mode, n)), Some(n0)) => {
                let got = n - n0;
                if received > 0 && got == 0 {
                    return Outcome::Failed(alloc::format!(
                        "{} received {received} frames but got no {mode} interrupt",
                        nic.name()
                    ));
                }
                irqs.push(alloc::format!("{} {got} {mode} interrupts", nic.name()));
            }
            _ if nic.name() == "virtio-net" => {
                return Outcome::Failed(alloc::format!(
                    "{} has no MSI-X interrupt connected",
                    nic.name()
                ));
            }
            _ => irqs.push(alloc::format!("{} polled (no interrupt)", nic.name())),
        }
    }
    Outcome::Passed(alloc::format!(
        "{FRAMES} frames of 60..1514 bytes each way intact and in order: {} -> {} {ab}/s, back {ba}/s; {}",
        a.name(),
        b.name(),
        irqs.join(", ")
    ))
}

/// Frames received and interrupts delivered so far.
fn snapshot(nic: &dyn Nic) -> (u64, Option<u64>) {
    (nic.stats().rx_frames, nic.interrupts().map(|(_, n)| n))
}
