// SPDX-License-Identifier: MIT OR Apache-2.0
//! Host tests of the command-line parser.

use super::*;
use std::string::ToString;

#[test]
fn defaults_and_image_path() {
    assert_eq!(Config::parse(""), Ok(Config::default()));
    assert_eq!(Config::parse("/boot/castor"), Ok(Config::default()));
    let c = Config::parse("/boot/castor log=debug cpus=2").unwrap();
    assert_eq!((c.log, c.max_cpus), (LevelFilter::Debug, Some(2)));
}

#[test]
fn selftest_lists() {
    let all = Config::parse("selftest=all").unwrap().selftests;
    for t in SelfTest::ALL {
        let everyday = t.selection() == Selection::All;
        assert_eq!(
            all.contains(t),
            everyday,
            "{t:?}: only when named, or with all"
        );
        assert_eq!(SelfTest::named(t.name()), Some(t));
    }
    let some = Config::parse("selftest=wx,fault").unwrap().selftests;
    assert_eq!(
        some.iter().collect::<Vec<_>>(),
        [SelfTest::Wx, SelfTest::Fault]
    );
    assert!(!Config::parse("selftest=none").unwrap().selftests.any());
    let named: Vec<_> = SelfTest::ALL.iter().map(|t| t.name()).collect();
    let line = format!("selftest={}", named.join(","));
    let every = Config::parse(&line).unwrap().selftests;
    assert_eq!(every.iter().count(), SelfTest::ALL.len());
}

#[test]
fn errors_name_the_problem() {
    let e = Config::parse("log=info bogus=1").unwrap_err();
    assert_eq!(e, ConfigError::UnknownKey("bogus"));
    assert_eq!(
        e.to_string(),
        "unknown key 'bogus' (known keys: log, selftest, cpus, bench, guest, guest_ram, guest_net, guest_mac, role, key, linktest, peer_timeout, link_loss, linkbench, ip, peer_ip, gateway, epoch_min, epoch_max, digests, ft_freeze, stun_buffers, delta_cache, ft_trace, witness, witness_ip)"
    );
    assert_eq!(
        Config::parse("bench=vmexit").unwrap().bench,
        Some(Bench::VmExit)
    );
    assert_eq!(
        Config::parse("bench=harvest").unwrap().bench,
        Some(Bench::Harvest)
    );
    assert!(matches!(
        Config::parse("bench=fast"),
        Err(ConfigError::BadValue { .. })
    ));
    let e = Config::parse("log=loud").unwrap_err();
    assert_eq!(
        e.to_string(),
        "bad value 'loud' for 'log': expected one of error, warn, info, debug, trace"
    );
    assert!(matches!(
        Config::parse("cpus=0"),
        Err(ConfigError::BadValue { .. })
    ));
    assert!(matches!(
        Config::parse("cpus=65"),
        Err(ConfigError::BadValue { .. })
    ));
    assert!(matches!(
        Config::parse("cpus=two"),
        Err(ConfigError::BadValue { .. })
    ));
    assert!(matches!(
        Config::parse("selftest=wx,nope"),
        Err(ConfigError::BadValue { .. })
    ));
    assert!(matches!(
        Config::parse("selftest="),
        Err(ConfigError::BadValue { .. })
    ));
    assert_eq!(
        Config::parse("log=info log=warn"),
        Err(ConfigError::Repeated("log"))
    );
    assert_eq!(
        Config::parse("verbose"),
        Err(ConfigError::NotKeyValue("verbose"))
    );
    assert_eq!(
        Config::parse("cpus=1 /x"),
        Err(ConfigError::NotKeyValue("/x"))
    );
}

/// A valid pre-shared key.
const KEY: &str = "2b7e151628aed2a6abf7158809cf4f3c762e7160f38b4da56a784d9045190cfe";

