//! A small IPv4 router between two QEMU `dgram` netdevs on loopback, so tests can put two
//! Castor hosts on different subnets. Each interface is a UDP socket on 127.0.0.1 exchanging
//! one raw Ethernet frame per datagram with one QEMU. The router answers ARP for its own
//! addresses, learns neighbours from ARP, resolves next hops by ARP, and forwards IPv4
//! (RFC 1812 section 5.3.1: TTL decremented, header checksum recomputed, MACs rewritten);
//! datagrams whose TTL would reach 0, or whose destination is unresolved, are dropped (the
//! sender retransmits). Written independently of Castor's own network code.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// One router interface.
#[derive(Debug, Clone, Copy)]
pub struct RouterPort {
    /// The interface's MAC.
    pub mac: [u8; 6],
    /// The interface's address.
    pub ip: Ipv4Addr,
    /// Subnet prefix length.
    pub prefix: u8,
}

impl RouterPort {
    fn on_subnet(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::MAX << (32 - u32::from(self.prefix));
        u32::from(self.ip) & mask == u32::from(ip) & mask
    }
}

/// A running router; stopped when dropped.
pub struct Router {
    /// The UDP port of each interface (where its QEMU sends), on 127.0.0.1.
    pub ports: [u16; 2],
    stop: Arc<AtomicBool>,
    forwarded: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

struct Interface {
    port: RouterPort,
    socket: UdpSocket,
    peer: SocketAddr,
    neighbours: HashMap<Ipv4Addr, [u8; 6]>,
}

impl Router {
    /// Starts a router whose interface `i` talks to the QEMU listening on `qemu_ports[i]`.
    pub fn start(ports: [RouterPort; 2], qemu_ports: [u16; 2]) -> io::Result<Router> {
        let mut interfaces = Vec::new();
        for (port, qemu) in ports.into_iter().zip(qemu_ports) {
            let socket = UdpSocket::bind("127.0.0.1:0")?;
            socket.set_nonblocking(true)?;
            interfaces.push(Interface {
                port,
                socket,
                peer: SocketAddr::from(([127, 0, 0, 1], qemu)),
                neighbours: HashMap::new(),
            });
        }
        let local = |i: &Interface| i.socket.local_addr().map(|a| a.port());
        let ports = [local(&interfaces[0])?, local(&interfaces[1])?];
        let stop = Arc::new(AtomicBool::new(false));
        let forwarded = Arc::new(AtomicU64::new(0));
        let (s, f) = (Arc::clone(&stop), Arc::clone(&forwarded));
        let thread = thread::Builder::new()
            .name("router".into())
            .spawn(move || run(interfaces, &s, &f))?;
        Ok(Router {
            ports,
            stop,
            forwarded,
            thread: Some(thread),
        })
    }

    /// IPv4 datagrams forwarded so far.
    pub fn forwarded(&self) -> u64 {
        self.forwarded.load(Ordering::Relaxed)
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(mut interfaces: Vec<Interface>, stop: &AtomicBool, forwarded: &AtomicU64) {
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        let mut idle = true;
        for i in 0..interfaces.len() {
            while let Ok(n) = interfaces[i].socket.recv(&mut buf) {
                idle = false;
                handle(&mut interfaces, i, &mut buf[..n], forwarded);
            }
        }
        if idle {
            thread::sleep(Duration::from_micros(200));
        }
    }
}

const ETH: usize = 14;

fn handle(interfaces: &mut [Interface], from: usize, frame: &mut [u8], forwarded: &AtomicU64) {
    if frame.len() < ETH {
        return;
    }
    let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
    match ethertype {
        0x0806 => arp(&mut interfaces[from], frame),
        0x0800 if frame[..6] == interfaces[from].port.mac => {
            let sent = forward(interfaces, frame);
            forwarded.fetch_add(u64::from(sent), Ordering::Relaxed);
        }
        _ => {}
    }
}

/// RFC 826: learns the sender, answers requests for our address.
fn arp(iface: &mut Interface, frame: &[u8]) {
    let a = &frame[ETH..];
    if a.len() < 28 || a[..6] != [0, 1, 8, 0, 6, 4] {
        return;
    }
    let op = u16::from_be_bytes([a[6], a[7]]);
    let sha: [u8; 6] = a[8..14].try_into().expect("6 bytes");
    let spa = Ipv4Addr::new(a[14], a[15], a[16], a[17]);
    let tpa = Ipv4Addr::new(a[24], a[25], a[26], a[27]);
    if iface.port.on_subnet(spa) {
        iface.neighbours.insert(spa, sha);
    }
    if op == 1 && tpa == iface.port.ip {
        let reply = arp_packet(2, iface.port, sha, spa);
        let _ = iface.socket.send_to(&reply, iface.peer);
    }
}

fn arp_packet(op: u16, port: RouterPort, tha: [u8; 6], tpa: Ipv4Addr) -> Vec<u8> {
    let dst = if op == 1 { [0xff; 6] } else { tha };
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&port.mac);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4]);
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(&port.mac);
    f.extend_from_slice(&port.ip.octets());
    f.extend_from_slice(&tha);
    f.extend_from_slice(&tpa.octets());
    f.resize(60, 0);
    f
}

/// Forwards one IPv4 datagram; false if it was dropped.
fn forward(interfaces: &mut [Interface], frame: &mut [u8]) -> bool {
    let ip = &mut frame[ETH..];
    if ip.len() < 20 || ip[0] != 0x45 || ip[8] <= 1 {
        return false;
    }
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let Some(out) = interfaces.iter().position(|i| i.port.on_subnet(dst)) else {
        return false;
    };
    ip[8] -= 1;
    ip[10..12].fill(0);
    let sum = checksum(&ip[..20]);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let iface = &mut interfaces[out];
    let Some(mac) = iface.neighbours.get(&dst).copied() else {
        let request = arp_packet(1, iface.port, [0; 6], dst);
        let _ = iface.socket.send_to(&request, iface.peer);
        return false;
    };
    frame[..6].copy_from_slice(&mac);
    frame[6..12].copy_from_slice(&iface.port.mac);
    iface.socket.send_to(frame, iface.peer).is_ok()
}

/// The Internet checksum (RFC 1071) of `data`.
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_checksum_matches_rfc1071_example() {
        // A header whose checksum field (bytes 10..12) is 0xb861 once filled in.
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&h), 0xb861);
        h[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
        assert_eq!(checksum(&h), 0);
    }

    #[test]
    fn subnets() {
        let p = RouterPort {
            mac: [2, 0, 0, 0, 0, 1],
            ip: Ipv4Addr::new(10, 1, 0, 1),
            prefix: 24,
        };
        assert!(p.on_subnet(Ipv4Addr::new(10, 1, 0, 200)));
        assert!(!p.on_subnet(Ipv4Addr::new(10, 2, 0, 2)));
    }
}
