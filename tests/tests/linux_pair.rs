//! A stock Linux kernel (Debian's, with a busybox initramfs) protected by a QEMU pair survives
//! the primary's death: once in the middle of a memory-heavy workload, once early in its boot.
//! In both the backup's memory at takeover equals the primary's at that epoch, the guest's
//! released output runs on with no gap or rewind, and a command typed into the guest's shell
//! after the takeover answers.
//!
//! The kernel and busybox come from Debian's archive as in `linux.rs`
//! ([`castor_tests::linux::DebianGuest`]).

use castor_tests::contract::{self, GuestEnd, TAKEOVER_MARKER};
use castor_tests::linux::{self, DebianGuest, INIT_PROLOGUE, SAY};
use castor_tests::pair::released::{check_takeover_digest, released};
use castor_tests::pair::{Pair, PairHandle, Role};
use castor_tests::random::Random;
use castor_tests::scrape::{decimal_after, number_after};
use castor_tests::serial_input::{Sent, SerialInput};
use std::path::Path;
use std::sync::Mutex;
use std::thread::sleep;
use std::time::{Duration, Instant};

/// Guest RAM (MiB), as in `linux.rs`.
const GUEST_RAM_MIB: u32 = 128;
/// The pair's peer timeout: the backup verifies and applies the first, whole-memory
/// checkpoint in one go; under the suite's -icount its clock runs ahead of the host's
/// meanwhile.
const PEER_TIMEOUT_MS: u32 = 10_000;
/// Numbered steps of the workload.
const STEPS: u32 = 40;

/// The Debian kernel and busybox, fetched once into the target directory.
fn debian() -> Option<&'static DebianGuest> {
    DebianGuest::for_tests(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("linux-guest"))
}

/// `/init` for the pair: a memory-heavy loop of numbered steps (each writes 2 MiB of one digit
/// to tmpfs and prints its checksum), then a shell on the console.
fn pair_init() -> String {
    format!(
        r#"{INIT_PROLOGUE}say() {{ echo "{SAY}$*"; }}
i=0
while [ $i -lt {STEPS} ]; do
  dd if=/dev/zero bs=64k count=32 2>/dev/null | tr '\000' "$((i % 10))" > /tmp/m$((i % 4))
  say step $i $(md5sum < /tmp/m$((i % 4)) | cut -c1-12)
  i=$((i+1))
done
say workload-done
setsid cttyhack sh
poweroff -f
"#
    )
}

/// The `step N SUM` lines of the released output, checked: numbered 0, 1, 2, ... with no gap
/// or repeat, and steps with the same digit (N mod 10) carrying the same checksum.
fn check_steps(released: &[&str]) -> Result<u32, String> {
    let mut sums: [Option<&str>; 10] = [None; 10];
    let mut next = 0;
    for line in released.iter().filter_map(|l| l.strip_prefix(SAY)) {
        let Some(rest) = line.strip_prefix("step ") else {
            continue;
        };
        let (n, sum) = rest.split_once(' ').ok_or(format!("malformed {line:?}"))?;
        let n: u32 = n.parse().map_err(|_| format!("malformed {line:?}"))?;
        if n != next {
            return Err(format!("step {n} released where step {next} was due"));
        }
        let slot = &mut sums[(n % 10) as usize];
        match slot {
            Some(seen) if *seen != sum => {
                return Err(format!("step {n}: checksum {sum}, earlier {seen}"));
            }
            _ => *slot = Some(sum),
        }
        next += 1;
    }
    Ok(next)
}

/// One pair at a time: a pair keeps both of the suite's two CPUs busy.
static ONE_PAIR: Mutex<()> = Mutex::new(());

