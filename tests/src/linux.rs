//! Linux guests from Debian packages: the kernel (`linux-image-cloud-amd64`) and a static
//! busybox (`busybox-static`) fetched with `apt-get download` into a cache directory, and
//! initramfs images (the kernel's `newc` cpio format) built from them. Nothing built from
//! them is committed; tests and `scripts/linux-guest` build what they need.

use crate::error::{Context, Error, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Debian's metapackage for its cloud kernel (virtio and Xen drivers, no hardware drivers:
/// the smallest stock image).
pub const KERNEL_PACKAGE: &str = "linux-image-cloud-amd64";
/// Debian's static busybox.
pub const BUSYBOX_PACKAGE: &str = "busybox-static";

/// Runs `cmd`, returning its stdout or why it failed.
fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().context(format!("running {cmd:?}"))?;
    match out.status.success() {
        true => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        false => Err(Error::new(format!(
            "{cmd:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))),
    }
}

/// The versioned package a metapackage depends on (`linux-image-cloud-amd64` →
/// `linux-image-6.1.0-…-cloud-amd64`), or `package` itself if it depends on no `prefix*`.
fn resolve(package: &str, prefix: &str) -> Result<String> {
    let depends = output(Command::new("apt-cache").args(["depends", package]))?;
    Ok(depends
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .find(|p| p.starts_with(prefix))
        .unwrap_or(package)
        .to_string())
}

/// Fetches `package` with `apt-get download` into a scratch folder of `cache`, unpacks the
/// file at `inner` (a path inside the package, e.g. `./bin/busybox`; a trailing `*` matches
/// the first file with that prefix) and keeps it as `cache/name`. A file already there is
/// reused.
fn fetch_file(cache: &Path, package: &str, inner: &str, name: &str) -> Result<PathBuf> {
    let kept = cache.join(name);
    if kept.is_file() {
        return Ok(kept);
    }
    let scratch = cache.join(format!("{name}.fetch"));
    let _ = fs::remove_dir_all(&scratch);
    fs::create_dir_all(&scratch).context(format!("creating {}", scratch.display()))?;
    output(
        Command::new("apt-get")
            .args(["download", package])
            .current_dir(&scratch),
    )?;
    let deb = fs::read_dir(&scratch)
        .context("listing the download")?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or_else(|| Error::new(format!("apt-get download {package} left no .deb")))?;
    let unpacked = scratch.join("root");
    fs::create_dir_all(&unpacked).context("creating the unpack folder")?;
    output(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked))?;
    let (dir, file) = inner.rsplit_once('/').unwrap_or((".", inner));
    let found = match file.strip_suffix('*') {
        Some(prefix) => fs::read_dir(unpacked.join(dir))
            .context(format!("{package}: no {dir}"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
            }),
        None => Some(unpacked.join(inner)).filter(|p| p.is_file()),
    }
    .ok_or_else(|| Error::new(format!("{package} holds no {inner}")))?;
    fs::rename(&found, &kept).context(format!("keeping {}", kept.display()))?;
    let _ = fs::remove_dir_all(&scratch);
    Ok(kept)
}

/// Debian's cloud kernel (a bzImage), fetched once into `cache`.
pub fn kernel(cache: &Path) -> Result<PathBuf> {
    let package = resolve(KERNEL_PACKAGE, "linux-image-")?;
    fetch_file(cache, &package, "./boot/vmlinuz-*", "vmlinuz")
}

/// Debian's static busybox, fetched once into `cache`.
pub fn busybox(cache: &Path) -> Result<PathBuf> {
    fetch_file(cache, BUSYBOX_PACKAGE, "./bin/busybox", "busybox")
}

/// An initramfs in the `newc` cpio format (Documentation/driver-api/early-userspace/
/// buffer-format.rst): each entry a header of thirteen 8-digit hex fields, the NUL-terminated
/// name and the data, name and data padded to 4 bytes; a `TRAILER!!!` entry ends it.
#[derive(Debug, Default)]
pub struct Initramfs {
    bytes: Vec<u8>,
    inode: u32,
}

impl Initramfs {
    /// An empty archive.
    pub fn new() -> Self {
        Self::default()
    }

    fn entry(&mut self, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) -> &mut Self {
        self.inode += 1;
        let name = format!("{name}\0");
        let fields = [
            self.inode,
            mode,
            0,
            0,
            1,
            0,
            data.len() as u32,
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() as u32,
            0,
        ];
        self.bytes.extend(b"070701");
        for field in fields {
            self.bytes.extend(format!("{field:08X}").bytes());
        }
        self.bytes.extend(name.bytes());
        self.pad();
        self.bytes.extend(data);
        self.pad();
        self
    }

    fn pad(&mut self) {
        self.bytes.resize(self.bytes.len().next_multiple_of(4), 0);
    }

    /// A directory (mode 0755).
    pub fn dir(&mut self, name: &str) -> &mut Self {
        self.entry(name, 0o040_755, (0, 0), &[])
    }

    /// A regular file with permission bits `perm`.
    pub fn file(&mut self, name: &str, perm: u32, data: &[u8]) -> &mut Self {
        self.entry(name, 0o100_000 | (perm & 0o7777), (0, 0), data)
    }

    /// A symbolic link to `target`.
    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(name, 0o120_777, (0, 0), target.as_bytes())
    }

    /// A character device node (mode 0600) with device number `major:minor`.
    pub fn char_device(&mut self, name: &str, major: u32, minor: u32) -> &mut Self {
        self.entry(name, 0o020_600, (major, minor), &[])
    }

    /// The archive, trailer included.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, (0, 0), &[]);
        self.bytes
    }
}

