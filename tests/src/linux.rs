//! Linux guests from Debian packages: the kernel (`linux-image-cloud-amd64`) with the virtio
//! modules of the same package ([`NET_MODULES`]) and a static busybox (`busybox-static`)
//! fetched with `apt-get download` into a cache directory, and initramfs images (the kernel's
//! `newc` cpio format) built from them; [`net`] builds one for a guest that serves TCP.
//! Nothing built from them is committed; tests and `scripts/linux-guest` build what they
//! need.

use crate::error::{Context, Error, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub mod net;

/// Debian's metapackage for its cloud kernel (virtio and Xen drivers, no hardware drivers:
/// the smallest stock image).
pub const KERNEL_PACKAGE: &str = "linux-image-cloud-amd64";
/// Debian's static busybox.
pub const BUSYBOX_PACKAGE: &str = "busybox-static";

/// Runs `cmd`, returning its stdout or why it failed.
pub(crate) fn output(cmd: &mut Command) -> Result<String> {
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

/// Fetches `package` with `apt-get download` into `scratch` (made afresh) and unpacks it
/// there; returns the folder holding the package's files.
fn download_and_unpack(scratch: &Path, package: &str) -> Result<PathBuf> {
    let _ = fs::remove_dir_all(scratch);
    fs::create_dir_all(scratch).context(format!("creating {}", scratch.display()))?;
    output(
        Command::new("apt-get")
            .args(["download", package])
            .current_dir(scratch),
    )?;
    let deb = fs::read_dir(scratch)
        .context("listing the download")?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or_else(|| Error::new(format!("apt-get download {package} left no .deb")))?;
    let unpacked = scratch.join("root");
    fs::create_dir_all(&unpacked).context("creating the unpack folder")?;
    output(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked))?;
    Ok(unpacked)
}

/// The file in `dir` whose name starts with `prefix`.
fn find_prefixed(dir: &Path, prefix: &str) -> Option<PathBuf> {
    fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        })
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
    let scratch = cache.join(format!("{name}.fetch-{}", std::process::id()));
    let unpacked = download_and_unpack(&scratch, package);
    let found = unpacked.and_then(|unpacked| {
        let (dir, file) = inner.rsplit_once('/').unwrap_or((".", inner));
        let found = match file.strip_suffix('*') {
            Some(prefix) => find_prefixed(&unpacked.join(dir), prefix),
            None => Some(unpacked.join(inner)).filter(|p| p.is_file()),
        };
        let found = found.ok_or_else(|| Error::new(format!("{package} holds no {inner}")))?;
        fs::rename(&found, &kept).context(format!("keeping {}", kept.display()))
    });
    let _ = fs::remove_dir_all(&scratch);
    found.map(|()| kept)
}

/// The modules of Debian's cloud kernel that a guest with a virtio NIC loads (the cloud kernel
/// builds virtio as modules), as paths under `lib/modules/<release>/kernel/`, in an order
/// their dependencies allow (each module's `depends=`; [`module_load_order`] checks it).
/// [`LinuxKernel::modules`] holds them under their file names.
pub const NET_MODULES: [&str; 9] = [
    "drivers/virtio/virtio_ring.ko",
    "drivers/virtio/virtio.ko",
    "drivers/virtio/virtio_mmio.ko",
    "drivers/virtio/virtio_pci_legacy_dev.ko",
    "drivers/virtio/virtio_pci_modern_dev.ko",
    "drivers/virtio/virtio_pci.ko",
    "net/core/failover.ko",
    "drivers/net/net_failover.ko",
    "drivers/net/virtio_net.ko",
];

/// A `.modinfo` entry of a kernel module (`vermagic`, `depends`, ...): the text after the
/// first `KEY=` that starts a NUL-separated string.
fn modinfo<'a>(module: &'a [u8], key: &str) -> Option<&'a str> {
    let key = format!("{key}=");
    let key = key.as_bytes();
    let at = (0..module.len().saturating_sub(key.len()))
        .find(|&i| module[i..].starts_with(key) && (i == 0 || module[i - 1] == 0))?;
    let text = &module[at + key.len()..];
    std::str::from_utf8(&text[..text.iter().position(|&b| b == 0)?]).ok()
}

/// The release a kernel module was built for (the first word of its `vermagic=` entry).
pub fn module_release(module: &[u8]) -> Option<String> {
    Some(
        modinfo(module, "vermagic")?
            .split_whitespace()
            .next()?
            .to_string(),
    )
}

