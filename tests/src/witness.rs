//! The witness program (`castor-witness`): the third member of a pair's majority, on any Linux
//! machine (the protocol and lease rules are `castor_ft::witness`). It answers lease requests
//! in raw Ethernet frames on an interface of the hosts' peer-link segment (`--interface IF`,
//! a packet socket: needs `CAP_NET_RAW`), over UDP (`--udp ADDR:PORT`: one sealed message per
//! datagram, replies to the sender), or as raw Ethernet frames carried one per UDP datagram
//! (`--dgram LOCAL,REMOTE`: the framing of QEMU's `dgram` netdev, so the witness sits on an
//! emulated segment beside Castor hosts, e.g. a [`crate::hub::Hub`] port).

//!
//! Lines on stdout: `castor-witness: listening on <how>, leases of <ms> ms, id <hex>` once
//! ready, and `castor-witness: pair <hex> lease to host <hex>` whenever a lease changes hands.

mod packet;

use castor_ft::link::{ChaCha20, PreSharedKey};
use castor_ft::witness::{DEFAULT_LEASE_MS, WITNESS_ETHERTYPE, Witness};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The program's usage.
pub const USAGE: &str = "usage: castor-witness --key HEX (--interface IF | --udp ADDR:PORT | \
--dgram LOCAL,REMOTE) [--lease-ms MS] [--mac MAC]
  --key HEX           the pair's pre-shared key (64 hexadecimal digits, as Castor's key=)
  --interface IF      answer raw Ethernet frames on interface IF, on the Castor hosts' peer-link
                      segment (what Castor's witness=on uses; needs CAP_NET_RAW)
  --udp ADDR:PORT     answer sealed messages in UDP datagrams at ADDR:PORT
  --dgram LOCAL,REMOTE  exchange raw Ethernet frames, one per UDP datagram, receiving at LOCAL
                      and sending to REMOTE (ADDR:PORT each; QEMU's dgram netdev framing)
  --lease-ms MS       lease length (default 3000; see castor_ft::witness for the timing rules)
  --mac MAC           this witness's MAC with --dgram (default 52:54:00:77:17:01; with
                      --interface, the interface's)";

/// How the witness is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// Raw Ethernet frames on this interface.
    Interface(String),
    /// Sealed messages in UDP datagrams at this address.
    Udp(SocketAddr),
    /// Raw Ethernet frames in UDP datagrams: received at `local`, sent to `remote`.
    Dgram {
        /// Where frames arrive.
        local: SocketAddr,
        /// Where frames go.
        remote: SocketAddr,
    },
}

/// The witness's configuration.
#[derive(Debug, Clone)]
pub struct WitnessConfig {
    /// The pair's pre-shared key.
    pub key: PreSharedKey,
    /// How it is reached.
    pub transport: Transport,
    /// Lease length (ms).
    pub lease_ms: u32,
    /// Its MAC on raw Ethernet.
    pub mac: [u8; 6],
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<u8> = s
        .split(':')
        .map(|p| u8::from_str_radix(p, 16).ok().filter(|_| p.len() == 2))
        .collect::<Option<_>>()?;
    let mac: [u8; 6] = parts.try_into().ok()?;
    (mac[0] & 1 == 0).then_some(mac)
}

impl WitnessConfig {
    /// Parses the command line (without the program name).
    ///
    /// # Errors
    /// What is wrong with it.
    pub fn from_args(args: &[String]) -> Result<WitnessConfig, String> {
        let (mut key, mut transport, mut lease_ms, mut mac) =
            (None, None, DEFAULT_LEASE_MS, [0x52, 0x54, 0, 0x77, 0x17, 1]);
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let value = it.next().ok_or(format!("{flag} needs a value"))?;
            let addr = |s: &str| {
                s.parse::<SocketAddr>()
                    .map_err(|_| format!("{flag}: {s:?} is not ADDR:PORT"))
            };
            match flag.as_str() {
                "--key" => {
                    key = Some(PreSharedKey::from_hex(value).map_err(|e| format!("--key: {e:?}"))?)
                }
                "--udp" => transport = Some(Transport::Udp(addr(value)?)),
                "--interface" => transport = Some(Transport::Interface(value.clone())),
                "--dgram" => {
                    let (l, r) = value.split_once(',').ok_or("--dgram takes LOCAL,REMOTE")?;
                    transport = Some(Transport::Dgram {
                        local: addr(l)?,
                        remote: addr(r)?,
                    });
                }
                "--lease-ms" => {
                    lease_ms = value
                        .parse()
                        .ok()
                        .filter(|&ms| (100..=600_000).contains(&ms))
                        .ok_or("--lease-ms takes 100 to 600000")?
                }
                "--mac" => mac = parse_mac(value).ok_or("--mac takes a unicast MAC")?,
                other => return Err(format!("unknown option {other}")),
            }
        }
        Ok(WitnessConfig {
            key: key.ok_or("--key is required")?,
            transport: transport.ok_or("--udp or --dgram is required")?,
            lease_ms,
            mac,
        })
    }
}

