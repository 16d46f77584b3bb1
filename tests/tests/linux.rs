//! A stock Linux kernel runs under Castor: Debian's cloud kernel with a busybox initramfs,
//! booted by the Linux/x86 boot protocol under QEMU (AMD-V under TCG) and Bochs (VT-x), runs
//! a workload to `/init` and powers off; its results must equal those of the same kernel and
//! initramfs run natively in plain QEMU.
//!
//! The kernel and busybox are not in the repository: they are fetched once with `apt-get
//! download` into the target directory ([`castor_tests::linux`]). Offline the tests say
//! `SKIPPED` and why, and pass — except under CI (`CI` set, as `.ci/run` runs), where a
//! kernel must be had and its absence fails.

use castor_tests::contract::{self, GuestEnd, QEMU_EXIT_PASS};
use castor_tests::linux::{self, DebianGuest, INIT_PROLOGUE, SAY};
use castor_tests::qemu::Qemu;
use castor_tests::{Emulator, Outcome, Run, RunHandle};
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Guest RAM (MiB): Debian's kernel needs about 68 MiB from 16 MiB up before it reads its
/// memory map; the workload needs room for its files and sort.
const GUEST_RAM_MIB: u32 = 128;
/// How long the workload sleeps, in seconds.
const SLEEP_S: u64 = 4;

