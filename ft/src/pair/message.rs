// SPDX-License-Identifier: MIT OR Apache-2.0
//! Messages between primary and backup, one per peer-link message: a tag byte, then a body.
//!
//! ```text
//! 1 HELLO     version u16, role u8 (1 primary, 2 backup), flags u8 (bit 0: a primary whose
//!             guest runs already, offered `cpu`: a new backup must resume that; bit 1: the
//!             sender takes a witness's lease, `witness=on`), epoch_min_ms u32,
//!             epoch_max_ms u32, guest_ram u64, guest_image [u8; 32],
//!             cpu: the CPU model the sender offers guests (see `cpu_model`)   (308 bytes)
//! 2 STREAM    checkpoint stream bytes (the first STREAM is the 48-byte stream header)
//! 3 ACK       epoch u64: the backup applied this epoch
//! 4 RELEASED  epoch u64: the primary released the output of every epoch up to this one
//! 5 ENDED     status u64: the guest ended on the primary (with this exit status) and its
//!             final output was released: the backup stands down
//! ```
//!
//! Integers are little-endian. Decoding is strict: wrong lengths, unknown tags, nonzero
//! padding and CPU models no CPU could report are errors, never panics.

use alloc::boxed::Box;
use core::fmt;

use super::cpu_model::{self, CpuMismatch, CpuModel};
use crate::link::Role;

/// Version of the pair protocol carried in `HELLO` (2: with the sender's CPU model; 3: with
/// the running flag, and pre-copy rounds on the stream; 4: checkpoint stream format 2, with
/// dirty runs and the XXH3 epoch digest). Hosts of different versions refuse to pair at the
/// HELLO, with both versions, instead of refusing each other's checkpoints later.
pub const PAIR_VERSION: u16 = 4;
/// `HELLO` flag: the sender is a primary whose guest runs already (re-protection).
const FLAG_RUNNING: u8 = 1;
/// `HELLO` flag: the sender runs alone only with a witness's lease (`witness=on`).
const FLAG_WITNESS: u8 = 2;

const TAG_HELLO: u8 = 1;
const TAG_STREAM: u8 = 2;
const TAG_ACK: u8 = 3;
const TAG_RELEASED: u8 = 4;
const TAG_ENDED: u8 = 5;
const HELLO_FIXED_LEN: usize = 52;
const HELLO_BODY_LEN: usize = HELLO_FIXED_LEN + cpu_model::ENCODED_LEN;

/// One side's guest configuration, exchanged right after the link pairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello {
    /// Pair protocol version.
    pub version: u16,
    /// The sender's role.
    pub role: Role,
    /// Shortest epoch (ms) the sender is configured with.
    pub epoch_min_ms: u32,
    /// Longest epoch (ms).
    pub epoch_max_ms: u32,
    /// Guest RAM in bytes.
    pub guest_ram: u64,
    /// BLAKE3 of the guest image and its command line.
    pub guest_image: [u8; 32],
    /// The CPU the sender offers guests: with `running`, the one its guest was offered.
    pub cpu: CpuModel,
    /// A primary whose guest runs already: a backup joins it (re-protection) and must be able
    /// to resume a guest offered `cpu` exactly.
    pub running: bool,
    /// The sender runs the guest without its peer only with a witness's lease: both hosts of
    /// a pair must agree, or one side could run alone while the other waits for the witness.
    pub witness: bool,
}

/// A decoded message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// The sender's configuration.
    Hello(Box<Hello>),
    /// Checkpoint stream bytes.
    Stream(&'a [u8]),
    /// The backup applied this epoch.
    Ack(u64),
    /// The primary released the output of every epoch up to this one.
    Released(u64),
    /// The guest ended on the primary with this status; the backup stands down.
    Ended(u64),
}

/// Why a message was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageError {
    /// Empty message.
    Empty,
    /// Unknown tag.
    UnknownTag(u8),
    /// The body has the wrong length for its tag.
    BadLength {
        /// The tag.
        tag: u8,
        /// Body bytes received.
        len: usize,
    },
    /// A `HELLO` of another pair protocol version (whose layout this host cannot know).
    Version(u16),
    /// A role byte other than 1 or 2, nonzero padding, or a CPU model field no CPU reports.
    BadField(&'static str),
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty pair message"),
            Self::UnknownTag(t) => write!(f, "unknown pair message tag {t}"),
            Self::BadLength { tag, len } => {
                write!(f, "pair message tag {tag} with a {len}-byte body")
            }
            Self::Version(v) => write!(
                f,
                "the peer speaks pair protocol version {v}, this host {PAIR_VERSION}"
            ),
            Self::BadField(what) => write!(f, "pair message with a bad {what}"),
        }
    }
}

