// SPDX-License-Identifier: MIT OR Apache-2.0
//! Settings that are refused together, checked once the whole line is parsed: a key given
//! without one it [needs](super::keys::Need), and values that contradict each other.

use castor_ft::link::Role;

use super::Config;
use super::error::ConfigError;
use super::keys::{self, KEYS};

/// Which keys the line gave, by their place in [`KEYS`].
pub type Given = [bool; KEYS.len()];

/// Refuses a key given without one it needs, then settings that contradict each other.
pub fn check(config: &Config, given: &Given) -> Result<(), ConfigError<'static>> {
    needs(given)?;
    conflicts(config)
}

/// Refuses a key given without one it needs.
fn needs(given: &Given) -> Result<(), ConfigError<'static>> {
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

/// Refuses values that contradict each other.
fn conflicts(config: &Config) -> Result<(), ConfigError<'static>> {
    // What this boot runs instead of idling: one at most (a pair is `guest` with `role`).
    let runs = [
        ("selftest", config.selftests.any()),
        ("bench", config.bench.is_some()),
        ("linktest", config.linktest_mib.is_some()),
        ("guest", config.guest_module),
    ];
    let mut asked = runs.iter().filter(|(_, on)| *on).map(|(key, _)| *key);
    if let (Some(key), Some(other)) = (asked.next(), asked.next()) {
        return Err(ConfigError::Conflict {
            key,
            other,
            why: "each chooses what this boot runs; give one",
        });
    }
    if config.epoch_min_ms > config.epoch_max_ms {
        return Err(ConfigError::Conflict {
            key: "epoch_min",
            other: "epoch_max",
            why: "the shortest epoch is longer than the longest",
        });
    }
    if config.witness && config.ip.is_some() && config.witness_ip.is_none() {
        return Err(ConfigError::Conflict {
            key: "witness",
            other: "ip",
            why: "over UDP/IPv4 the witness is reached at its address: give witness_ip=",
        });
    }
    if config.ft_freeze.is_some() && config.role == Some(Role::Backup) {
        return Err(ConfigError::Conflict {
            key: "ft_freeze",
            other: "role",
            why: "only the primary freezes, and this host is the backup",
        });
    }
    Ok(())
}