/// An initramfs with busybox as `/bin/busybox` (and `/bin/sh`), `/dev/console`, empty
/// `/proc`, `/sys`, `/tmp`, `/dev` and `/init` the shell script `init`. The script should
/// begin with `busybox --install -s /bin` to get the other applets.
pub fn busybox_initramfs(busybox: &Path, init: &str) -> Result<Vec<u8>> {
    let busybox = fs::read(busybox).context(format!("reading {}", busybox.display()))?;
    let mut cpio = Initramfs::new();
    for dir in ["bin", "dev", "proc", "sys", "tmp", "root"] {
        cpio.dir(dir);
    }
    // The console, before devtmpfs is mounted: the kernel opens it for init's stdio.
    cpio.char_device("dev/console", 5, 1)
        .file("bin/busybox", 0o755, &busybox)
        .symlink("bin/sh", "busybox")
        .file("init", 0o755, init.as_bytes());
    Ok(cpio.finish())
}

/// The start of every `/init` script here: busybox's applets, the kernel's file systems and a
/// tmpfs on `/tmp`.
pub const INIT_PROLOGUE: &str = "#!/bin/sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
";

/// `/init` for an interactive guest: a banner, then a shell on the console with job control
/// (`cttyhack` gives it the console as controlling terminal); when the shell exits the guest
/// powers off, which Castor reports as the guest's end.
pub fn shell_init() -> String {
    format!(
        "{INIT_PROLOGUE}echo
echo 'castor-linux: busybox shell on the console; exit or poweroff ends the guest'
setsid cttyhack sh -l
poweroff -f
"
    )
}

/// Every guest line the tests' `/init` scripts print starts with this.
pub const SAY: &str = "castor-linux: ";

/// The Debian kernel and busybox a test binary runs, and the folder that caches them.
#[derive(Debug)]
pub struct DebianGuest {
    /// Debian's cloud kernel (a bzImage).
    pub kernel: PathBuf,
    /// Debian's static busybox.
    pub busybox: PathBuf,
    cache: PathBuf,
}