/// The modules a kernel module needs loaded first (its `depends=` entry).
pub fn module_depends(module: &[u8]) -> Vec<String> {
    let depends = modinfo(module, "depends").unwrap_or_default();
    depends
        .split(',')
        .filter(|d| !d.is_empty())
        .map(String::from)
        .collect()
}

/// `modules` (name without `.ko`, file contents) in an order that loads each after what it
/// depends on, keeping the given order where it allows; an error if one depends on a module
/// not given or the dependencies form a cycle.
pub fn module_load_order(modules: &[(&str, &[u8])]) -> Result<Vec<String>> {
    let depends: Vec<Vec<String>> = modules.iter().map(|m| module_depends(m.1)).collect();
    for (m, deps) in modules.iter().zip(&depends) {
        if let Some(missing) = deps.iter().find(|d| !modules.iter().any(|o| o.0 == *d)) {
            return Err(Error::new(format!("module {} needs {missing}", m.0)));
        }
    }
    let mut order: Vec<String> = Vec::new();
    while order.len() < modules.len() {
        let next = modules.iter().zip(&depends).find(|(m, deps)| {
            !order.iter().any(|o| o == m.0) && deps.iter().all(|d| order.contains(d))
        });
        match next {
            Some((m, _)) => order.push(m.0.to_string()),
            None => return Err(Error::new("the modules depend on each other in a cycle")),
        }
    }
    Ok(order)
}

/// Debian's cloud kernel and its [`NET_MODULES`], from one package version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinuxKernel {
    /// The kernel (a bzImage).
    pub vmlinuz: PathBuf,
    /// The folder holding [`NET_MODULES`] by file name (`virtio.ko`, ...), uncompressed.
    pub modules: PathBuf,
    /// The kernel's release (`6.1.0-57-cloud-amd64`), which every module's vermagic names.
    pub release: String,
}

/// The installable version of `package` (`apt-cache policy`'s candidate).
fn candidate_version(package: &str) -> Result<String> {
    let policy = output(Command::new("apt-cache").args(["policy", package]))?;
    policy
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Candidate: "))
        .map(str::trim)
        .find(|v| !v.is_empty() && *v != "(none)")
        .map(String::from)
        .ok_or_else(|| Error::new(format!("apt-cache policy {package}: no candidate version")))
}

/// The release a bzImage says it is (the first word of the version string its setup header
/// points to: `kernel_version` at 0x20E, an offset from 0x200; Documentation/arch/x86/boot.rst).
pub fn bzimage_release(image: &[u8]) -> Option<String> {
    if image.get(0x202..0x206)? != b"HdrS" {
        return None;
    }
    let at = usize::from(u16::from_le_bytes(
        image.get(0x20E..0x210)?.try_into().ok()?,
    )) + 0x200;
    let text = image.get(at..)?;
    let text = &text[..text.iter().position(|&b| b == 0)?];
    let release = std::str::from_utf8(text).ok()?.split_whitespace().next()?;
    Some(release.to_string())
}

/// Checks that `folder` holds a kernel and [`NET_MODULES`] all of one release, which it returns.
fn check_kernel_folder(folder: &Path) -> Result<String> {
    let read = |path: &Path| fs::read(path).context(format!("reading {}", path.display()));
    let vmlinuz = folder.join("vmlinuz");
    let release = bzimage_release(&read(&vmlinuz)?)
        .ok_or_else(|| Error::new(format!("{}: no release in its header", vmlinuz.display())))?;
    for module in NET_MODULES {
        let path = folder.join("modules").join(module_file_name(module));
        match module_release(&read(&path)?) {
            Some(r) if r == release => {}
            other => {
                return Err(Error::new(format!(
                    "{} was built for {other:?}, the kernel is {release}",
                    path.display()
                )));
            }
        }
    }
    Ok(release)
}

/// `drivers/virtio/virtio.ko` → `virtio.ko`.
fn module_file_name(module: &str) -> &str {
    module.rsplit_once('/').map_or(module, |(_, name)| name)
}