/// A QEMU pair running the workload with digests on; `primary_args` go to the primary only.
fn start_pair(debian: &DebianGuest, primary_args: &str, backup_input: SerialInput) -> PairHandle {
    let initrd = debian.initramfs("pair.cpio", &pair_init());
    Pair::qemu()
        .guest(&debian.kernel, linux::CONSOLE_ARGS)
        .guest_module(&initrd, "")
        .guest_ram_mib(GUEST_RAM_MIB)
        .memory_mib(GUEST_RAM_MIB + 128)
        .peer_timeout_ms(PEER_TIMEOUT_MS)
        .args("digests=on")
        .args_for(Role::Primary, primary_args)
        .serial_inputs([SerialInput::new(), backup_input])
        .timeout(Duration::from_secs(900))
        .start()
        .expect("starting the pair")
}

/// After the primary was killed: the backup takes over and finishes the workload, a command
/// typed into its shell answers, `poweroff` ends the guest there; the released output and the
/// takeover digest are checked. Returns the epoch the backup took over at and its summary.
fn finish_on_the_backup(mut h: PairHandle, backup_input: &SerialInput) -> (u64, String) {
    h.wait_for(Role::Backup, TAKEOVER_MARKER)
        .expect("the backup takes over");
    h.wait_for(Role::Backup, &format!("{SAY}workload-done"))
        .expect("the workload finishes on the backup");
    // The shell's prompt ends no line: type until the command's answer shows.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let typed = backup_input.send(b"echo typed-$((6*7))\n");
        assert_eq!(typed, Sent::Delivered, "typing into the backup's console");
        if h.console(Role::Backup)
            .expect("the backup's console")
            .contains("typed-42")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the shell never answered on the backup"
        );
        sleep(Duration::from_secs(5));
    }
    let typed = backup_input.send(b"poweroff -f\n");
    assert_eq!(typed, Sent::Delivered, "typing into the backup's console");
    let outcome = h.wait_exit();
    let backup = &outcome.backup;
    let why = backup.summary();
    let epoch = check_takeover_digest(&outcome).unwrap_or_else(|e| panic!("{e} ({why})"));
    let steps = check_steps(&released(&outcome)).unwrap_or_else(|e| {
        panic!(
            "released output is wrong: {e}\n--- primary ---\n{}\n--- backup ---\n{why}",
            outcome.primary.summary(),
        )
    });
    assert_eq!(steps, STEPS, "every step released once ({why})");
    assert_eq!(
        contract::guest_end(backup.lines()),
        Some(GuestEnd::Exited(0)),
        "poweroff on the backup ends the guest ({why})"
    );
    (epoch, why)
}

/// The primary is SIGKILLed once it has released a random step of the first third: the guest
/// is then in the middle of its workload (output is released an epoch behind it).
#[test]
fn qemu_pair_linux_guest_survives_the_primary_killed_mid_workload() {
    let Some(debian) = debian() else {
        return;
    };
    let _one = ONE_PAIR.lock().unwrap_or_else(|e| e.into_inner());
    let input = SerialInput::new();
    let mut h = start_pair(debian, "", input.clone());
    let step = Random::from_clock("linux pair kill").between(3, u64::from(STEPS / 3));
    h.wait_for(Role::Primary, &format!("{SAY}step {step} "))
        .expect("the primary releases the workload's steps");
    h.kill_primary().expect("killing the primary");
    let (epoch, _) = finish_on_the_backup(h, &input);
    println!(
        "linux pair: primary killed after step {step}, backup took over at epoch {epoch}; \
         {STEPS} steps released in order"
    );
}

