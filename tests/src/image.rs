//! Bootable BIOS GRUB ISOs (for Bochs, QEMU `-cdrom` and bare metal) made with `grub-mkrescue`.
//!
//! The layout is fixed: the kernel is `/boot/castor`, extra Multiboot2 modules are
//! `/boot/<name>`, and `/boot/grub/grub.cfg` boots the single menu entry at once. The same ISO
//! can boot a Linux kernel natively instead ([`Loader::Linux`]: GRUB's `linux` and `initrd`
//! commands), which tests use to compare a guest with the same kernel on the bare emulator.

use crate::error::{Context, Error, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// An extra Multiboot2 boot module (`module2 /boot/NAME ARGS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootModule {
    /// File name inside `/boot` on the ISO.
    pub name: String,
    /// The file on the host.
    pub path: PathBuf,
    /// The module's command line.
    pub args: String,
}

/// How GRUB loads the ISO's kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Loader {
    /// `multiboot2` with each module as `module2` (Castor).
    #[default]
    Multiboot2,
    /// `linux` (a bzImage by the Linux boot protocol) with the modules, concatenated, as its
    /// `initrd`; module arguments are not used.
    Linux,
}

/// What goes on an ISO: the kernel, its command line and any boot modules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsoSpec {
    /// The kernel ELF on the host.
    pub kernel: PathBuf,
    /// Castor's command line.
    pub cmdline: String,
    /// Extra boot modules, in load order.
    pub modules: Vec<BootModule>,
    /// How GRUB loads the kernel.
    pub loader: Loader,
}

impl IsoSpec {
    /// An ISO booting `kernel` with `cmdline` and no modules.
    pub fn new(kernel: impl Into<PathBuf>, cmdline: impl Into<String>) -> Self {
        Self {
            kernel: kernel.into(),
            cmdline: cmdline.into(),
            modules: Vec::new(),
            loader: Loader::Multiboot2,
        }
    }

    /// The `grub.cfg` for this ISO.
    pub fn grub_cfg(&self) -> Result<String> {
        let mut cfg = String::from("set timeout=0\nset default=0\n\nmenuentry \"Castor\" {\n");
        let command = match self.loader {
            Loader::Multiboot2 => "multiboot2",
            Loader::Linux => "linux",
        };
        cfg += &format!("    {command} /boot/castor{}\n", grub_words(&self.cmdline)?);
        for module in &self.modules {
            check_module_name(&module.name)?;
        }
        match self.loader {
            Loader::Multiboot2 => {
                for module in &self.modules {
                    cfg += &format!(
                        "    module2 /boot/{}{}\n",
                        module.name,
                        grub_words(&module.args)?
                    );
                }
            }
            Loader::Linux if !self.modules.is_empty() => {
                let files: Vec<String> = self
                    .modules
                    .iter()
                    .map(|m| format!(" /boot/{}", m.name))
                    .collect();
                cfg += &format!("    initrd{}\n", files.concat());
            }
            Loader::Linux => {}
        }
        cfg += "    boot\n}\n";
        Ok(cfg)
    }

    /// Builds the ISO at `out`, staging its tree in `work` (created, and removed afterwards).
    pub fn build(&self, out: &Path, work: &Path) -> Result<()> {
        let cfg = self.grub_cfg()?;
        let root = work.join("iso-root");
        let boot = root.join("boot");
        fs::create_dir_all(boot.join("grub")).context(format!("creating {}", boot.display()))?;
        fs::write(boot.join("grub").join("grub.cfg"), cfg).context("writing grub.cfg")?;
        copy(&self.kernel, &boot.join("castor"))?;
        for module in &self.modules {
            copy(&module.path, &boot.join(&module.name))?;
        }
        let result = grub_mkrescue(out, &root);
        let _ = fs::remove_dir_all(&root);
        result
    }
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    fs::copy(from, to)
        .map(drop)
        .context(format!("copying {} to {}", from.display(), to.display()))
}

fn grub_mkrescue(out: &Path, root: &Path) -> Result<()> {
    let output = Command::new("grub-mkrescue")
        .arg("-o")
        .arg(out)
        .arg(root)
        .stdin(Stdio::null())
        .output()
        .context("running grub-mkrescue (packages grub-pc-bin grub-common xorriso mtools)")?;
    if !output.status.success() {
        return Err(Error::new(format!(
            "grub-mkrescue failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(())
}

/// Module names become paths on the ISO (and links in QEMU's run directory): keep them to one
/// plain path component.
pub(crate) fn check_module_name(name: &str) -> Result<()> {
    let plain = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    match plain && !name.is_empty() && name != "castor" && !name.starts_with('.') {
        true => Ok(()),
        false => Err(Error::new(format!("bad boot module name {name:?}"))),
    }
}

/// A command line as GRUB script words, each preceded by a space.
///
/// GRUB passes plain words through unchanged; anything else is single-quoted so GRUB's script
/// parser takes it literally. A single quote cannot be expressed and is refused.
fn grub_words(cmdline: &str) -> Result<String> {
    let mut out = String::new();
    for word in cmdline.split_whitespace() {
        if word.contains('\'') {
            return Err(Error::new(format!(
                "single quotes are not allowed in {cmdline:?}"
            )));
        }
        let plain = word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "=,._:/+-@%".contains(c));
        match plain {
            true => out += &format!(" {word}"),
            false => out += &format!(" '{word}'"),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grub_cfg_boots_castor_with_its_command_line() {
        let spec = IsoSpec::new("/k", "selftest=all  cpus=2");
        let cfg = spec.grub_cfg().unwrap();
        assert_eq!(
            cfg,
            "set timeout=0\nset default=0\n\nmenuentry \"Castor\" {\n    \
             multiboot2 /boot/castor selftest=all cpus=2\n    boot\n}\n"
        );
    }

    #[test]
    fn grub_cfg_lists_modules_in_order() {
        let mut spec = IsoSpec::new("/k", "");
        for (name, args) in [("guest.elf", "a=1"), ("initrd", "")] {
            let path = PathBuf::from("/x");
            spec.modules.push(BootModule {
                name: name.into(),
                path,
                args: args.into(),
            });
        }
        let cfg = spec.grub_cfg().unwrap();
        assert!(cfg.contains("    multiboot2 /boot/castor\n    module2 /boot/guest.elf a=1\n"));
        assert!(cfg.contains("    module2 /boot/initrd\n    boot\n"));
        spec.loader = Loader::Linux;
        spec.cmdline = "console=ttyS0".into();
        let cfg = spec.grub_cfg().unwrap();
        assert!(
            cfg.contains("    linux /boot/castor console=ttyS0\n    initrd /boot/guest.elf /boot/initrd\n    boot\n"),
            "{cfg}"
        );
    }

    #[test]
    fn unusual_words_are_quoted_and_quotes_refused() {
        assert_eq!(grub_words("a=$x b;c ok").unwrap(), " 'a=$x' 'b;c' ok");
        assert!(grub_words("it's").is_err());
    }

    #[test]
    fn module_names_must_be_plain() {
        for bad in ["", "../x", "a/b", "castor", ".hidden", "a b"] {
            assert!(check_module_name(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_module_name("guest-1.elf").is_ok());
    }
}