/// Why two hosts cannot pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PairError {
    /// Both hosts have the same role.
    RoleConflict(Role),
    /// Different pair protocol versions.
    Version {
        /// Ours.
        ours: u16,
        /// The peer's.
        theirs: u16,
    },
    /// Different guest RAM sizes.
    GuestRam {
        /// Ours (bytes).
        ours: u64,
        /// The peer's (bytes).
        theirs: u64,
    },
    /// Different guest images or command lines.
    GuestImage {
        /// Ours (BLAKE3).
        ours: [u8; 32],
        /// The peer's.
        theirs: [u8; 32],
    },
    /// The hosts cannot offer the guest a CPU both can run it on.
    Cpu(CpuMismatch),
    /// One host takes a witness's lease and the other does not.
    Witness {
        /// Ours.
        ours: bool,
    },
}

fn hex8(bytes: &[u8; 32], f: &mut fmt::Formatter<'_>) -> fmt::Result {
    bytes[..8].iter().try_for_each(|b| write!(f, "{b:02x}"))
}

impl fmt::Display for PairError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RoleConflict(role) => write!(f, "both hosts are configured as role={role}"),
            Self::Version { ours, theirs } => {
                write!(f, "pair protocol version {ours} here, {theirs} on the peer")
            }
            Self::GuestRam { ours, theirs } => write!(
                f,
                "guest RAM differs: {} MiB here, {} MiB on the peer (give both the same guest_ram=)",
                ours >> 20,
                theirs >> 20
            ),
            Self::GuestImage { ours, theirs } => {
                f.write_str("the guest images or their arguments differ: BLAKE3 ")?;
                hex8(ours, f)?;
                f.write_str(" here, ")?;
                hex8(theirs, f)?;
                f.write_str(" on the peer")
            }
            Self::Cpu(why) => why.fmt(f),
            Self::Witness { ours } => {
                let (here, there) = if *ours { ("on", "off") } else { ("off", "on") };
                write!(
                    f,
                    "witness= differs: {here} here, {there} on the peer (give both the same \
                     witness=)"
                )
            }
        }
    }
}

/// Where a guest's physical address space ends, given its RAM: its RAM from 0, and the MMIO
/// window below 4 GiB (local and I/O APIC) that every guest has.
fn guest_span(guest_ram: u64) -> u64 {
    guest_ram.max(1 << 32)
}

impl Hello {
    /// Whether this host (`self`) can pair with a peer that sent `peer`, and if so the CPU
    /// model the guest is offered on both: the baseline of the primary's and the backup's
    /// ([`CpuModel::baseline`]), which both hosts compute alike; or, when the primary's guest
    /// runs already, the model it was offered, which the backup must be able to resume.
    ///
    /// # Errors
    /// The first mismatch, in the order role, version, RAM, image, witness, CPU.
    pub fn check(&self, peer: &Hello) -> Result<CpuModel, PairError> {
        if self.role == peer.role {
            return Err(PairError::RoleConflict(self.role));
        }
        if self.version != peer.version {
            return Err(PairError::Version {
                ours: self.version,
                theirs: peer.version,
            });
        }
        if self.guest_ram != peer.guest_ram {
            return Err(PairError::GuestRam {
                ours: self.guest_ram,
                theirs: peer.guest_ram,
            });
        }
        if self.guest_image != peer.guest_image {
            return Err(PairError::GuestImage {
                ours: self.guest_image,
                theirs: peer.guest_image,
            });
        }
        if self.witness != peer.witness {
            return Err(PairError::Witness { ours: self.witness });
        }
        let (primary, backup) = match self.role {
            Role::Primary => (self, peer),
            Role::Backup => (peer, self),
        };
        let span = guest_span(self.guest_ram);
        if !primary.running {
            return CpuModel::baseline(&primary.cpu, &backup.cpu, span).map_err(PairError::Cpu);
        }
        primary.cpu.can_resume(&backup.cpu).map_err(|why| {
            PairError::Cpu(CpuMismatch::Resume {
                host: Role::Backup,
                why,
            })
        })?;
        primary.cpu.check_guest_span(span).map_err(PairError::Cpu)?;
        Ok(primary.cpu)
    }
}

