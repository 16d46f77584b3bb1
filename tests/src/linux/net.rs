//! A Linux guest that serves TCP over a virtio NIC: Debian's kernel with an initramfs of
//! busybox and the kernel's virtio modules ([`super::NET_MODULES`]) whose `/init` brings up
//! `eth0` and runs a record service on port [`PORT`].
//!
//! `/init` loads the modules in dependency order (a PCI one that fails on a machine without
//! PCI virtio is only reported), waits up to 5 s for `eth0`, gives it the address of the kernel
//! command line's `castor.ip=ADDR/PREFIX` ([`DEFAULT_IP`] without one), says
//! `castor-net: mtu 9000 refused` (or `taken`, then sets 1500 back: [`MTU_REFUSED`]),
//! `castor-net: eth0 up <mac> <addr/prefix>` and starts the service, then says
//! `castor-net: serving on 7000` once the port listens. Without `eth0` it says
//! `castor-net: no eth0` and ends the machine with status [`NO_NIC_STATUS`] through the
//! debug-exit port (QEMU's `isa-debug-exit` at 0xF4, which Castor offers its guests too;
//! QEMU exits with `(2 << 1) | 1`), or powers off if that port cannot be written.
//!
//! The service, `/bin/records` ([`RECORDS_SCRIPT`]), serves one connection at a time, one
//! after another, for as long as the guest runs. It reads one request per line and answers
//! each with one line:
//!
//! * `put N PAYLOAD` stores PAYLOAD (the rest of the line) as record N and answers `ok N`
//!   once it is stored;
//! * `get N` answers `rec N PAYLOAD`, or `none N` if there is no record N;
//! * anything else (N not a decimal number, an unknown verb) answers `err ...`.
//!
//! One busybox shell serves every connection, so records outlive them: `nc -l -p 7000`
//! relays the socket to and from two FIFOs, and the shell keeps each record in a variable
//! (`r<N>`) and appends it to `/tmp/records/log` (tmpfs), all in guest RAM. A request costs
//! no process creation (`read`, `case`, `eval`, `echo` and redirections are built in), and a
//! record about 200 bytes of RAM, so a 128 MiB guest holds hundreds of thousands. (A file per
//! record would take a 4 KiB tmpfs page each and fill such a guest in seconds; busybox's
//! `read` takes a byte per system call, which rules out looking records up in shared files.)
//! `castor-net: connection ended` on the console marks each connection's end.

use super::{DebianGuest, Initramfs, busybox_archive, module_file_name};
use crate::error::{Context, Result};
use std::fs;
use std::path::{Path, PathBuf};

/// The service's TCP port.
pub const PORT: u16 = 7000;
/// The guest's address (and prefix) without `castor.ip=` on the command line.
pub const DEFAULT_IP: &str = "10.0.2.15/24";
/// The kernel command-line parameter giving the guest's address: `castor.ip=10.0.2.15/24`.
pub const IP_PARAM: &str = "castor.ip=";
/// Every line `/init` prints starts with this.
pub const SAY: &str = "castor-net: ";
/// `/init`'s line once `eth0` has its address: this, then `<mac> <addr/prefix>`.
pub const ETH0_UP: &str = "castor-net: eth0 up ";
/// `/init`'s line once the service listens.
pub const SERVING: &str = "castor-net: serving on 7000";
/// The guest's driver let it raise the card's MTU to 9000 (set back to 1500 then): a card
/// that offers no MTU (QEMU's virtio-net-pci by default).
pub const MTU_TAKEN: &str = "castor-net: mtu 9000 taken";
/// The guest's driver refused an MTU of 9000: the card offers 1500 (Castor's,
/// VIRTIO_NET_F_MTU).
pub const MTU_REFUSED: &str = "castor-net: mtu 9000 refused";
/// `/init`'s line when the kernel found no NIC.
pub const NO_ETH0: &str = "castor-net: no eth0";
/// The service's line on the console when a connection has ended.
pub const CONNECTION_ENDED: &str = "castor-net: connection ended";
/// The status a guest without a NIC ends with (debug-exit port).
pub const NO_NIC_STATUS: u32 = 2;