/// The primary stops dead (then is killed) in a random early epoch, while the kernel is still
/// booting: the backup finishes the boot and the workload.
#[test]
fn qemu_pair_linux_guest_survives_the_primary_lost_during_boot() {
    let Some(debian) = debian() else {
        return;
    };
    let _one = ONE_PAIR.lock().unwrap_or_else(|e| e.into_inner());
    let freeze = Random::from_clock("linux pair freeze").between(1, 40);
    let input = SerialInput::new();
    let mut h = start_pair(debian, &format!("ft_freeze=run@{freeze}"), input.clone());
    let frozen = h
        .wait_for(Role::Primary, "ft: test freeze:")
        .expect("the primary stops dead");
    let frozen = number_after(&frozen, "of epoch");
    h.kill_primary().expect("killing the primary");
    let (epoch, _) = finish_on_the_backup(h, &input);
    assert!(
        epoch < frozen,
        "the backup took over at epoch {epoch}, which the primary never finished"
    );
    println!(
        "linux pair: primary stopped in epoch {frozen} (asked: {freeze}), backup took over at \
         epoch {epoch}; {STEPS} steps released in order"
    );
}

/// Directories and files per directory the file-tree workload creates.
const TREE_DIRS: u32 = 12;
const TREE_FILES: u32 = 25;

/// `/init` for the file-tree benchmark: builds a tree of small files in tmpfs, one directory
/// per step (`tree <i> <files so far>`), then powers off.
fn tree_init() -> String {
    format!(
        r#"{INIT_PROLOGUE}say() {{ echo "{SAY}$*"; }}
i=0
while [ $i -lt {TREE_DIRS} ]; do
  d=/tmp/tree/d$((i % 4))/s$i
  mkdir -p $d
  j=0
  while [ $j -lt {TREE_FILES} ]; do echo "record $i $j" > $d/f$j; j=$((j+1)); done
  say tree $i $(find /tmp/tree -type f | wc -l)
  i=$((i+1))
done
say tree-done
poweroff -f
"#
    )
}

/// Wire bytes per dirty page of a Linux guest booting and building a file tree on a QEMU pair
/// at 40 epochs/s (from the primary's final summary), with the pages sent as deltas and the
/// copy cache's hit rate. Asserts only that the workload ran whole: every directory released
/// once, in order, with its files.
#[test]
fn bench_linux_file_tree_wire_bytes() {
    let Some(debian) = debian() else {
        return;
    };
    let _one = ONE_PAIR.lock().unwrap_or_else(|e| e.into_inner());
    let initrd = debian.initramfs("tree.cpio", &tree_init());
    let h = Pair::qemu()
        .guest(&debian.kernel, linux::CONSOLE_ARGS)
        .guest_module(&initrd, "")
        .guest_ram_mib(GUEST_RAM_MIB)
        .memory_mib(GUEST_RAM_MIB + 128)
        .peer_timeout_ms(PEER_TIMEOUT_MS)
        .epoch_ms(25, 25)
        .timeout(Duration::from_secs(900))
        .start()
        .expect("starting the pair");
    let outcome = h.wait_exit();
    let primary = &outcome.primary;
    primary.expect_no_timeout();
    let why = primary.summary();
    let released = released(&outcome);
    let trees: Vec<(u32, u32)> = released
        .iter()
        .filter_map(|l| l.strip_prefix(SAY)?.strip_prefix("tree "))
        .filter_map(|rest| {
            let (i, n) = rest.split_once(' ')?;
            Some((i.parse().ok()?, n.trim().parse().ok()?))
        })
        .collect();
    let expected: Vec<(u32, u32)> = (0..TREE_DIRS).map(|i| (i, (i + 1) * TREE_FILES)).collect();
    assert_eq!(trees, expected, "the file tree's steps ({why})");
    let line = primary
        .lines()
        .filter(|l| l.starts_with("ft: primary: ") && l.contains(" epochs ("))
        .last()
        .unwrap_or_else(|| panic!("no summary ({why})"));
    println!("linux file tree: {line}");
    println!(
        "linux file tree: wire bytes per dirty page / 4096 = {:.3} ({} bytes/page, dirty {} \
         pages/epoch, {} pages sent as deltas, copy cache hits {}%)",
        decimal_after(line, "bytes/page ("),
        decimal_after(line, "wire"),
        decimal_after(line, "dirty"),
        decimal_after(line, "deltas"),
        decimal_after(line, "copies,"),
    );
}