#[test]
fn pair_keys() {
    let line = format!("role=primary key={KEY} guest=module epoch_min=5 epoch_max=40 digests=on");
    let c = Config::parse(&line).unwrap();
    assert_eq!((c.epoch_min_ms, c.epoch_max_ms, c.digests), (5, 40, true));
    let d = Config::default();
    assert_eq!(
        (d.epoch_min_ms, d.epoch_max_ms, d.digests),
        (DEFAULT_EPOCH_MIN_MS, DEFAULT_EPOCH_MAX_MS, false)
    );
    for bad in [
        "epoch_min=0",
        "epoch_max=10001",
        "epoch_min=x",
        "digests=yes",
    ] {
        assert!(
            matches!(Config::parse(bad), Err(ConfigError::BadValue { .. })),
            "{bad} accepted"
        );
    }
    assert_eq!(
        Config::parse("epoch_max=5 epoch_max=6"),
        Err(ConfigError::Repeated("epoch_max"))
    );
}

#[test]
fn peer_link_keys() {
    let key = KEY;
    let line = format!(
        "role=backup key={key} linktest=4 peer_timeout=2000 link_loss=5 linkbench=1 \
         ip=10.0.0.2/24 peer_ip=10.0.1.2 gateway=10.0.0.254"
    );
    let c = Config::parse(&line).unwrap();
    assert_eq!(c.role, Some(Role::Backup));
    assert_eq!(c.key, Some(PreSharedKey::from_hex(key).unwrap()));
    assert_eq!((c.linktest_mib, c.peer_timeout_ms), (Some(4), 2000));
    assert_eq!((c.link_loss_percent, c.linkbench), (5, true));
    assert_eq!(c.ip, Ipv4Cidr::parse("10.0.0.2/24"));
    assert_eq!(c.peer_ip, Some(Ipv4Addr::new(10, 0, 1, 2)));
    assert_eq!(c.gateway, Some(Ipv4Addr::new(10, 0, 0, 254)));
    for bad in [
        "role=both",
        "key=00",
        "linktest=0",
        "peer_timeout=99",
        "link_loss=91",
        "linkbench=yes",
        "ip=10.0.0.2",
        "ip=10.0.0.2/33",
        "peer_ip=10.0.0.256",
        "peer_ip=255.255.255.255",
        "gateway=224.0.0.1",
    ] {
        assert!(
            matches!(Config::parse(bad), Err(ConfigError::BadValue { .. })),
            "{bad}"
        );
    }
    assert_eq!(
        Config::parse("ip=10.0.0.1/8 ip=10.0.0.2/8"),
        Err(ConfigError::Repeated("ip"))
    );
}

/// A pair's keys, for lines that add to them.
const KEY_PAIR: &str = concat!(
    "role=primary guest=module key=",
    "2b7e151628aed2a6abf7158809cf4f3c762e7160f38b4da56a784d9045190cfe"
);

#[test]
fn a_witness_over_udp_is_reached_at_its_address() {
    let c = Config::parse(&format!(
        "{KEY_PAIR} witness=on ip=10.0.0.1/24 peer_ip=10.0.1.2 gateway=10.0.0.254 \
         witness_ip=10.0.2.9"
    ))
    .unwrap();
    assert!(c.witness);
    assert_eq!(c.witness_ip, Some(Ipv4Addr::new(10, 0, 2, 9)));
    for bad in [
        "witness_ip=10.0.2",
        "witness_ip=0.0.0.0",
        "witness_ip=239.0.0.1",
    ] {
        assert!(
            matches!(Config::parse(bad), Err(ConfigError::BadValue { .. })),
            "{bad}"
        );
    }
}

