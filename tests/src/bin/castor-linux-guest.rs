//! `scripts/linux-guest [DIR]`: fetches Debian's cloud kernel and static busybox into DIR
//! (default `target/linux-guest`) and builds `DIR/initramfs.cpio`, whose `/init` gives a
//! busybox shell on the console; then prints the `scripts/run` command that boots it under
//! Castor.

use castor_tests::error::Context;
use castor_tests::linux;
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") || args.len() > 1 {
        eprintln!(
            "usage: scripts/linux-guest [DIR]\n\n\
             Fetches Debian's {} and {} with apt-get download into DIR (default\n\
             target/linux-guest), builds DIR/initramfs.cpio (busybox with a shell on the\n\
             console) and prints the scripts/run command that boots them under Castor.",
            linux::KERNEL_PACKAGE,
            linux::BUSYBOX_PACKAGE
        );
        return ExitCode::from(2);
    }
    let dir = args
        .first()
        .map(PathBuf::from)
        .unwrap_or_else(|| castor_tests::target_dir().join("linux-guest"));
    match build(&dir) {
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

fn build(dir: &std::path::Path) -> castor_tests::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir).context(dir.display())?;
    // The kernel lives in a folder named after its package version; DIR/vmlinuz points there.
    let versioned = linux::kernel(dir)?;
    let kernel = dir.join("vmlinuz");
    let target = versioned.strip_prefix(dir).unwrap_or(&versioned);
    let _ = std::fs::remove_file(&kernel);
    std::os::unix::fs::symlink(target, &kernel).context(kernel.display())?;
    let busybox = linux::busybox(dir)?;
    let initrd = dir.join("initramfs.cpio");
    let cpio = linux::busybox_initramfs(&busybox, &linux::shell_init())?;
    std::fs::write(&initrd, cpio).context(initrd.display())?;
    eprintln!(
        "linux-guest: {} and {} in {}",
        kernel.display(),
        initrd.display(),
        dir.display()
    );
    Ok((kernel, initrd))
}
