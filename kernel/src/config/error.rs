// SPDX-License-Identifier: MIT OR Apache-2.0
//! What is wrong with a command line, in words the console shows.

use core::fmt;

use super::keys::{self, KEYS, Need};

/// A command-line error; the `Display` text is what the console shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError<'a> {
    /// The line is not valid UTF-8.
    NotUtf8,
    /// `key=` with a key Castor does not know.
    UnknownKey(&'a str),
    /// A known key with a value it cannot take.
    BadValue {
        /// The key.
        key: &'static str,
        /// The rejected value.
        value: &'a str,
    },
    /// The same key twice.
    Repeated(&'a str),
    /// A word that is not `key=value`.
    NotKeyValue(&'a str),
    /// A key given without one it needs.
    Needs {
        /// The key given.
        key: &'static str,
        /// What it needs and why.
        need: &'static Need,
    },
    /// Two settings that contradict each other.
    Conflict {
        /// One key.
        key: &'static str,
        /// The other.
        other: &'static str,
        /// Why they cannot go together.
        why: &'static str,
    },
}

/// Writes the known keys, comma-separated.
struct KnownKeys;

impl fmt::Display for KnownKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, key) in KEYS.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{}", key.name)?;
        }
        Ok(())
    }
}

impl fmt::Display for ConfigError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::NotUtf8 => write!(f, "the command line is not valid UTF-8"),
            ConfigError::UnknownKey(k) => {
                write!(f, "unknown key '{k}' (known keys: {KnownKeys})")
            }
            ConfigError::BadValue { key, value } => {
                write!(f, "bad value '{value}' for '{key}': expected ")?;
                match keys::find(key) {
                    Some((_, k)) => k.value.describe(f, false),
                    None => f.write_str("nothing: no such key"),
                }
            }
            ConfigError::Repeated(k) => write!(f, "key '{k}' given more than once"),
            ConfigError::NotKeyValue(w) => {
                write!(
                    f,
                    "'{w}' is not of the form key=value (known keys: {KnownKeys})"
                )
            }
            ConfigError::Needs { key, need } => {
                write!(f, "'{key}' needs ")?;
                for (i, other) in need.any_of.iter().enumerate() {
                    let sep = if i == 0 { "" } else { " or " };
                    write!(f, "{sep}'{other}'")?;
                }
                write!(f, ": {}", need.why)
            }
            ConfigError::Conflict { key, other, why } => {
                write!(f, "'{key}' and '{other}' contradict each other: {why}")
            }
        }
    }
}