impl Message<'_> {
    /// The message's bytes.
    #[must_use]
    pub fn encode(&self) -> alloc::vec::Vec<u8> {
        let mut out = alloc::vec::Vec::new();
        match self {
            Self::Hello(h) => {
                out.push(TAG_HELLO);
                out.extend_from_slice(&h.version.to_le_bytes());
                out.push(match h.role {
                    Role::Primary => 1,
                    Role::Backup => 2,
                });
                let flag = |on: bool, flag: u8| if on { flag } else { 0 };
                out.push(flag(h.running, FLAG_RUNNING) | flag(h.witness, FLAG_WITNESS));
                out.extend_from_slice(&h.epoch_min_ms.to_le_bytes());
                out.extend_from_slice(&h.epoch_max_ms.to_le_bytes());
                out.extend_from_slice(&h.guest_ram.to_le_bytes());
                out.extend_from_slice(&h.guest_image);
                h.cpu.encode_into(&mut out);
            }
            Self::Stream(bytes) => {
                out.reserve(1 + bytes.len());
                out.push(TAG_STREAM);
                out.extend_from_slice(bytes);
            }
            Self::Ack(epoch) => {
                out.push(TAG_ACK);
                out.extend_from_slice(&epoch.to_le_bytes());
            }
            Self::Released(epoch) => {
                out.push(TAG_RELEASED);
                out.extend_from_slice(&epoch.to_le_bytes());
            }
            Self::Ended(status) => {
                out.push(TAG_ENDED);
                out.extend_from_slice(&status.to_le_bytes());
            }
        }
        out
    }

    /// Decodes one message.
    ///
    /// # Errors
    /// See [`MessageError`].
    pub fn decode(bytes: &[u8]) -> Result<Message<'_>, MessageError> {
        let (&tag, body) = bytes.split_first().ok_or(MessageError::Empty)?;
        let bad_len = MessageError::BadLength {
            tag,
            len: body.len(),
        };
        match tag {
            TAG_HELLO => {
                if let [lo, hi, ..] = *body {
                    let version = u16::from_le_bytes([lo, hi]);
                    if version != PAIR_VERSION {
                        return Err(MessageError::Version(version));
                    }
                }
                let b: &[u8; HELLO_BODY_LEN] = body.try_into().map_err(|_| bad_len)?;
                let role = match b[2] {
                    1 => Role::Primary,
                    2 => Role::Backup,
                    _ => return Err(MessageError::BadField("role")),
                };
                let flags = b[3];
                let running = flags & FLAG_RUNNING != 0;
                if flags & !(FLAG_RUNNING | FLAG_WITNESS) != 0 || (running && role != Role::Primary)
                {
                    return Err(MessageError::BadField("flags"));
                }
                let u32_at =
                    |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
                let mut ram = [0u8; 8];
                ram.copy_from_slice(&b[12..20]);
                let mut image = [0u8; 32];
                image.copy_from_slice(&b[20..HELLO_FIXED_LEN]);
                let cpu = b[HELLO_FIXED_LEN..]
                    .try_into()
                    .map_err(|_| bad_len)
                    .and_then(|cpu| CpuModel::decode(cpu).map_err(MessageError::BadField))?;
                Ok(Message::Hello(Box::new(Hello {
                    version: u16::from_le_bytes([b[0], b[1]]),
                    role,
                    epoch_min_ms: u32_at(4),
                    epoch_max_ms: u32_at(8),
                    guest_ram: u64::from_le_bytes(ram),
                    guest_image: image,
                    cpu,
                    running,
                    witness: flags & FLAG_WITNESS != 0,
                })))
            }
            TAG_STREAM if !body.is_empty() => Ok(Message::Stream(body)),
            TAG_ACK | TAG_RELEASED | TAG_ENDED => {
                let e: [u8; 8] = body.try_into().map_err(|_| bad_len)?;
                let value = u64::from_le_bytes(e);
                Ok(match tag {
                    TAG_ACK => Message::Ack(value),
                    TAG_RELEASED => Message::Released(value),
                    _ => Message::Ended(value),
                })
            }
            TAG_STREAM => Err(bad_len),
            other => Err(MessageError::UnknownTag(other)),
        }
    }
}
