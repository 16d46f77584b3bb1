// SPDX-License-Identifier: MIT OR Apache-2.0
//! A memo of recent instruction decodes. AMD-V without next-RIP fetches every intercepted
//! instruction (a hypercall, CPUID, an MSR access, HLT) through the guest's page tables and
//! decodes it to find where it ends, and both back ends do so for every access to a device
//! page (EPT violations and nested page faults name only the address); a guest tends to exit
//! at the same few places.
//!
//! An entry keeps the decode's inputs (paging registers, linear address, code mode) and every
//! read the fetch made of guest memory: the paging-structure entries of each walk and the
//! instruction bytes, with what they returned. The fetch and the decode are deterministic
//! functions of those inputs and of what each read returns (which read comes next depends only
//! on the ones before), so when every recorded read returns the same again, a fresh fetch would
//! make the same reads and decode the same instruction. Any change to a mapping on the way or
//! to the bytes is a miss and a fresh decode. A hit costs the reads only (no walk logic and no
//! decoding), and it is never stale: nothing is assumed about when the guest flushes its TLB.

use super::{CodeMode, Decoded, FetchError, GuestRead, PagingState};

/// Entries kept (the guest's exit sites last seen; the oldest makes way).
const ENTRIES: usize = 4;
/// Reads one fetch can make: two walks of at most five levels and two reads of bytes (an
/// instruction across a page boundary).
const MAX_READS: usize = 12;
/// Longest read recorded: an instruction's 15 bytes.
const MAX_READ_LEN: usize = 16;

/// One read of guest memory and what it returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Read {
    gpa: u64,
    /// [`GuestRead::read_u64`] (a paging-structure entry) rather than [`GuestRead::read`].
    entry: bool,
    len: u8,
    ok: bool,
    data: [u8; MAX_READ_LEN],
}

impl Read {
    /// Whether reading again returns the same.
    fn repeats<M: GuestRead + ?Sized>(&self, mem: &mut M) -> bool {
        if self.entry {
            let now = mem.read_u64(self.gpa);
            return match now {
                Some(v) => self.ok && v.to_le_bytes()[..] == self.data[..8],
                None => !self.ok,
            };
        }
        let len = usize::from(self.len);
        let mut buf = [0u8; MAX_READ_LEN];
        let ok = mem.read(self.gpa, &mut buf[..len]);
        ok == self.ok && (!ok || buf[..len] == self.data[..len])
    }
}

/// A [`GuestRead`] that passes reads through and records them.
struct Recorder<'a, M: ?Sized> {
    mem: &'a mut M,
    reads: [Option<Read>; MAX_READS],
    count: usize,
    /// More reads, or longer ones, than an entry holds: the decode is not kept.
    overflow: bool,
}

impl<M: GuestRead + ?Sized> Recorder<'_, M> {
    fn record(&mut self, gpa: u64, entry: bool, bytes: &[u8], ok: bool) {
        if self.count == MAX_READS || bytes.len() > MAX_READ_LEN {
            self.overflow = true;
            return;
        }
        let mut data = [0u8; MAX_READ_LEN];
        if ok {
            data[..bytes.len()].copy_from_slice(bytes);
        }
        self.reads[self.count] = Some(Read {
            gpa,
            entry,
            len: bytes.len() as u8,
            ok,
            data,
        });
        self.count += 1;
    }
}

impl<M: GuestRead + ?Sized> GuestRead for Recorder<'_, M> {
    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> bool {
        let ok = self.mem.read(gpa, buf);
        self.record(gpa, false, buf, ok);
        ok
    }

    fn read_u64(&mut self, gpa: u64) -> Option<u64> {
        let value = self.mem.read_u64(gpa);
        self.record(
            gpa,
            true,
            &value.unwrap_or(0).to_le_bytes(),
            value.is_some(),
        );
        value
    }
}

/// A decode and what it read.
#[derive(Clone, Copy, Debug)]
struct Entry<T> {
    state: PagingState,
    linear: u64,
    mode: CodeMode,
    reads: [Option<Read>; MAX_READS],
    decoded: T,
}

/// What a decoder reads an instruction through: its paging state, the memory, the instruction's
/// linear address and the code mode ([`super::fetch_and_decode`], [`super::mmio::fetch`]).
pub type Fetch<T, E> = fn(&PagingState, &mut dyn GuestRead, u64, CodeMode) -> Result<T, E>;

/// Recent decodes by one decoder (see the module documentation).
#[derive(Debug)]
pub struct DecodeCache<T> {
    entries: [Option<Entry<T>>; ENTRIES],
    /// The entry the next new decode replaces.
    next: usize,
    /// Decodes answered from an entry.
    pub hits: u64,
    /// Decodes made afresh.
    pub misses: u64,
}

impl<T> Default for DecodeCache<T> {
    fn default() -> Self {
        Self {
            entries: [const { None }; ENTRIES],
            next: 0,
            hits: 0,
            misses: 0,
        }
    }
}

impl DecodeCache<Decoded> {
    /// [`super::fetch_and_decode`], answered from an entry whose reads all repeat.
    pub fn fetch_and_decode<M: GuestRead + ?Sized>(
        &mut self,
        state: &PagingState,
        mem: &mut M,
        linear: u64,
        mode: CodeMode,
    ) -> Result<Decoded, FetchError> {
        self.get(state, mem, linear, mode, |s, m, l, c| {
            super::fetch_and_decode(s, m, l, c)
        })
    }
}

impl<T: Copy> DecodeCache<T> {
    /// `fetch` of the instruction at `linear`, answered from an entry whose reads all repeat.
    pub fn get<M: GuestRead + ?Sized, E>(
        &mut self,
        state: &PagingState,
        mem: &mut M,
        linear: u64,
        mode: CodeMode,
        fetch: Fetch<T, E>,
    ) -> Result<T, E> {
        let same = self.entries.iter().position(|e| {
            e.as_ref()
                .is_some_and(|e| e.state == *state && e.linear == linear && e.mode == mode)
        });
        if let Some(i) = same
            && let Some(e) = &self.entries[i]
            && e.reads.iter().flatten().all(|r| r.repeats(mem))
        {
            self.hits += 1;
            return Ok(e.decoded);
        }
        let slot = same.unwrap_or_else(|| {
            let victim = self.next;
            self.next = (victim + 1) % ENTRIES;
            victim
        });
        self.misses += 1;
        let mut recorder = Recorder {
            mem,
            reads: [None; MAX_READS],
            count: 0,
            overflow: false,
        };
        let result = fetch(state, &mut recorder, linear, mode);
        self.entries[slot] = match result {
            Ok(decoded) if !recorder.overflow => Some(Entry {
                state: *state,
                linear,
                mode,
                reads: recorder.reads,
                decoded,
            }),
            _ => None,
        };
        result
    }
}