/// Debian's cloud kernel and its [`NET_MODULES`], fetched once into `cache`: the kernel as
/// `cache/<package>_<version>/vmlinuz`, the modules in `…/modules/`. The folder is named after
/// the package's exact version and made whole (by renaming a finished scratch folder into
/// place, after checking that the modules' vermagic names the kernel's release), so a kernel
/// is never paired with another version's modules; another version gets a folder of its own.
pub fn linux_kernel(cache: &Path) -> Result<LinuxKernel> {
    let package = resolve(KERNEL_PACKAGE, "linux-image-")?;
    let version = candidate_version(&package)?;
    let name = format!("{package}_{version}").replace([':', '/'], "_");
    let folder = cache.join(&name);
    let kernel = |release| LinuxKernel {
        vmlinuz: folder.join("vmlinuz"),
        modules: folder.join("modules"),
        release,
    };
    if folder.is_dir() {
        return Ok(kernel(check_kernel_folder(&folder)?));
    }
    let scratch = cache.join(format!("{name}.fetch-{}", std::process::id()));
    let made = unpack_kernel(&scratch, &package);
    // Another process may have finished the same folder first: then its copy is kept.
    let placed = made.and_then(|(made, release)| match fs::rename(&made, &folder) {
        Err(_) if !folder.is_dir() => {
            Err(Error::new(format!("could not create {}", folder.display())))
        }
        _ => Ok(release),
    });
    let _ = fs::remove_dir_all(&scratch);
    Ok(kernel(placed?))
}

