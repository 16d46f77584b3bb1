// SPDX-License-Identifier: MIT OR Apache-2.0
//! Settings that are refused together, checked once the whole line is parsed: a key given
//! without one it [needs](super::keys::Need).

use super::error::ConfigError;
use super::keys::{self, KEYS};

/// Which keys the line gave, by their place in [`KEYS`].
pub type Given = [bool; KEYS.len()];

/// Refuses a key given without one it needs.
pub fn check(given: &Given) -> Result<(), ConfigError<'static>> {
    let has = |name: &str| keys::find(name).is_some_and(|(slot, _)| given[slot]);
    for (key, _) in KEYS.iter().zip(given).filter(|(_, given)| **given) {
        if let Some(need) = key.needs.iter().find(|n| !n.any_of.iter().any(|k| has(k))) {
            return Err(ConfigError::Needs {
                key: key.name,
                need,
            });
        }
    }
    Ok(())
}
