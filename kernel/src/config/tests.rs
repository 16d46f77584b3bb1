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
        "unknown key 'bogus' (known keys: log, selftest, cpus, bench, guest, guest_ram, role, key, linktest, peer_timeout, link_loss, linkbench, ip, peer_ip, gateway, epoch_min, epoch_max, digests, ft_freeze, stun_buffers)"
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

#[test]
fn pair_keys() {
    let c = Config::parse("role=primary guest=module epoch_min=5 epoch_max=40 digests=on").unwrap();
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
    let key = "2b7e151628aed2a6abf7158809cf4f3c762e7160f38b4da56a784d9045190cfe";
    let line = alloc::format!(
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
