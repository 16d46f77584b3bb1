//! A private directory for a run's unix sockets, at a short path whatever the checkout's path.
//!
//! A unix socket's path must fit `sun_path` (108 bytes with the terminating NUL, unix(7)), and
//! a run directory under a checkout at an ordinary path (`/tmp/tmp.XXXXXXXXXX/castor/target/
//! castor-runs/<test name>-<pid>-<n>/`) is already close to that. So sockets live in a
//! directory of their own, `$XDG_RUNTIME_DIR/castor-XXXXXX` when that is short, else
//! `/tmp/castor-XXXXXX`, made by `mkdtemp(3)` (a fresh unique name, mode 0700) and removed with
//! its run.

use crate::error::{Error, Result};
use std::ffi::{CString, OsString};
use std::fs;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// Longest unix socket path, without the terminating NUL (`sun_path` is 108 bytes).
pub const MAX_SOCKET_PATH: usize = 107;

/// Longest `$XDG_RUNTIME_DIR` used; a longer one gives way to `/tmp`.
const MAX_BASE: usize = 48;

/// A private socket directory; removed (with what is in it) when dropped.
#[derive(Debug)]
pub struct SocketDir {
    path: PathBuf,
}

impl SocketDir {
    /// Creates a fresh directory under `$XDG_RUNTIME_DIR` (if set, absolute and short) or
    /// `/tmp`.
    pub fn create() -> Result<SocketDir> {
        let runtime = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from);
        let base = runtime
            .filter(|p| p.is_absolute() && p.is_dir() && p.as_os_str().len() <= MAX_BASE)
            .unwrap_or_else(|| PathBuf::from("/tmp"));
        SocketDir::create_in(&base)
    }

    /// Creates a fresh `castor-XXXXXX` directory in `base`.
    pub fn create_in(base: &Path) -> Result<SocketDir> {
        let template = base.join("castor-XXXXXX");
        let template = CString::new(template.as_os_str().as_bytes())
            .map_err(|_| Error::new(format!("{} holds a NUL byte", base.display())))?;
        let mut template = template.into_bytes_with_nul();
        // SAFETY: `template` is a writable, NUL-terminated buffer ending in "XXXXXX" before the
        // NUL, as mkdtemp(3) requires; it only rewrites those six bytes in place.
        let made = unsafe { libc::mkdtemp(template.as_mut_ptr().cast()) };
        if made.is_null() {
            let why = std::io::Error::last_os_error();
            return Err(Error::new(format!(
                "creating a socket directory in {}: {why}",
                base.display()
            )));
        }
        template.pop(); // the NUL
        Ok(SocketDir {
            path: PathBuf::from(OsString::from_vec(template)),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path for the socket `name` in the directory, checked against the `sun_path` limit.
    pub fn socket(&self, name: &str) -> Result<PathBuf> {
        let path = self.path.join(name);
        match path.as_os_str().len() <= MAX_SOCKET_PATH {
            true => Ok(path),
            false => Err(Error::new(format!(
                "socket path {} is too long for a unix socket",
                path.display()
            ))),
        }
    }
}

impl Drop for SocketDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn directories_are_private_unique_short_and_removed() {
        let a = SocketDir::create().unwrap();
        let b = SocketDir::create().unwrap();
        assert_ne!(a.path(), b.path());
        let mode = fs::metadata(a.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{}", a.path().display());
        assert!(a.socket("monitor.sock").is_ok());
        assert!(a.socket(&"x".repeat(MAX_SOCKET_PATH)).is_err());
        let path = a.path().to_path_buf();
        drop(a);
        assert!(!path.exists());
    }
}
