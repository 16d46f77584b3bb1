//! `scripts/linux-guest [--net] [DIR]`: fetches Debian's cloud kernel and static busybox into
//! DIR (default `target/linux-guest`) and builds `DIR/initramfs.cpio`, whose `/init` gives a
//! busybox shell on the console, or with `--net` `DIR/initramfs-net.cpio`, which loads the
//! kernel's virtio modules, configures `eth0` from `castor.ip=` and serves TCP records on port
//! 7000 (`castor_tests::linux::net`); then prints the `scripts/run` command that boots it
//! under Castor.

use castor_tests::error::Context;
use castor_tests::linux;
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let net = args.iter().any(|a| a == "--net");
    args.retain(|a| a != "--net");
    if args.iter().any(|a| a.starts_with('-')) || args.len() > 1 {
        eprintln!(
            "usage: scripts/linux-guest [--net] [DIR]\n\n\
             Fetches Debian's {} and {} with apt-get download into DIR (default\n\
             target/linux-guest), builds DIR/initramfs.cpio (busybox with a shell on the\n\
             console) or, with --net, DIR/initramfs-net.cpio (the kernel's virtio modules,\n\
             eth0 at castor.ip=, a TCP record service on port 7000), and prints the\n\
             scripts/run command that boots them under Castor.",
            linux::KERNEL_PACKAGE,
            linux::BUSYBOX_PACKAGE
        );
        return ExitCode::from(2);
    }
    let dir = args
        .first()
        .map(PathBuf::from)
        .unwrap_or_else(|| castor_tests::target_dir().join("linux-guest"));
    match build(&dir, net) {
        Ok((kernel, initrd)) if net => {
            println!(
                "./scripts/run --guest {} --initrd {} --guest-ram 128 --guest-args \"{}\" \
                 --guest-net 10.0.2.1/24",
                kernel.display(),
                initrd.display(),
                linux::net::net_cmdline(linux::net::DEFAULT_IP)
            );
            ExitCode::SUCCESS
        }
        Ok((kernel, initrd)) => {
            println!(
                "./scripts/run --guest {} --initrd {} --guest-ram 128 --guest-args \"{}\"",
                kernel.display(),
                initrd.display(),
                linux::CONSOLE_ARGS
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("linux-guest: {e}");
            ExitCode::FAILURE
        }
    }
}

fn build(dir: &std::path::Path, net: bool) -> castor_tests::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir).context(dir.display())?;
    // The kernel lives in a folder named after its package version; DIR/vmlinuz points there.
    let versioned = linux::kernel(dir)?;
    let kernel = dir.join("vmlinuz");
    let target = versioned.strip_prefix(dir).unwrap_or(&versioned);
    let _ = std::fs::remove_file(&kernel);
    std::os::unix::fs::symlink(target, &kernel).context(kernel.display())?;
    let busybox = linux::busybox(dir)?;
    let (initrd, cpio) = match net {
        true => {
            let modules = linux::linux_kernel(dir)?.modules;
            let cpio = linux::net::net_initramfs(&busybox, &modules)?;
            (dir.join("initramfs-net.cpio"), cpio)
        }
        false => (
            dir.join("initramfs.cpio"),
            linux::busybox_initramfs(&busybox, &linux::shell_init())?,
        ),
    };
    std::fs::write(&initrd, cpio).context(initrd.display())?;
    eprintln!(
        "linux-guest: {} and {} in {}",
        kernel.display(),
        initrd.display(),
        dir.display()
    );
    Ok((kernel, initrd))
}
