//! An Ethernet hub between QEMU `dgram` netdevs on loopback: every frame one port receives
//! goes out of every other port, as on a shared segment. Hosts can join at any time (each
//! port is a UDP socket on 127.0.0.1 exchanging one raw frame per datagram with one QEMU),
//! and the path between two ports can be cut in either direction (a partition).

use std::collections::HashSet;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// One port: the hub's socket and the QEMU it talks to.
struct Port {
    socket: UdpSocket,
    qemu: SocketAddr,
}

/// What the hub's thread and its owner share.
#[derive(Default)]
struct Shared {
    ports: Vec<Port>,
    /// Directed paths `(from, to)` that drop every frame.
    cut: HashSet<(usize, usize)>,
}

/// A running hub; stopped when dropped.
pub struct Hub {
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// A free UDP port on 127.0.0.1 (for a QEMU `dgram` netdev's local end).
pub fn free_udp_port() -> io::Result<u16> {
    Ok(UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Hub {
    /// A hub with no ports yet.
    pub fn start() -> io::Result<Hub> {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, t) = (Arc::clone(&shared), Arc::clone(&stop));
        let thread = thread::Builder::new()
            .name("hub".into())
            .spawn(move || run(&s, &t))?;
        Ok(Hub {
            shared,
            stop,
            thread: Some(thread),
        })
    }

    /// Adds a port for a QEMU whose netdev listens on 127.0.0.1 `qemu_port`; returns the
    /// port's index and the UDP port (on 127.0.0.1) that QEMU must send to.
    pub fn add_port(&self, qemu_port: u16) -> io::Result<(usize, u16)> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_nonblocking(true)?;
        let port = socket.local_addr()?.port();
        let mut shared = self.shared.lock().expect("hub lock");
        shared.ports.push(Port {
            socket,
            qemu: SocketAddr::from(([127, 0, 0, 1], qemu_port)),
        });
        Ok((shared.ports.len() - 1, port))
    }

    /// Cuts (`true`) or restores the path from port `from` to port `to`.
    pub fn set_cut(&self, from: usize, to: usize, cut: bool) {
        let mut shared = self.shared.lock().expect("hub lock");
        match cut {
            true => shared.cut.insert((from, to)),
            false => shared.cut.remove(&(from, to)),
        };
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(shared: &Mutex<Shared>, stop: &AtomicBool) {
    let mut buf = [0u8; 65536];
    while !stop.load(Ordering::Relaxed) {
        let mut idle = true;
        {
            let shared = shared.lock().expect("hub lock");
            for (from, port) in shared.ports.iter().enumerate() {
                while let Ok(n) = port.socket.recv(&mut buf) {
                    idle = false;
                    for (to, out) in shared.ports.iter().enumerate() {
                        if to != from && !shared.cut.contains(&(from, to)) {
                            // A port whose QEMU is gone drops what it is sent, as a wire would.
                            let _ = out.socket.send_to(&buf[..n], out.qemu);
                        }
                    }
                }
            }
        }
        if idle {
            thread::sleep(Duration::from_micros(200));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint() -> (UdpSocket, u16) {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let port = s.local_addr().unwrap().port();
        (s, port)
    }

    fn recv(s: &UdpSocket) -> Option<Vec<u8>> {
        let mut buf = [0u8; 64];
        s.recv(&mut buf).ok().map(|n| buf[..n].to_vec())
    }

    #[test]
    fn frames_reach_every_other_port_unless_the_path_is_cut() {
        let hub = Hub::start().unwrap();
        let hosts: Vec<_> = (0..3).map(|_| endpoint()).collect();
        let ports: Vec<u16> = hosts
            .iter()
            .map(|(_, p)| hub.add_port(*p).unwrap().1)
            .collect();
        let to_hub = |i: usize| SocketAddr::from(([127, 0, 0, 1], ports[i]));
        hosts[0].0.send_to(b"one", to_hub(0)).unwrap();
        assert_eq!(recv(&hosts[1].0).as_deref(), Some(&b"one"[..]));
        assert_eq!(recv(&hosts[2].0).as_deref(), Some(&b"one"[..]));
        assert_eq!(recv(&hosts[0].0), None, "not back to the sender");
        hub.set_cut(1, 2, true);
        hosts[1].0.send_to(b"two", to_hub(1)).unwrap();
        assert_eq!(recv(&hosts[0].0).as_deref(), Some(&b"two"[..]));
        assert_eq!(recv(&hosts[2].0), None, "cut from 1 to 2");
        hosts[2].0.send_to(b"three", to_hub(2)).unwrap();
        assert_eq!(
            recv(&hosts[1].0).as_deref(),
            Some(&b"three"[..]),
            "2 to 1 still up"
        );
        hub.set_cut(1, 2, false);
        hosts[1].0.send_to(b"four", to_hub(1)).unwrap();
        assert_eq!(recv(&hosts[2].0).as_deref(), Some(&b"four"[..]));
    }
}