#[test]
fn a_key_without_one_it_needs_is_refused_naming_both() {
    for (line, key, needs) in [
        ("role=primary guest=module".to_string(), "role", "'key'"),
        (
            format!("role=primary key={KEY}"),
            "role",
            "'guest' or 'linktest'",
        ),
        (format!("key={KEY} guest=module"), "key", "'role'"),
        ("linktest=1".to_string(), "linktest", "'role'"),
        ("peer_timeout=500".to_string(), "peer_timeout", "'role'"),
        (
            "link_loss=5 selftest=all".to_string(),
            "link_loss",
            "'role'",
        ),
        (
            format!("role=primary key={KEY} linktest=1 ip=10.0.0.1/24"),
            "ip",
            "'peer_ip'",
        ),
        (
            format!("role=primary key={KEY} linktest=1 peer_ip=10.0.0.2"),
            "peer_ip",
            "'ip'",
        ),
        ("gateway=10.0.0.254".to_string(), "gateway", "'ip'"),
        (
            format!("role=primary key={KEY} linkbench=1 guest=module"),
            "linkbench",
            "'linktest'",
        ),
        ("guest_ram=16".to_string(), "guest_ram", "'guest'"),
        (
            "guest=module epoch_min=5".to_string(),
            "epoch_min",
            "'role'",
        ),
        (
            format!("role=primary key={KEY} linktest=1 digests=on"),
            "digests",
            "'guest'",
        ),
        ("ft_freeze=run@3".to_string(), "ft_freeze", "'role'"),
        ("stun_buffers=0".to_string(), "stun_buffers", "'role'"),
        ("epoch_max=50".to_string(), "epoch_max", "'role'"),
        (
            format!("{KEY_PAIR} ip=10.0.0.1/24 peer_ip=10.0.0.2 witness_ip=10.0.0.9"),
            "witness_ip",
            "'witness'",
        ),
        (
            format!("{KEY_PAIR} witness=on witness_ip=10.0.0.9"),
            "witness_ip",
            "'ip'",
        ),
    ] {
        let e = Config::parse(&line).unwrap_err();
        assert!(
            matches!(e, ConfigError::Needs { key: k, .. } if k == key),
            "{line}: {e:?}"
        );
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("'{key}' needs {needs}: ")),
            "{text}"
        );
    }
}

#[test]
fn contradictory_settings_are_refused_naming_both() {
    let pair = format!("role=primary key={KEY} guest=module");
    for (line, key, other) in [
        ("selftest=all bench=vmexit".to_string(), "selftest", "bench"),
        ("guest=module selftest=wx".to_string(), "selftest", "guest"),
        ("bench=harvest guest=module".to_string(), "bench", "guest"),
        (format!("{pair} linktest=1"), "linktest", "guest"),
        (
            format!("{pair} epoch_min=30 epoch_max=20"),
            "epoch_min",
            "epoch_max",
        ),
        (format!("{pair} epoch_min=30"), "epoch_min", "epoch_max"),
        (
            format!("role=backup key={KEY} guest=module ft_freeze=stun@4"),
            "ft_freeze",
            "role",
        ),
        (
            format!("{pair} witness=on ip=10.0.0.1/24 peer_ip=10.0.0.2"),
            "witness",
            "ip",
        ),
    ] {
        let e = Config::parse(&line).unwrap_err();
        assert!(
            matches!(e, ConfigError::Conflict { key: k, other: o, .. } if (k, o) == (key, other)),
            "{line}: {e:?}"
        );
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("'{key}' and '{other}' contradict each other: ")),
            "{text}"
        );
    }
    // What is not contradictory stays accepted.
    for line in [
        format!("{pair} epoch_min=20 epoch_max=20 ft_freeze=send@2 stun_buffers=0"),
        format!("role=backup key={KEY} guest=module stun_buffers=0 digests=on link_loss=5"),
        format!("role=backup key={KEY} linktest=8 linkbench=1 peer_timeout=500"),
        "guest=module selftest=none guest_ram=16".to_string(),
        "selftest=all cpus=2 log=debug".to_string(),
    ] {
        assert!(Config::parse(&line).is_ok(), "{line}");
    }
}

#[test]
fn one_mode_per_line() {
    for (line, mode) in [
        (String::new(), Mode::Idle),
        ("selftest=none".to_string(), Mode::Idle),
        ("selftest=wx".to_string(), Mode::SelfTest),
        ("bench=harvest".to_string(), Mode::Bench(Bench::Harvest)),
        ("guest=module".to_string(), Mode::Guest),
        (format!("guest=module role=backup key={KEY}"), Mode::Pair),
        (format!("linktest=2 role=primary key={KEY}"), Mode::LinkTest),
    ] {
        assert_eq!(Config::parse(&line).unwrap().mode(), mode, "{line}");
    }
}