/// A random 64-bit id.
fn random_id() -> io::Result<u64> {
    let mut bytes = [0u8; 8];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(u64::from_le_bytes(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where the witness's messages come from and go.
enum Endpoint {
    /// Sealed messages in datagrams; replies to their sender.
    Udp(UdpSocket),
    /// Ethernet frames in datagrams from and to QEMU-style `dgram` peers.
    Dgram(UdpSocket, SocketAddr),
    /// Ethernet frames on an interface.
    Packet(packet::PacketSocket),
}

/// How long a receive waits before the stop flag is looked at again.
const RECV_TIMEOUT: Duration = Duration::from_millis(50);

impl Endpoint {
    /// Opens `transport`; returns the endpoint, how it is reached (for the first line), and
    /// the witness's MAC on raw Ethernet.
    fn open(transport: &Transport, mac: [u8; 6]) -> io::Result<(Endpoint, String, [u8; 6])> {
        let udp = |addr: SocketAddr| -> io::Result<UdpSocket> {
            let socket = UdpSocket::bind(addr)?;
            socket.set_read_timeout(Some(RECV_TIMEOUT))?;
            Ok(socket)
        };
        Ok(match transport {
            Transport::Udp(addr) => (Endpoint::Udp(udp(*addr)?), format!("UDP {addr}"), mac),
            Transport::Dgram { local, remote } => (
                Endpoint::Dgram(udp(*local)?, *remote),
                format!("raw Ethernet via {local} -> {remote}"),
                mac,
            ),
            Transport::Interface(name) => {
                let socket = packet::PacketSocket::open(name, WITNESS_ETHERTYPE, RECV_TIMEOUT)?;
                let mac = socket.mac;
                let how = format!("raw Ethernet on {name}");
                (Endpoint::Packet(socket), how, mac)
            }
        })
    }

    /// The next message into `buf`: its length and sender (datagrams), `None` on a timeout.
    fn recv(&self, buf: &mut [u8]) -> io::Result<Option<(usize, Option<SocketAddr>)>> {
        let got = match self {
            Endpoint::Udp(s) | Endpoint::Dgram(s, _) => s.recv_from(buf).map(|(n, a)| (n, Some(a))),
            Endpoint::Packet(p) => p.recv(buf).map(|n| (n, None)),
        };
        match got {
            Ok(got) => Ok(Some(got)),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Hands `message` (a datagram, or a frame) to `witness` and sends its reply back the way
    /// it came (best effort: the host asks again).
    fn answer(
        &self,
        witness: &mut Witness,
        now_ms: u64,
        message: &[u8],
        from: Option<SocketAddr>,
        mac: [u8; 6],
    ) {
        let framed = !matches!(self, Endpoint::Udp(_));
        let payload = match framed {
            false => message,
            true if message.len() >= 14 && message[12..14] == WITNESS_ETHERTYPE => &message[14..],
            true => return,
        };
        let Some(reply) = witness.on_message(now_ms, payload) else {
            return;
        };
        let mut frame = Vec::with_capacity(14 + reply.len());
        if framed {
            frame.extend_from_slice(&message[6..12]);
            frame.extend_from_slice(&mac);
            frame.extend_from_slice(&WITNESS_ETHERTYPE);
        }
        frame.extend_from_slice(&reply);
        let _ = match (self, from) {
            (Endpoint::Udp(s), Some(to)) => s.send_to(&frame, to).map(drop),
            (Endpoint::Dgram(s, remote), _) => s.send_to(&frame, remote).map(drop),
            (Endpoint::Packet(p), _) => p.send(&frame),
            (Endpoint::Udp(_), None) => Ok(()),
        };
    }
}

/// Serves lease requests until `stop` is set, logging to `out`.
///
/// # Errors
/// The socket could not be opened.
pub fn run(config: &WitnessConfig, stop: &AtomicBool, out: &mut dyn Write) -> io::Result<()> {
    let (endpoint, how, mac) = Endpoint::open(&config.transport, config.mac)?;
    let start = Instant::now();
    let id = random_id()?;
    let mut witness = Witness::new(
        config.key.clone(),
        ChaCha20::apply_portable,
        id,
        config.lease_ms,
        0,
    );
    writeln!(
        out,
        "castor-witness: listening on {how}, leases of {} ms, id {id:016x}",
        config.lease_ms
    )?;
    out.flush()?;
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        let Some((n, from)) = endpoint.recv(&mut buf)? else {
            continue;
        };
        let now_ms = start.elapsed().as_millis() as u64;
        endpoint.answer(&mut witness, now_ms, &buf[..n], from, mac);
        for (pair, holder) in witness.take_changes() {
            writeln!(
                out,
                "castor-witness: pair {} lease to host {holder:016x}",
                hex(&pair[..8])
            )?;
            out.flush()?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use castor_ft::link::RandomSource;
    use castor_ft::witness::{LeaseClient, Want};
    use std::sync::Arc;

    const KEY: &str = "2b7e151628aed2a6abf7158809cf4f3c762e7160f38b4da56a784d9045190cfe";

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn options_are_checked() {
        let c = WitnessConfig::from_args(&args(&format!(
            "--key {KEY} --dgram 127.0.0.1:1,127.0.0.1:2 --lease-ms 500"
        )))
        .unwrap();
        assert_eq!(c.lease_ms, 500);
        assert!(matches!(c.transport, Transport::Dgram { .. }));
        for bad in [
            "--udp 127.0.0.1:1".to_string(),
            format!("--key {KEY}"),
            format!("--key {KEY} --udp nowhere"),
            format!("--key {KEY} --udp 127.0.0.1:1 --lease-ms 5"),
            format!("--key {KEY} --udp 127.0.0.1:1 --mac 01:00:00:00:00:01"),
            format!("--key {KEY} --udp 127.0.0.1:1 --bogus 1"),
        ] {
            assert!(WitnessConfig::from_args(&args(&bad)).is_err(), "{bad}");
        }
    }

    struct Counter(u64);
    impl RandomSource for Counter {
        fn next_u64(&mut self) -> u64 {
            self.0 += 1;
            self.0
        }
    }

    #[test]
    fn a_udp_witness_grants_the_lease_after_its_start_grace() {
        let port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = WitnessConfig::from_args(&args(&format!(
            "--key {KEY} --udp 127.0.0.1:{port} --lease-ms 200"
        )))
        .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (s, c) = (Arc::clone(&stop), config.clone());
        let server = std::thread::spawn(move || {
            let mut log = Vec::new();
            run(&c, &s, &mut log).unwrap();
            String::from_utf8(log).unwrap()
        });
        let host = UdpSocket::bind("127.0.0.1:0").unwrap();
        host.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut client = LeaseClient::new(
            config.key.clone(),
            ChaCha20::apply_portable,
            9,
            [1; 16],
            Want::Hold,
        );
        let start = Instant::now();
        let mut random = Counter(0);
        let granted = loop {
            assert!(start.elapsed() < Duration::from_secs(5), "never granted");
            let now = start.elapsed().as_millis() as u64;
            if let Some(req) = client.poll(now, &mut random) {
                host.send_to(&req, ("127.0.0.1", port)).unwrap();
            }
            let mut buf = [0u8; 256];
            if let Ok(n) = host.recv(&mut buf)
                && let Some(reply) = client.on_reply(start.elapsed().as_millis() as u64, &buf[..n])
                && reply.granted
            {
                break start.elapsed();
            }
        };
        assert!(
            granted >= Duration::from_millis(200),
            "granted during the grace"
        );
        stop.store(true, Ordering::Relaxed);
        let log = server.join().unwrap();
        assert!(log.contains("lease to host 0000000000000009"), "{log}");
    }
}