/// The record service, `/bin/records`: serves connections one after another, forever (see
/// the module's documentation).
pub const RECORDS_SCRIPT: &str = r#"#!/bin/sh
# The record service (castor-tests' linux::net): one connection at a time, a line per request.
# One shell serves every connection, so its records outlive them: `nc -l` relays the socket to
# and from two FIFOs, this loop holds the records in shell variables (r<N>) and appends each
# to /tmp/records/log. Only built-ins run per request.
trap '' PIPE
d=/tmp/records
mkdir -p $d && mkfifo $d/rx $d/tx || exit 1
exec 5>> $d/log
while true; do
    nc -l -p 7000 < $d/tx > $d/rx &
    # Opened in nc's order (tx, then rx), so neither side blocks on the other.
    while read -r verb n payload; do
        case $n in
        '' | *[!0-9]*) echo "err $verb $n"; continue ;;
        esac
        case $verb in
        put) eval "r$n=\$payload"; echo "$n $payload" >&5; echo "ok $n" ;;
        get)
            eval "p=\${r$n-} h=\${r$n+1}"
            case $h in 1) echo "rec $n $p" ;; *) echo "none $n" ;; esac
            ;;
        *) echo "err $verb $n" ;;
        esac
    done > $d/tx < $d/rx
    wait
    echo "castor-net: connection ended"
done
"#;

/// The network guest's `/init` (see the module's documentation), loading `modules` (names
/// without `.ko`) in this order.
pub fn net_init(modules: &[String]) -> String {
    let modules = modules.join(" ");
    let default_ip = DEFAULT_IP;
    let port = PORT;
    let status = NO_NIC_STATUS;
    // /proc/net/tcp shows a listening socket as `local_address ... 0A` with the port in hex.
    let listening = format!(":{port:04X} 00000000:0000 0A");
    format!(
        r#"{prologue}say() {{ echo "{SAY}$*"; }}
for m in {modules}; do
    insmod /lib/modules/$m.ko || say "insmod $m failed"
done
ip={default_ip}
for w in $(cat /proc/cmdline); do
    case $w in {IP_PARAM}*) ip=${{w#{IP_PARAM}}} ;; esac
done
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 50 ]; do usleep 100000; i=$((i + 1)); done
if [ ! -e /sys/class/net/eth0 ]; then
    say "no eth0"
    guest-exit {status}
    poweroff -f
fi
ip link set lo up
if ip link set eth0 mtu 9000 2>/dev/null; then
    echo "{mtu_taken}"
    ip link set eth0 mtu 1500
else
    echo "{mtu_refused}"
fi
ip addr add $ip dev eth0
ip link set eth0 up
read -r mac < /sys/class/net/eth0/address
say "eth0 up $mac $ip"
records &
i=0
while ! grep -q '{listening}' /proc/net/tcp && [ $i -lt 500 ]; do usleep 10000; i=$((i + 1)); done
say "serving on {port}"
while true; do sleep 3600; done
"#,
        prologue = super::INIT_PROLOGUE,
        mtu_taken = MTU_TAKEN,
        mtu_refused = MTU_REFUSED,
    )
}

