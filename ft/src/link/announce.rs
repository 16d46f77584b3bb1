// SPDX-License-Identifier: MIT OR Apache-2.0
//! A guest's station address on the host's network: which received frames are the guest's,
//! and the announcement a host that takes the guest over sends so that switches learn where
//! the guest's MAC now lives.
//!
//! The announcement is a RARP request (RFC 903, EtherType 0x8035) from the guest's MAC to
//! broadcast, as QEMU's `announce-self` and VMware's vMotion send: it needs no IP address,
//! every learning bridge updates its table from the source address, and hosts ignore it.

use super::ether::MacAddr;

/// EtherType of RARP (RFC 903).
pub const ETHERTYPE_RARP: u16 = 0x8035;
/// Length of an announcement: the Ethernet minimum without FCS.
pub const ANNOUNCE_LEN: usize = 60;

/// The RARP request that announces `mac`: hardware type Ethernet, protocol IPv4, opcode 3
/// (request reverse), sender and target hardware address `mac`, protocol addresses zero.
#[must_use]
pub fn announcement(mac: MacAddr) -> [u8; ANNOUNCE_LEN] {
    let mut f = [0u8; ANNOUNCE_LEN];
    f[..6].copy_from_slice(&MacAddr::BROADCAST.0);
    f[6..12].copy_from_slice(&mac.0);
    f[12..14].copy_from_slice(&ETHERTYPE_RARP.to_be_bytes());
    // htype 1, ptype 0x0800, hlen 6, plen 4, op 3
    f[14..22].copy_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 3]);
    f[22..28].copy_from_slice(&mac.0);
    f[32..38].copy_from_slice(&mac.0);
    f
}

/// Whether a received `frame` is for the station `mac`: addressed to it, to broadcast or to a
/// multicast group, and not sent by it (a bridge may flood the guest's own frames back).
#[must_use]
pub fn is_for(frame: &[u8], mac: MacAddr) -> bool {
    let (Some(dst), Some(src)) = (frame.get(..6), frame.get(6..12)) else {
        return false;
    };
    src != mac.0 && (dst == mac.0 || dst[0] & 1 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUEST: MacAddr = MacAddr([0x52, 0x54, 0, 0xca, 0x57, 1]);
    const OTHER: MacAddr = MacAddr([0x52, 0x54, 0, 0, 0, 9]);

    fn frame(dst: MacAddr, src: MacAddr) -> [u8; 60] {
        let mut f = [0; 60];
        f[..6].copy_from_slice(&dst.0);
        f[6..12].copy_from_slice(&src.0);
        f
    }

    #[test]
    fn the_announcement_is_a_rarp_request_for_the_mac() {
        let a = announcement(GUEST);
        let (h, body) = super::super::ether::EthernetHeader::parse(&a).unwrap();
        assert_eq!(
            (h.dst, h.src, h.ethertype),
            (MacAddr::BROADCAST, GUEST, 0x8035)
        );
        assert_eq!(body[..8], [0, 1, 8, 0, 6, 4, 0, 3]);
        assert_eq!(body[8..14], GUEST.0, "sender hardware address");
        assert_eq!(body[14..18], [0; 4], "sender protocol address");
        assert_eq!(body[18..24], GUEST.0, "target hardware address");
        assert!(body[24..].iter().all(|&b| b == 0));
    }

    #[test]
    fn frames_for_the_guest_are_its_own_broadcast_and_multicast() {
        assert!(is_for(&frame(GUEST, OTHER), GUEST));
        assert!(is_for(&frame(MacAddr::BROADCAST, OTHER), GUEST));
        assert!(is_for(
            &frame(MacAddr([0x33, 0x33, 0, 0, 0, 1]), OTHER),
            GUEST
        ));
        assert!(!is_for(&frame(OTHER, GUEST), GUEST), "another station's");
        assert!(
            !is_for(&frame(MacAddr::BROADCAST, GUEST), GUEST),
            "its own, flooded back"
        );
        assert!(!is_for(&[0xff; 11], GUEST), "too short");
    }
}