/// The workload `/init`: memory (a pipe through `tr`, a sort that holds its input), the page
/// cache (a file tree in tmpfs, copied and compared), floating point (awk), timers (`sleep`
/// measured by the guest's uptime and by its RTC, which Castor keeps on the host's clock) and
/// interrupts (the counts of the timer, the UART and the local APIC timer). Results are
/// printed as `result ...` lines, which must not depend on the machine.
fn workload_init() -> String {
    format!(
        r#"{INIT_PROLOGUE}say() {{ echo "{SAY}$*"; }}
say init
say result memory $(dd if=/dev/zero bs=1M count=24 2>/dev/null | tr '\000' x | md5sum | cut -d' ' -f1) $(seq 1 150000 | sort -r | md5sum | cut -d' ' -f1)
mkdir /tmp/tree
i=0
while [ $i -lt 48 ]; do seq $i 7 40000 > /tmp/tree/f$i; i=$((i+1)); done
cp -r /tmp/tree /tmp/copy
say result page-cache $(cat /tmp/copy/* | md5sum | cut -d' ' -f1) $(cat /tmp/tree/* | wc -c) $(diff -r /tmp/tree /tmp/copy && echo same)
say result fpu $(awk 'BEGIN {{ s = 0; for (i = 1; i <= 100000; i++) s += sqrt(i); printf "%.6f", s }}')
r0=$(cat /sys/class/rtc/rtc0/since_epoch); u0=$(cut -d' ' -f1 /proc/uptime)
say sleep-begin
sleep {SLEEP_S}
u1=$(cut -d' ' -f1 /proc/uptime); r1=$(cat /sys/class/rtc/rtc0/since_epoch)
say sleep-end rtc $((r1 - r0)) uptime $u0 $u1
say irq $(awk '$NF == "timer" || $NF == "ttyS0" || $1 == "LOC:" {{ printf "%s=%s ", ($1 == "LOC:" ? "LOC" : $NF), $2 }}' /proc/interrupts)
say done
poweroff -f
"#
    )
}

/// The Debian kernel and busybox, fetched once into the target directory.
fn debian() -> Option<&'static DebianGuest> {
    DebianGuest::for_tests(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("linux-guest"))
}

/// Where a Linux run happens: natively on the emulator or as Castor's guest.
#[derive(Clone, Copy, Debug)]
enum Host {
    /// Plain QEMU (TCG) booting the kernel itself, emulated time on the host clock.
    NativeQemu,
    /// Bochs booting the kernel through GRUB.
    NativeBochs,
    /// Castor under QEMU (AMD-V), emulated time on the host clock.
    CastorQemu,
    /// Castor under Bochs (VT-x).
    CastorBochs,
}

impl Host {
    fn castor(self) -> bool {
        matches!(self, Host::CastorQemu | Host::CastorBochs)
    }

    /// Starts `kernel` with `initrd` here.
    fn start(self, kernel: &Path, initrd: &Path, timeout: Duration) -> RunHandle {
        let qemu = || Emulator::Qemu(Qemu::kernel().host_clock());
        let run = match self {
            Host::NativeQemu | Host::CastorQemu => Run::new(qemu()),
            Host::NativeBochs | Host::CastorBochs => Run::new(Emulator::bochs()),
        };
        let run = match self.castor() {
            true => run
                .cmdline(&format!("guest=module guest_ram={GUEST_RAM_MIB}"))
                .memory_mib(GUEST_RAM_MIB + 128)
                .module("guest", kernel, linux::CONSOLE_ARGS)
                .module("module1", initrd, ""),
            false => run
                .linux(kernel)
                .cmdline(linux::CONSOLE_ARGS)
                .memory_mib(GUEST_RAM_MIB)
                .module("initramfs", initrd, "")
                // The kernel's own command line is echoed back; nothing Castor-specific applies.
                .fail_markers(&[]),
        };
        run.timeout(timeout).start().expect("starting the emulator")
    }
}

/// What one run of the workload printed.
struct Report {
    /// Seconds from the emulator's start to the workload's first line.
    to_init: f64,
    /// The `result ...` lines.
    results: Vec<String>,
    /// `sleep-end rtc R uptime U0 U1`: RTC seconds and uptime seconds the sleep took.
    rtc_s: u64,
    uptime_s: f64,
    /// Host seconds between `sleep-begin` and `sleep-end` reaching the console.
    host_s: f64,
    /// `irq` counts by name (`timer`, `ttyS0`, `LOC`).
    irqs: Vec<(String, u64)>,
    outcome: Outcome,
}

/// The workload's lines in a console, without the `castor-linux: ` prefix (Castor prefixes
/// guest lines with `[guest] `; a native console has none).
fn said(outcome: &Outcome) -> Vec<&str> {
    outcome
        .lines()
        .filter_map(|l| l.strip_prefix(contract::GUEST_PREFIX).or(Some(l)))
        .filter_map(|l| l.strip_prefix(SAY))
        .collect()
}

/// Runs the workload on `host`.
fn run_workload(host: Host, debian: &DebianGuest, timeout: Duration) -> Report {
    let initrd = debian.initramfs("workload.cpio", &workload_init());
    let mut run = host.start(&debian.kernel, &initrd, timeout);
    let started = Instant::now();
    let wait = |run: &mut RunHandle, what: &str| {
        run.wait_for(&format!("{SAY}{what}"))
            .unwrap_or_else(|e| panic!("{host:?}: no {what:?} line: {e:?}"));
        started.elapsed()
    };
    let to_init = wait(&mut run, "init").as_secs_f64();
    let begin = wait(&mut run, "sleep-begin");
    let end = wait(&mut run, "sleep-end");
    let outcome = run.wait_exit();
    let why = outcome.summary();
    let lines = said(&outcome);
    let results = lines
        .iter()
        .filter(|l| l.starts_with("result "))
        .map(|l| l.to_string())
        .collect();
    let sleep_end = lines
        .iter()
        .find_map(|l| l.strip_prefix("sleep-end rtc "))
        .unwrap_or_else(|| panic!("{host:?}: no sleep-end line ({why})"));
    let words: Vec<&str> = sleep_end.split_whitespace().collect();
    let (rtc_s, u0, u1) = match words[..] {
        [rtc, "uptime", u0, u1] => (rtc, u0, u1),
        _ => panic!("{host:?}: malformed {sleep_end:?}"),
    };
    let number = |s: &str| -> f64 {
        s.parse()
            .unwrap_or_else(|_| panic!("{s:?} in {sleep_end:?}"))
    };
    let irq_line = lines
        .iter()
        .find_map(|l| l.strip_prefix("irq"))
        .unwrap_or_else(|| panic!("{host:?}: no irq line ({why})"));
    let irqs = irq_line
        .split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(name, n)| (name.to_string(), n.parse().unwrap_or(0)))
        .collect();
    assert!(
        lines.contains(&"done"),
        "{host:?}: the workload did not finish ({why})"
    );
    Report {
        to_init,
        results,
        rtc_s: number(rtc_s) as u64,
        uptime_s: number(u1) - number(u0),
        host_s: (end - begin).as_secs_f64(),
        irqs,
        outcome,
    }
}

/// The workload run natively in plain QEMU, once per test binary.
fn native() -> Option<&'static Report> {
    static NATIVE: OnceLock<Report> = OnceLock::new();
    let debian = debian()?;
    Some(NATIVE.get_or_init(|| run_workload(Host::NativeQemu, debian, Duration::from_secs(300))))
}

/// Checks one run under Castor against the native one.
fn check_against_native(host: Host, timeout: Duration) {
    let Some(debian) = debian() else {
        return;
    };
    let Some(native) = native() else { return };
    let report = run_workload(host, debian, timeout);
    let outcome = &report.outcome;
    let why = outcome.summary();
    contract::assert_booted(outcome, 1);
    outcome.expect_line("guest: Linux boot protocol 2.");
    assert_eq!(
        native.results.len(),
        3,
        "native results: {:?}",
        native.results
    );
    assert_eq!(
        report.results, native.results,
        "{host:?}: the workload's results differ from the native run's ({why})"
    );
    for r in [native, &report] {
        let counted = |name: &str| r.irqs.iter().find(|(n, _)| n == name).map_or(0, |c| c.1);
        assert!(
            counted("timer") > 0 && counted("ttyS0") > 0 && counted("LOC") > 0,
            "{host:?}: interrupts not taken: {:?}",
            r.irqs
        );
        // The sleep against the guest's clock and against its RTC (the host's clock).
        assert!(
            (SLEEP_S as f64..SLEEP_S as f64 + 1.0).contains(&r.uptime_s),
            "{host:?}: sleep {SLEEP_S} took {} s of uptime",
            r.uptime_s
        );
        assert!(
            (SLEEP_S - 1..=SLEEP_S + 1).contains(&r.rtc_s),
            "{host:?}: sleep {SLEEP_S} took {} s on the RTC",
            r.rtc_s
        );
    }
    // QEMU's emulated time follows the host clock here; Bochs' follows its instruction count.
    if matches!(host, Host::CastorQemu) {
        assert!(
            (SLEEP_S as f64 * 0.9..SLEEP_S as f64 * 2.0 + 2.0).contains(&report.host_s),
            "sleep {SLEEP_S} took {} s of host time",
            report.host_s
        );
    }
    assert_eq!(
        contract::guest_end(outcome.lines()),
        Some(GuestEnd::Exited(0)),
        "poweroff ends the guest with status 0 ({why})"
    );
    assert!(
        outcome.line_with("PANIC").is_none(),
        "Castor panicked ({why})"
    );
    if outcome.emulator == "qemu" {
        outcome.expect_exit_code(QEMU_EXIT_PASS);
    }
    println!(
        "linux {host:?}: /init after {:.1} s (native QEMU {:.1} s), sleep {SLEEP_S}: uptime {:.2} s, rtc {} s, host {:.2} s; irqs {:?}",
        report.to_init, native.to_init, report.uptime_s, report.rtc_s, report.host_s, report.irqs
    );
}

#[test]
fn qemu_linux_guest_under_amd_v_matches_native_qemu() {
    check_against_native(Host::CastorQemu, Duration::from_secs(300));
}

#[test]
fn bochs_linux_guest_under_vt_x_matches_native_qemu() {
    check_against_native(Host::CastorBochs, Duration::from_secs(900));
}

/// `/init` for the boot-time figure: it says it is there and powers off.
fn boot_init() -> String {
    format!("{INIT_PROLOGUE}echo {SAY}init\npoweroff -f\n")
}

/// Seconds from the emulator's start to `/init` on `host`.
fn seconds_to_init(host: Host, kernel: &Path, initrd: &Path) -> f64 {
    let mut run = host.start(kernel, initrd, Duration::from_secs(900));
    let started = Instant::now();
    run.wait_for(&format!("{SAY}init"))
        .unwrap_or_else(|e| panic!("{host:?}: no /init: {e:?}"));
    let seconds = started.elapsed().as_secs_f64();
    drop(run.stop());
    seconds
}

/// Boot time as a figure: seconds to `/init` under Castor ÷ natively, on each emulator (QEMU
/// natively boots the kernel itself, Bochs through GRUB).
#[test]
fn bench_linux_boot_to_init_under_castor_over_native() {
    let Some(debian) = debian() else {
        return;
    };
    let (kernel, initrd) = (&debian.kernel, debian.initramfs("boot.cpio", &boot_init()));
    for (native, castor) in [
        (Host::NativeQemu, Host::CastorQemu),
        (Host::NativeBochs, Host::CastorBochs),
    ] {
        let n = seconds_to_init(native, kernel, &initrd);
        let c = seconds_to_init(castor, kernel, &initrd);
        println!(
            "bench linux boot: {castor:?} {c:.1} s to /init, {native:?} {n:.1} s: ratio {:.2}",
            c / n
        );
    }
}
