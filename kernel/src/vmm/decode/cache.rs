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

use super::walk::Word;
use super::{CodeMode, Decoded, FetchError, GuestRead, PagingState};

/// Entries kept (the guest's exit sites last seen; the oldest makes way).
const ENTRIES: usize = 4;
/// Reads one fetch can make: two walks of at most five levels and two reads of bytes (an
/// instruction across a page boundary).
const MAX_READS: usize = 12;
/// Longest read recorded: an instruction's 15 bytes.
const MAX_READ_LEN: usize = 16;
/// Words a hit compares at most: each entry one, each read of bytes two (more reads than
/// this, from a walk of five levels, are checked read by read).
const MAX_WORDS: usize = 14;

/// One read of guest memory and what it returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Read {
    gpa: u64,
    /// [`GuestRead::read_u64`] (a paging-structure entry) rather than [`GuestRead::read`].
    entry: bool,
    len: u8,
    ok: bool,
    /// The bytes read, as two little-endian words, zero beyond `len`.
    data: [u64; 2],
}

/// The low `bytes` bytes of a word (all of it from 8 on).
fn low_bytes(bytes: usize) -> u64 {
    match bytes {
        8.. => u64::MAX,
        n => (1 << (8 * n)) - 1,
    }
}

impl Read {
    /// Whether reading again returns the same, read by read (a hit checks its entry's
    /// [`words`](Self::words) in one call first, [`Entry::repeats`]).
    fn repeats<M: GuestRead + ?Sized>(&self, mem: &mut M) -> bool {
        if self.entry {
            return match mem.read_u64(self.gpa) {
                Some(v) => self.ok && v == self.data[0],
                None => !self.ok,
            };
        }
        let len = usize::from(self.len);
        let mut buf = [0u8; MAX_READ_LEN];
        let ok = mem.read(self.gpa, &mut buf[..len]);
        ok == self.ok && (!ok || words(&buf[..len]) == self.data)
    }

    /// The words that hold what a successful read returned, and how many there are: the
    /// entry itself, or the bytes' one or two words with only their bytes compared.
    fn words(&self) -> ([Word; 2], usize) {
        let len = match self.entry {
            true => 8,
            false => usize::from(self.len),
        };
        let word = |i: usize, bytes| Word {
            gpa: self.gpa + 8 * i as u64,
            value: self.data[i],
            mask: low_bytes(bytes),
        };
        match len {
            ..=8 => ([word(0, len), Word::default()], 1),
            _ => ([word(0, 8), word(1, len - 8)], 2),
        }
    }
}

/// Up to 16 bytes as two little-endian words, zero-padded.
fn words(bytes: &[u8]) -> [u64; 2] {
    let mut padded = [0u8; MAX_READ_LEN];
    padded[..bytes.len()].copy_from_slice(bytes);
    let (lo, hi) = padded.split_at(8);
    [
        u64::from_le_bytes(lo.try_into().unwrap_or([0; 8])),
        u64::from_le_bytes(hi.try_into().unwrap_or([0; 8])),
    ]
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
        self.reads[self.count] = Some(Read {
            gpa,
            entry,
            len: bytes.len() as u8,
            ok,
            data: if ok { words(bytes) } else { [0; 2] },
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
    /// The reads as words, checked in one call, when every read succeeded and they fit.
    words: Option<Words>,
    decoded: T,
}

/// Up to [`MAX_WORDS`] words.
#[derive(Clone, Copy, Debug)]
struct Words {
    words: [Word; MAX_WORDS],
    count: usize,
}

impl<T> Entry<T> {
    /// Whether every read the fetch made returns the same again: its words in one call, or
    /// read by read where they cannot say (no words, or some run past the end of RAM).
    fn repeats<M: GuestRead + ?Sized>(&self, mem: &mut M) -> bool {
        if let Some(w) = &self.words
            && let Some(same) = mem.words_match(&w.words[..w.count])
        {
            return same;
        }
        self.reads.iter().flatten().all(|r| r.repeats(mem))
    }
}

/// `reads` as words for [`GuestRead::words_match`], if every read succeeded and they fit.
fn as_words(reads: &[Option<Read>]) -> Option<Words> {
    let mut all = Words {
        words: [Word::default(); MAX_WORDS],
        count: 0,
    };
    for r in reads.iter().flatten() {
        let (words, n) = r.words();
        if !r.ok || all.count + n > MAX_WORDS {
            return None;
        }
        all.words[all.count..all.count + n].copy_from_slice(&words[..n]);
        all.count += n;
    }
    Some(all)
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
        // The address first: it tells the guest's few exit sites apart at one compare.
        let same = self.entries.iter().position(|e| {
            e.as_ref()
                .is_some_and(|e| e.linear == linear && e.mode == mode && e.state == *state)
        });
        if let Some(i) = same
            && let Some(e) = &self.entries[i]
            && e.repeats(mem)
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
                words: as_words(&recorder.reads),
                reads: recorder.reads,
                decoded,
            }),
            _ => None,
        };
        result
    }
}
