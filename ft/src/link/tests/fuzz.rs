//! Every parser and `Link::on_frame` fed random and mutated bytes: no panics, ever.

use alloc::vec;
use alloc::vec::Vec;

use super::sim::{MS, NetConfig, Sim};
use crate::link::arp::ArpPacket;
use crate::link::encap::classify;
use crate::link::ether::{EthernetHeader, MacAddr};
use crate::link::frame::{AckInfo, Header, HelloBody, Kind, SessionBody};
use crate::link::ipv4::{Ipv4Addr, Ipv4Header};
use crate::link::udp::{UdpEndpoints, UdpHeader, write_ipv4_udp};
use crate::link::{LinkConfig, PreSharedKey};
use crate::testutil::{Rng, volume};

fn parse_everything(b: &[u8]) {
    let _ = EthernetHeader::parse(b);
    let _ = ArpPacket::parse(b);
    if let Ok((ip, payload)) = Ipv4Header::parse(b) {
        let _ = UdpHeader::parse(&ip, payload);
    }
    let mac = MacAddr([2, 0, 0, 0, 0, 1]);
    let _ = classify(b, mac, Some(Ipv4Addr::new(10, 0, 0, 1)));
    let _ = classify(b, MacAddr::BROADCAST, None);
    let _ = Header::parse(b);
    let _ = HelloBody::decode(b);
    let _ = AckInfo::decode(b);
    for k in [Kind::Data, Kind::Ack, Kind::Heartbeat, Kind::Hello] {
        let _ = SessionBody::decode(k, b);
    }
    if let Ok(s) = core::str::from_utf8(b) {
        let _ = PreSharedKey::from_hex(s);
        let _ = PreSharedKey::from_cmdline(s, "castor.key");
        let _ = Ipv4Addr::parse(s);
    }
}

/// Valid frames of every layer, to mutate.
fn seeds() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    let mut buf = vec![0u8; 100];
    let ep = UdpEndpoints {
        src_ip: Ipv4Addr::new(10, 0, 0, 2),
        dst_ip: Ipv4Addr::new(10, 0, 0, 1),
        src_port: 4000,
        dst_port: 4000,
    };
    let n = write_ipv4_udp(&mut buf[14..], &ep, 1, 30).unwrap();
    EthernetHeader {
        dst: MacAddr([2, 0, 0, 0, 0, 1]),
        src: MacAddr([2, 0, 0, 0, 0, 2]),
        ethertype: 0x0800,
    }
    .write(&mut buf)
    .unwrap();
    v.push(buf[..14 + n].to_vec());
    let mut arp = vec![0u8; 60];
    ArpPacket::request(MacAddr([2, 0, 0, 0, 0, 2]), ep.src_ip, ep.dst_ip)
        .write_frame(&mut arp)
        .unwrap();
    v.push(arp);
    v
}

fn mutate(rng: &mut Rng, f: &mut Vec<u8>) {
    match rng.below(4) {
        0 => {
            let i = rng.below(f.len() + 1);
            f.truncate(i);
        }
        1 => {
            for _ in 0..=rng.below(4) {
                if !f.is_empty() {
                    let i = rng.below(f.len());
                    f[i] ^= 1 << rng.below(8);
                }
            }
        }
        2 => {
            if !f.is_empty() {
                let i = rng.below(f.len());
                f[i] = rng.byte();
            }
        }
        _ => {
            let extra = rng.below(16);
            f.extend((0..extra).map(|_| rng.byte()));
        }
    }
}

#[test]
fn parsers_never_panic_on_random_bytes() {
    let mut rng = Rng::new(0xF00D);
    let cases = volume(200_000, 20_000);
    for _ in 0..cases {
        let len = rng.below(120);
        let mut b = rng.bytes(len);
        // Make some inputs look plausible so deeper layers are reached.
        if len >= 14 && rng.below(2) == 0 {
            b[12..14].copy_from_slice(&[0x08, if rng.below(2) == 0 { 0x00 } else { 0x06 }]);
        }
        if len >= 4 && rng.below(3) == 0 {
            b[0] = 0xCA;
            b[1] = 0x57;
            b[2] = 1;
            b[3] = 1 + rng.below(5) as u8;
        }
        parse_everything(&b);
        parse_everything(&b[b.len().min(14)..]);
    }
}

#[test]
fn parsers_never_panic_on_mutated_valid_frames() {
    let mut rng = Rng::new(0xBEEF);
    let seeds = seeds();
    for (i, s) in seeds.iter().enumerate() {
        // The unmutated seeds parse.
        assert!(
            classify(
                s,
                MacAddr([2, 0, 0, 0, 0, 1]),
                Some(Ipv4Addr::new(10, 0, 0, 1))
            )
            .is_ok(),
            "seed {i}"
        );
    }
    for _ in 0..20_000 {
        let mut f = seeds[rng.below(seeds.len())].clone();
        for _ in 0..=rng.below(3) {
            mutate(&mut rng, &mut f);
        }
        parse_everything(&f);
        parse_everything(&f[f.len().min(14)..]);
    }
}

#[test]
fn link_never_panics_and_never_delivers_garbage() {
    let mut sim = Sim::pair(LinkConfig::default(), NetConfig::PERFECT, 51);
    sim.capture = true;
    sim.run_pairing(1_000 * MS);
    for i in 0..20 {
        sim.links[0].send(&vec![i; 2000]).unwrap();
    }
    sim.run(50 * MS, |s| {
        while s.links[1].poll_event().is_some() {}
        while s.links[0].poll_event().is_some() {}
        false
    });
    let corpus: Vec<Vec<u8>> = sim.captured.iter().flatten().cloned().collect();
    let delivered = sim.links[1].stats().messages_delivered;
    let mut rng = Rng::new(52);
    let cases = volume(50_000, 5_000);
    for i in 0..cases {
        let f = if i % 4 == 0 {
            let len = rng.below(1600);
            rng.bytes(len)
        } else {
            let mut f = corpus[rng.below(corpus.len())].clone();
            mutate(&mut rng, &mut f);
            f
        };
        for to in 0..2 {
            let _ = sim.deliver(to, &f);
        }
    }
    // Keep running: mutated frames are either rejected or exact replays; nothing new arrives.
    sim.run(100 * MS, |_| false);
    assert_eq!(sim.links[1].stats().messages_delivered, delivered);
    for l in &mut sim.links {
        while let Some(e) = l.poll_event() {
            assert!(!matches!(e, crate::link::Event::Delivered(_)), "{e:?}");
        }
    }
}