/// A static x86-64 Linux program, `guest-exit [STATUS]`, that writes STATUS (decimal, by
/// default 1) to the debug-exit port 0xF4 as a 32-bit `out` after asking `ioperm` for the
/// port, then exits with that status if the machine did not end (a fault kills it if the port
/// was refused). Busybox cannot write I/O ports and Debian's kernel has no `/dev/port`.
pub fn guest_exit_program() -> Vec<u8> {
    // Assembled from (Intel syntax):
    //   mov edi, 0xf4; mov esi, 4; mov edx, 1; mov eax, 173; syscall   ; ioperm(0xf4, 4, 1)
    //   mov rsi, [rsp+16]; mov ebx, 1; test rsi, rsi; jz 2f            ; argv[1], default 1
    //   xor ebx, ebx
    // 1: movzx eax, byte [rsi]; sub eax, '0'; cmp eax, 9; ja 2f        ; decimal digits
    //   imul ebx, ebx, 10; add ebx, eax; inc rsi; jmp 1b
    // 2: mov eax, ebx; mov edx, 0xf4; out dx, eax                      ; the status
    //   mov edi, ebx; mov eax, 60; syscall                             ; exit(status)
    const CODE: [u8; 77] = [
        0xbf, 0xf4, 0x00, 0x00, 0x00, 0xbe, 0x04, 0x00, 0x00, 0x00, 0xba, 0x01, 0x00, 0x00, 0x00,
        0xb8, 0xad, 0x00, 0x00, 0x00, 0x0f, 0x05, 0x48, 0x8b, 0x74, 0x24, 0x10, 0xbb, 0x01, 0x00,
        0x00, 0x00, 0x48, 0x85, 0xf6, 0x74, 0x17, 0x31, 0xdb, 0x0f, 0xb6, 0x06, 0x83, 0xe8, 0x30,
        0x83, 0xf8, 0x09, 0x77, 0x0a, 0x6b, 0xdb, 0x0a, 0x01, 0xc3, 0x48, 0xff, 0xc6, 0xeb, 0xeb,
        0x89, 0xd8, 0xba, 0xf4, 0x00, 0x00, 0x00, 0xef, 0x89, 0xdf, 0xb8, 0x3c, 0x00, 0x00, 0x00,
        0x0f, 0x05,
    ];
    const BASE: u64 = 0x40_0000;
    const HEADERS: u64 = 64 + 56; // the ELF header and one program header
    let size = HEADERS + CODE.len() as u64;
    let mut elf = Vec::with_capacity(size as usize);
    // ELF header: 64-bit, little-endian, version 1, System V ABI; an executable for x86-64.
    elf.extend(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    elf.extend(2u16.to_le_bytes()); // e_type: ET_EXEC
    elf.extend(62u16.to_le_bytes()); // e_machine: EM_X86_64
    elf.extend(1u32.to_le_bytes()); // e_version
    elf.extend((BASE + HEADERS).to_le_bytes()); // e_entry: the code after the headers
    elf.extend(64u64.to_le_bytes()); // e_phoff
    elf.extend(0u64.to_le_bytes()); // e_shoff: no sections
    elf.extend(0u32.to_le_bytes()); // e_flags
    elf.extend(64u16.to_le_bytes()); // e_ehsize
    elf.extend(56u16.to_le_bytes()); // e_phentsize
    elf.extend(1u16.to_le_bytes()); // e_phnum
    elf.extend([0u8; 6]); // e_shentsize, e_shnum, e_shstrndx
    // One PT_LOAD of the whole file, readable and executable, at BASE.
    elf.extend(1u32.to_le_bytes()); // p_type: PT_LOAD
    elf.extend(5u32.to_le_bytes()); // p_flags: R | X
    elf.extend(0u64.to_le_bytes()); // p_offset
    elf.extend(BASE.to_le_bytes()); // p_vaddr
    elf.extend(BASE.to_le_bytes()); // p_paddr
    elf.extend(size.to_le_bytes()); // p_filesz
    elf.extend(size.to_le_bytes()); // p_memsz
    elf.extend(0x1000u64.to_le_bytes()); // p_align
    elf.extend(CODE);
    elf
}

/// The network guest's initramfs: [`super::busybox_initramfs`]'s files, the modules from
/// `modules` (a folder holding [`super::NET_MODULES`] by file name, as
/// [`super::LinuxKernel::modules`]) in `/lib/modules/` (loaded in the order their `depends=`
/// asks, [`super::module_load_order`]), `/bin/records` ([`RECORDS_SCRIPT`]),
/// `/bin/guest-exit` ([`guest_exit_program`]) and [`net_init`] as `/init`.
pub fn net_initramfs(busybox: &Path, modules: &Path) -> Result<Vec<u8>> {
    let mut files = Vec::new();
    for module in super::NET_MODULES {
        let name = module_file_name(module);
        let path = modules.join(name);
        let data = fs::read(&path).context(format!("reading {}", path.display()))?;
        files.push((name.trim_end_matches(".ko"), data));
    }
    let named: Vec<(&str, &[u8])> = files.iter().map(|(n, d)| (*n, &d[..])).collect();
    let order = super::module_load_order(&named)?;
    let mut cpio: Initramfs = busybox_archive(busybox, &net_init(&order))?;
    cpio.dir("lib").dir("lib/modules");
    for (name, data) in &files {
        cpio.file(&format!("lib/modules/{name}.ko"), 0o644, data);
    }
    cpio.file("bin/records", 0o755, RECORDS_SCRIPT.as_bytes())
        .file("bin/guest-exit", 0o755, &guest_exit_program());
    Ok(cpio.finish())
}

/// The kernel command line of a network guest at `ip` (`ADDR/PREFIX`): the console's
/// ([`super::CONSOLE_ARGS`]) and `castor.ip=`.
pub fn net_cmdline(ip: &str) -> String {
    format!("{} {IP_PARAM}{ip}", super::CONSOLE_ARGS)
}

/// `(mac, addr/prefix)` from `/init`'s `castor-net: eth0 up <mac> <addr/prefix>` line (with
/// anything before it on the line, such as Castor's `[guest] ` prefix).
pub fn parse_eth0_up(line: &str) -> Option<(String, String)> {
    let rest = &line[line.find(ETH0_UP)? + ETH0_UP.len()..];
    let mut words = rest.split_whitespace();
    let (mac, ip) = (words.next()?, words.next()?);
    Some((mac.to_string(), ip.to_string()))
}

impl DebianGuest {
    /// The network guest's initramfs ([`net_initramfs`]), written to the cache as `name`.
    pub fn net_initramfs(&self, name: &str) -> PathBuf {
        let path = self.cache.join(name);
        let cpio = net_initramfs(&self.busybox, &self.modules).expect("building the initramfs");
        fs::write(&path, cpio).expect("writing the initramfs");
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_loads_the_modules_in_order_and_reads_the_address() {
        let order = ["virtio_ring", "virtio", "virtio_net"].map(String::from);
        let init = net_init(&order);
        assert!(
            init.contains("for m in virtio_ring virtio virtio_net; do"),
            "{init}"
        );
        assert!(
            init.contains("castor.ip=*) ip=${w#castor.ip=} ;;"),
            "{init}"
        );
        assert!(init.contains("ip=10.0.2.15/24\n"));
        assert!(init.contains("grep -q ':1B58 00000000:0000 0A' /proc/net/tcp"));
        assert!(init.contains("guest-exit 2\n    poweroff -f"));
        assert!(init.starts_with(super::super::INIT_PROLOGUE));
        assert!(RECORDS_SCRIPT.contains(&format!("nc -l -p {PORT} ")));
        assert!(RECORDS_SCRIPT.contains(&format!("echo \"{CONNECTION_ENDED}\"")));
    }

    #[test]
    fn eth0_line_parses_with_or_without_a_prefix() {
        let got = parse_eth0_up("[guest] castor-net: eth0 up 52:54:00:12:34:56 10.0.2.15/24");
        assert_eq!(
            got,
            Some(("52:54:00:12:34:56".into(), "10.0.2.15/24".into()))
        );
        assert_eq!(parse_eth0_up("castor-net: eth0 up 52:54:00:12:34:56"), None);
        assert_eq!(parse_eth0_up("castor-net: no eth0"), None);
        assert_eq!(
            net_cmdline("10.0.2.16/24"),
            format!("{} castor.ip=10.0.2.16/24", super::super::CONSOLE_ARGS)
        );
    }

    #[test]
    fn guest_exit_is_one_loadable_segment_entered_after_the_headers() {
        let elf = guest_exit_program();
        let u16_at = |at: usize| u16::from_le_bytes(elf[at..at + 2].try_into().unwrap());
        let u64_at = |at: usize| u64::from_le_bytes(elf[at..at + 8].try_into().unwrap());
        assert_eq!(&elf[..4], b"\x7fELF");
        assert_eq!((u16_at(16), u16_at(18)), (2, 62), "ET_EXEC for x86-64");
        assert_eq!(u64_at(24), 0x40_0000 + 120, "entry");
        assert_eq!(
            (u64_at(32), u16_at(56)),
            (64, 1),
            "one program header at 64"
        );
        assert_eq!(u64_at(64 + 32), elf.len() as u64, "p_filesz is the file");
        assert_eq!(
            &elf[120..125],
            &[0xbf, 0xf4, 0, 0, 0],
            "mov edi, 0xf4 first"
        );
        assert_eq!(
            &elf[elf.len() - 2..],
            &[0x0f, 0x05],
            "ends in the exit syscall"
        );
    }

    #[test]
    fn initramfs_holds_the_modules_the_service_and_the_init() {
        let dir = std::env::temp_dir().join(format!("castor-netinit-{}", std::process::id()));
        let modules = dir.join("modules");
        fs::create_dir_all(&modules).unwrap();
        let bb = dir.join("busybox");
        fs::write(&bb, b"\x7fELF fake busybox").unwrap();
        for m in super::super::NET_MODULES {
            fs::write(modules.join(module_file_name(m)), m.as_bytes()).unwrap();
        }
        let cpio = net_initramfs(&bb, &modules).unwrap();
        let entries = super::super::tests::parse(&cpio);
        let get = |n: &str| {
            let e = entries.iter().find(|e| e.0 == n);
            e.unwrap_or_else(|| panic!("no {n}")).clone()
        };
        for m in super::super::NET_MODULES {
            let entry = get(&format!("lib/modules/{}", module_file_name(m)));
            assert_eq!((entry.1, entry.3), (0o100_644, m.as_bytes().to_vec()));
        }
        assert_eq!(get("bin/records").3, RECORDS_SCRIPT.as_bytes());
        assert_eq!(get("bin/records").1, 0o100_755);
        assert_eq!(get("bin/guest-exit").3, guest_exit_program());
        let order: Vec<String> = super::super::NET_MODULES
            .iter()
            .map(|m| module_file_name(m).trim_end_matches(".ko").to_string())
            .collect();
        assert_eq!(get("init").3, net_init(&order).as_bytes());
        assert_eq!(get("lib/modules").1, 0o040_755);
        assert_eq!(get("bin/busybox").3, b"\x7fELF fake busybox");
        fs::remove_file(modules.join("virtio_net.ko")).unwrap();
        assert!(net_initramfs(&bb, &modules).is_err(), "a missing module");
        fs::remove_dir_all(&dir).unwrap();
    }
}