impl DebianGuest {
    /// The kernel and busybox, fetched once per test binary into `cache` (tests running in
    /// parallel: the first to ask fetches, the others wait for its result). `None` after
    /// saying `SKIPPED` and why if they cannot be had; under CI (`CI` set, as `.ci/run` runs)
    /// that is a failure instead.
    pub fn for_tests(cache: &Path) -> Option<&'static DebianGuest> {
        static FILES: OnceLock<std::result::Result<DebianGuest, String>> = OnceLock::new();
        let files = FILES.get_or_init(|| {
            fs::create_dir_all(cache).map_err(|e| e.to_string())?;
            Ok(DebianGuest {
                kernel: kernel(cache).map_err(|e| e.to_string())?,
                busybox: busybox(cache).map_err(|e| e.to_string())?,
                cache: cache.to_path_buf(),
            })
        });
        match files {
            Ok(files) => Some(files),
            Err(why) if std::env::var_os("CI").is_some() => {
                panic!("no Linux guest under CI (Debian's archive should be reachable): {why}")
            }
            Err(why) => {
                eprintln!(
                    "SKIPPED: no Linux guest (Debian's packages could not be fetched): {why}"
                );
                None
            }
        }
    }

    /// A busybox initramfs ([`busybox_initramfs`]) with `init`, written to the cache as `name`.
    pub fn initramfs(&self, name: &str, init: &str) -> PathBuf {
        let path = self.cache.join(name);
        let cpio = busybox_initramfs(&self.busybox, init).expect("building the initramfs");
        fs::write(&path, cpio).expect("writing the initramfs");
        path
    }
}

/// The kernel command line for a guest whose console is Castor's 16550 (COM1): early
/// messages too, no address randomisation (reproducible runs), a panic ends the guest.
pub const CONSOLE_ARGS: &str = "console=ttyS0 earlyprintk=serial,ttyS0,115200 nokaslr panic=-1";

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses a `newc` archive back into (name, mode, rdev major, data) entries.
    fn parse(mut b: &[u8]) -> Vec<(String, u32, u32, Vec<u8>)> {
        let mut out = Vec::new();
        let field = |h: &[u8], i: usize| {
            u32::from_str_radix(std::str::from_utf8(&h[6 + 8 * i..14 + 8 * i]).unwrap(), 16)
                .unwrap()
        };
        let total = b.len();
        loop {
            assert_eq!(&b[..6], b"070701");
            let (mode, size, major, namesize) =
                (field(b, 1), field(b, 6), field(b, 9), field(b, 11));
            let name_end = 110 + namesize as usize;
            let name = String::from_utf8(b[110..name_end - 1].to_vec()).unwrap();
            let data_start = name_end.next_multiple_of(4);
            let data = b[data_start..data_start + size as usize].to_vec();
            let next = (data_start + size as usize).next_multiple_of(4);
            assert_eq!((total - b.len()) % 4, 0, "entries start 4-aligned");
            b = &b[next..];
            if name == "TRAILER!!!" {
                assert!(b.is_empty());
                return out;
            }
            out.push((name, mode, major, data));
        }
    }

    #[test]
    fn initramfs_entries_round_trip() {
        let dir = std::env::temp_dir().join(format!("castor-initramfs-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let bb = dir.join("busybox");
        fs::write(&bb, b"\x7fELF fake busybox").unwrap();
        let cpio = busybox_initramfs(&bb, "#!/bin/sh\necho hi\n").unwrap();
        let entries = parse(&cpio);
        let get = |n: &str| entries.iter().find(|e| e.0 == n).unwrap().clone();
        assert_eq!(get("bin/busybox").3, b"\x7fELF fake busybox");
        assert_eq!(get("bin/busybox").1, 0o100_755);
        assert_eq!(get("bin/sh").3, b"busybox");
        assert_eq!(get("bin/sh").1, 0o120_777);
        assert_eq!((get("dev/console").1, get("dev/console").2), (0o020_600, 5));
        assert_eq!(get("init").3, b"#!/bin/sh\necho hi\n");
        assert_eq!(get("proc").1, 0o040_755);
        fs::remove_dir_all(&dir).unwrap();
    }
}
