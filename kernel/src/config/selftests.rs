// SPDX-License-Identifier: MIT OR Apache-2.0
//! The in-kernel self tests `selftest=` can name: one list, from which the parser, its error
//! text, the README check and the kernel's dispatch (an exhaustive `match` on [`SelfTest`]) all
//! follow.

/// An in-kernel self test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelfTest {
    /// The command-line parser as compiled for the kernel.
    Config,
    /// The frame allocator.
    Alloc,
    /// The kernel heap.
    Heap,
    /// The peer link's SSE2 cipher, and lending the vector registers without disturbing them.
    Cipher,
    /// The kernel page tables' layout.
    Paging,
    /// No mapping both writable and executable.
    Wx,
    /// The LAPIC timer against the PIT.
    Timer,
    /// Every listed CPU came up.
    Smp,
    /// VMX root operation.
    Vmx,
    /// SVM enabled.
    Svm,
    /// The built-in guests.
    Guests,
    /// A guest's triple fault.
    Triple,
    /// Hostile guests.
    Hostile,
    /// Dirty-page tracking.
    Dirty,
    /// Saving and restoring a vCPU's state.
    CpuState,
    /// Two NICs talking (needs a machine with two).
    Net,
    /// Panics on purpose (ends the machine).
    Panic,
    /// Writes to kernel text on purpose (ends the machine).
    Fault,
    /// Runs off the kernel stack on purpose (ends the machine).
    Stack,
    /// Runs off an application processor's stack on purpose (ends that CPU, then the machine).
    ApStack,
}

/// When `selftest=` runs a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// With `all`, or when named.
    All,
    /// Only when named: it needs hardware not every machine has.
    NamedOnly,
    /// Only when named: it ends the machine.
    Destructive,
}

impl SelfTest {
    /// Every self test, in the order they run.
    pub const ALL: [SelfTest; 20] = [
        SelfTest::Config,
        SelfTest::Alloc,
        SelfTest::Heap,
        SelfTest::Cipher,
        SelfTest::Paging,
        SelfTest::Wx,
        SelfTest::Timer,
        SelfTest::Smp,
        SelfTest::Vmx,
        SelfTest::Svm,
        SelfTest::Guests,
        SelfTest::Triple,
        SelfTest::Hostile,
        SelfTest::Dirty,
        SelfTest::CpuState,
        SelfTest::Net,
        SelfTest::Panic,
        SelfTest::Fault,
        SelfTest::Stack,
        SelfTest::ApStack,
    ];

    /// The name `selftest=` and the console use.
    pub const fn name(self) -> &'static str {
        match self {
            SelfTest::Config => "config",
            SelfTest::Alloc => "alloc",
            SelfTest::Heap => "heap",
            SelfTest::Cipher => "cipher",
            SelfTest::Paging => "paging",
            SelfTest::Wx => "wx",
            SelfTest::Timer => "timer",
            SelfTest::Smp => "smp",
            SelfTest::Vmx => "vmx",
            SelfTest::Svm => "svm",
            SelfTest::Guests => "guests",
            SelfTest::Triple => "triple",
            SelfTest::Hostile => "hostile",
            SelfTest::Dirty => "dirty",
            SelfTest::CpuState => "cpustate",
            SelfTest::Net => "net",
            SelfTest::Panic => "panic",
            SelfTest::Fault => "fault",
            SelfTest::Stack => "stack",
            SelfTest::ApStack => "apstack",
        }
    }

    /// When it runs.
    pub const fn selection(self) -> Selection {
        match self {
            SelfTest::Net => Selection::NamedOnly,
            SelfTest::Panic | SelfTest::Fault | SelfTest::Stack | SelfTest::ApStack => {
                Selection::Destructive
            }
            _ => Selection::All,
        }
    }

    /// The test called `name`.
    pub fn named(name: &str) -> Option<SelfTest> {
        SelfTest::ALL.into_iter().find(|t| t.name() == name)
    }

    fn bit(self) -> u32 {
        1 << self as u32
    }
}

/// Which self tests to run: a bit per [`SelfTest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SelfTests(u32);

impl SelfTests {
    /// Whether `test` was selected.
    pub fn contains(self, test: SelfTest) -> bool {
        self.0 & test.bit() != 0
    }

    /// Whether any test was selected.
    pub fn any(self) -> bool {
        self.0 != 0
    }

    /// The selected tests, in the order they run.
    pub fn iter(self) -> impl Iterator<Item = SelfTest> {
        SelfTest::ALL.into_iter().filter(move |t| self.contains(*t))
    }

    /// `all`, `none` or a comma-separated list of names; `None` if a name is unknown.
    pub fn parse(value: &str) -> Option<SelfTests> {
        match value {
            "all" => Some(Self::from_tests(
                SelfTest::ALL
                    .into_iter()
                    .filter(|t| t.selection() == Selection::All),
            )),
            "none" => Some(SelfTests(0)),
            list => list.split(',').try_fold(SelfTests(0), |tests, name| {
                SelfTest::named(name).map(|t| SelfTests(tests.0 | t.bit()))
            }),
        }
    }

    fn from_tests(tests: impl Iterator<Item = SelfTest>) -> SelfTests {
        SelfTests(tests.fold(0, |bits, t| bits | t.bit()))
    }
}