/// Downloads `package` into `scratch` and makes `scratch/made` a kernel folder of it
/// ([`linux_kernel`]); that folder and the kernel's release.
fn unpack_kernel(scratch: &Path, package: &str) -> Result<(PathBuf, String)> {
    let unpacked = download_and_unpack(scratch, package)?;
    let made = scratch.join("made");
    fs::create_dir_all(made.join("modules")).context("creating the kernel folder")?;
    let vmlinuz = find_prefixed(&unpacked.join("boot"), "vmlinuz-")
        .ok_or_else(|| Error::new(format!("{package} holds no boot/vmlinuz-*")))?;
    fs::rename(&vmlinuz, made.join("vmlinuz")).context("keeping vmlinuz")?;
    let lib = unpacked.join("lib/modules");
    let tree = fs::read_dir(&lib)
        .context(format!("{package}: no lib/modules"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.join("kernel").is_dir())
        .ok_or_else(|| Error::new(format!("{package}: no lib/modules/<release>/kernel")))?;
    for module in NET_MODULES {
        let from = tree.join("kernel").join(module);
        fs::rename(&from, made.join("modules").join(module_file_name(module)))
            .context(format!("{package}: keeping {}", from.display()))?;
    }
    let release = check_kernel_folder(&made)?;
    Ok((made, release))
}

/// Debian's cloud kernel (a bzImage), fetched once into `cache` with its modules
/// ([`linux_kernel`]).
pub fn kernel(cache: &Path) -> Result<PathBuf> {
    Ok(linux_kernel(cache)?.vmlinuz)
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
    Ok(busybox_archive(busybox, init)?.finish())
}

/// [`busybox_initramfs`]'s entries, open for more.
pub fn busybox_archive(busybox: &Path, init: &str) -> Result<Initramfs> {
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
    Ok(cpio)
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

/// The Debian kernel, its modules and busybox a test binary runs, and the folder that caches
/// them.
#[derive(Debug)]
pub struct DebianGuest {
    /// Debian's cloud kernel (a bzImage).
    pub kernel: PathBuf,
    /// The same package's [`NET_MODULES`], by file name ([`LinuxKernel::modules`]).
    pub modules: PathBuf,
    /// Debian's static busybox.
    pub busybox: PathBuf,
    cache: PathBuf,
}

impl DebianGuest {
    /// The kernel, its modules and busybox, fetched once per test binary into `cache` (tests running in
    /// parallel: the first to ask fetches, the others wait for its result). `None` after
    /// saying `SKIPPED` and why if they cannot be had; under CI (`CI` set, as `.ci/run` runs)
    /// that is a failure instead.
    pub fn for_tests(cache: &Path) -> Option<&'static DebianGuest> {
        static FILES: OnceLock<std::result::Result<DebianGuest, String>> = OnceLock::new();
        let files = FILES.get_or_init(|| {
            fs::create_dir_all(cache).map_err(|e| e.to_string())?;
            let linux = linux_kernel(cache).map_err(|e| e.to_string())?;
            Ok(DebianGuest {
                kernel: linux.vmlinuz,
                modules: linux.modules,
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
    pub(super) fn parse(mut b: &[u8]) -> Vec<(String, u32, u32, Vec<u8>)> {
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

    /// A module's `.modinfo` strings as they appear in the file: NUL-separated.
    fn fake_module(entries: &[&str]) -> Vec<u8> {
        let mut data = b"\x7fELF...license=GPL\0".to_vec();
        for e in entries {
            data.extend(e.bytes());
            data.push(0);
        }
        data.extend(b"__UNIQUE_ID_vermagic194\0");
        data
    }

    #[test]
    fn releases_of_a_bzimage_and_of_modules() {
        let mut image = fake_bzimage("6.1.0-57-cloud-amd64");
        assert_eq!(
            bzimage_release(&image).as_deref(),
            Some("6.1.0-57-cloud-amd64")
        );
        image[0x202] = b'X';
        assert_eq!(bzimage_release(&image), None, "no setup header");
        let module = fake_module(&[
            "depends=virtio_ring,virtio",
            "vermagic=6.1.0-57-cloud-amd64 SMP preempt mod_unload modversions ",
        ]);
        assert_eq!(
            module_release(&module).as_deref(),
            Some("6.1.0-57-cloud-amd64")
        );
        assert_eq!(module_depends(&module), ["virtio_ring", "virtio"]);
        assert!(module_depends(&fake_module(&["depends="])).is_empty());
        assert_eq!(module_release(&fake_module(&[])), None);
    }

    /// A bzImage's first 0x400 bytes saying it is `release`.
    fn fake_bzimage(release: &str) -> Vec<u8> {
        let mut image = vec![0u8; 0x400];
        image[0x202..0x206].copy_from_slice(b"HdrS");
        image[0x20E..0x210].copy_from_slice(&0x100u16.to_le_bytes());
        let version = format!("{release} (debian-kernel@lists.debian.org) #1 SMP\0");
        image[0x300..0x300 + version.len()].copy_from_slice(version.as_bytes());
        image
    }

    #[test]
    fn a_kernel_folder_must_hold_one_release() {
        let dir = std::env::temp_dir().join(format!("castor-kfolder-{}", std::process::id()));
        fs::create_dir_all(dir.join("modules")).unwrap();
        fs::write(dir.join("vmlinuz"), fake_bzimage("6.1.0-57-cloud-amd64")).unwrap();
        let module = |release: &str| fake_module(&[&format!("vermagic={release} SMP ")]);
        for m in NET_MODULES {
            let path = dir.join("modules").join(module_file_name(m));
            fs::write(path, module("6.1.0-57-cloud-amd64")).unwrap();
        }
        assert_eq!(check_kernel_folder(&dir).unwrap(), "6.1.0-57-cloud-amd64");
        fs::write(
            dir.join("modules/virtio_net.ko"),
            module("6.1.0-58-cloud-amd64"),
        )
        .unwrap();
        let err = check_kernel_folder(&dir).unwrap_err().to_string();
        assert!(
            err.contains("virtio_net.ko was built for Some(\"6.1.0-58"),
            "{err}"
        );
        fs::remove_file(dir.join("modules/virtio_net.ko")).unwrap();
        assert!(check_kernel_folder(&dir).is_err(), "a module missing");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn modules_load_after_what_they_depend_on() {
        let ring = fake_module(&["depends="]);
        let virtio = fake_module(&["depends=virtio_ring"]);
        let net = fake_module(&["depends=virtio_ring,virtio,net_failover"]);
        let failover = fake_module(&["depends="]);
        let net_failover = fake_module(&["depends=failover"]);
        let given = [
            ("virtio", &virtio[..]),
            ("virtio_net", &net[..]),
            ("virtio_ring", &ring[..]),
            ("failover", &failover[..]),
            ("net_failover", &net_failover[..]),
        ];
        let order = module_load_order(&given).unwrap();
        assert_eq!(
            order,
            [
                "virtio_ring",
                "virtio",
                "failover",
                "net_failover",
                "virtio_net"
            ]
        );
        let err = module_load_order(&given[..2]).unwrap_err();
        assert!(
            err.to_string().contains("virtio needs virtio_ring"),
            "{err}"
        );
        let a = fake_module(&["depends=b"]);
        let b = fake_module(&["depends=a"]);
        assert!(module_load_order(&[("a", &a[..]), ("b", &b[..])]).is_err());
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