#[test]
fn every_word_of_a_key_sets_something_different() {
    for key in &KEYS {
        let keys::Value::Words(words) = &key.value else {
            continue;
        };
        let configs: Vec<Config> = words
            .iter()
            .map(|(word, _)| {
                let mut c = Config::default();
                assert!(key.apply(&mut c, word), "{}={word}", key.name);
                c
            })
            .collect();
        for (i, c) in configs.iter().enumerate() {
            assert!(
                !configs[..i].contains(c),
                "{}: two words set the same",
                key.name
            );
        }
        assert!(!key.apply(&mut Config::default(), "nonsense"));
    }
}

#[test]
fn numbers_are_checked_against_the_tables_range() {
    for key in &KEYS {
        let keys::Value::Number { min, max, .. } = key.value else {
            continue;
        };
        for n in [min, max] {
            assert!(key.apply(&mut Config::default(), &n.to_string()));
        }
        for n in [min.checked_sub(1), max.checked_add(1)]
            .into_iter()
            .flatten()
        {
            assert!(!key.apply(&mut Config::default(), &n.to_string()));
            let line = format!("{}={n}", key.name);
            let e = Config::parse(&line).unwrap_err().to_string();
            assert!(e.contains(&format!("{min} to {max}")), "{e}");
        }
    }
}

#[test]
fn documented_defaults_are_the_defaults() {
    for key in &KEYS {
        if let keys::Unset::Value(value) = key.unset {
            let mut c = Config::default();
            assert!(key.apply(&mut c, value), "{}={value}", key.name);
            assert_eq!(c, Config::default(), "{}={value}", key.name);
        }
    }
}

#[test]
fn every_need_names_a_key() {
    for key in &KEYS {
        for need in key.needs {
            for other in need.any_of {
                assert!(keys::find(other).is_some(), "{}: {other}", key.name);
                assert_ne!(*other, key.name);
            }
        }
    }
}

#[test]
fn selftest_errors_name_every_test() {
    let e = Config::parse("selftest=nope").unwrap_err().to_string();
    for t in SelfTest::ALL {
        assert!(e.contains(t.name()), "{e} lacks {}", t.name());
    }
}

/// The README's "Kernel command line" table, row by row, as the table in `keys` says it.
fn readme_rows() -> Vec<String> {
    let mut rows = vec![
        "| key | values | default | what it does | needs |".to_string(),
        "|---|---|---|---|---|".to_string(),
    ];
    for key in &KEYS {
        let mut values = String::new();
        key.value.describe(&mut values, true).unwrap();
        let default = match key.unset {
            keys::Unset::Value(v) => format!("`{v}`"),
            keys::Unset::Means(m) => m.to_string(),
        };
        let needs: Vec<String> = key
            .needs
            .iter()
            .map(|need| {
                let any: Vec<String> = need.any_of.iter().map(|k| format!("`{k}`")).collect();
                any.join(" or ")
            })
            .collect();
        rows.push(format!(
            "| `{}` | {values} | {default} | {} | {} |",
            key.name,
            key.help,
            needs.join(", ")
        ));
    }
    rows
}

#[test]
fn the_readme_lists_exactly_the_keys() {
    let readme = include_str!("../../../README.md");
    let section = readme
        .split("\n## Kernel command line\n")
        .nth(1)
        .expect("README has a 'Kernel command line' section");
    let section = section.split("\n## ").next().unwrap();
    let table: Vec<&str> = section.lines().filter(|l| l.starts_with('|')).collect();
    let expected = readme_rows();
    assert!(
        table == expected,
        "README.md's 'Kernel command line' table differs from config/keys.rs; it should be:\n{}",
        expected.join("\n")
    );
    let selftest_row = table
        .iter()
        .find(|row| row.starts_with("| `selftest` |"))
        .expect("a selftest row");
    for t in SelfTest::ALL {
        assert!(
            selftest_row.contains(&format!("`{}`", t.name())),
            "{}",
            t.name()
        );
    }
}
