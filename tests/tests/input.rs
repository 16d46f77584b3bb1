//! Console input end to end: what is typed into `scripts/run` reaches the guest's UART and
//! raises its interrupt.
//!
//! `castor-run --single` (QEMU, AMD-V under TCG) runs `castor-demo echo=1`, which enables
//! COM1's receive interrupt and prints each line it reads under IRQ4 with the count of IRQ4s
//! taken so far. The test pipes `hello\n` into castor-run's stdin once the guest is ready, then
//! `quit\n`: castor-run forwards it to QEMU's serial input, Castor's console polls its UART and
//! pushes the bytes into the guest's 16550 model, whose interrupt reaches the guest through the
//! 8259A. The guest must report the line with at least one IRQ4 and exit with status 0.
//!
//! Bochs (VT-x) is not covered: castor-run types into QEMU hosts only.

use castor_tests::kernel;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

/// How long each step of the run may take (TCG with icount is slow to boot).
const STEP_TIMEOUT: Duration = Duration::from_secs(180);

/// Kills castor-run (and with it its emulator) if the test ends early.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// castor-run's stdout, line by line, with everything seen so far for messages.
struct Lines {
    rx: Receiver<String>,
    seen: Vec<String>,
}

impl Lines {
    /// Waits for a line containing `needle`; panics with the output so far on timeout or end.
    fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(e) => panic!(
                    "no line with {needle:?} ({e}); stdout so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// The rest of the output, until castor-run closes stdout.
    fn rest(&mut self) {
        while let Ok(line) = self.rx.recv_timeout(STEP_TIMEOUT) {
            self.seen.push(line);
        }
    }
}

fn type_line(stdin: &mut ChildStdin, text: &str) {
    stdin
        .write_all(text.as_bytes())
        .expect("writing castor-run's stdin");
    stdin.flush().expect("flushing castor-run's stdin");
}

/// The IRQ4 count in `[guest] demo: got '<line>' (irq4 N)`.
fn irq4_count(line: &str) -> u64 {
    let (_, tail) = line.rsplit_once("(irq4 ").expect("an irq4 count");
    tail.trim_end()
        .trim_end_matches(')')
        .parse()
        .expect("a decimal irq4 count")
}

/// `scripts/run --single --emulator qemu --guest castor-demo --guest-args echo=1`, with
/// `hello\n` and `quit\n` piped into its stdin.
#[test]
fn typed_lines_reach_the_guest_uart_and_raise_irq4_under_qemu() {
    let elf = kernel::elf().expect("building the kernel");
    let demo = kernel::demo().expect("building castor-demo");
    let child = Command::new(env!("CARGO_BIN_EXE_castor-run"))
        .args(["--single", "--emulator", "qemu", "--cpus", "1", "--guest"])
        .arg(demo)
        .args(["--guest-args", "echo=1 pages=1 span=16", "--guest-ram", "8"])
        .env(kernel::KERNEL_ENV, elf)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting castor-run");
    let mut run = Running(child);
    let stdout = run.0.stdout.take().expect("stdout");
    let stderr = run.0.stderr.take().expect("stderr");
    let mut stdin = run.0.stdin.take().expect("stdin");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let err_reader = thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut text);
        text
    });
    let mut lines = Lines {
        rx,
        seen: Vec::new(),
    };
    lines.wait_for("[guest] demo: echo ready");
    type_line(&mut stdin, "hello\n");
    let hello = lines.wait_for("[guest] demo: got '");
    assert!(
        hello.contains("[guest] demo: got 'hello' (irq4 "),
        "{hello:?}; stdout:\n{}",
        lines.seen.join("\n")
    );
    let irqs = irq4_count(&hello);
    assert!(irqs >= 1, "the line arrived without an IRQ4: {hello:?}");
    type_line(&mut stdin, "quit\n");
    let quit = lines.wait_for("[guest] demo: got 'quit' (irq4 ");
    assert!(irq4_count(&quit) > irqs, "quit raised IRQ4 again: {quit:?}");
    drop(stdin);
    lines.rest();
    let deadline = Instant::now() + STEP_TIMEOUT;
    let status = loop {
        if let Some(status) = run.0.try_wait().expect("waiting for castor-run") {
            break status;
        }
        assert!(Instant::now() < deadline, "castor-run did not end");
        thread::sleep(Duration::from_millis(50));
    };
    let stderr = err_reader.join().unwrap_or_default();
    let context = format!("stdout:\n{}\nstderr:\n{stderr}", lines.seen.join("\n"));
    assert_eq!(status.code(), Some(0), "{context}");
    assert!(
        stderr.contains("castor-run: guest exited with status 0 after "),
        "{context}"
    );
}
