//! Unit tests of castor-run's argument parsing.

use super::*;

fn run(args: &[&str]) -> Result<Parsed<RunArgs>> {
    parse_run_args(args.iter().map(|a| a.to_string()))
}

fn args(args: &[&str]) -> RunArgs {
    match run(args) {
        Ok(Parsed::Args(a)) => a,
        other => panic!("{args:?}: {other:?}"),
    }
}

fn pair_args(given: &[&str]) -> PairArgs {
    match args(given).mode {
        Mode::Pair(pair) => pair,
        single => panic!("{given:?}: {single:?}"),
    }
}

/// A file that exists, to stand in for a guest kernel.
fn some_file() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml").to_string()
}

#[test]
fn no_arguments_run_a_qemu_pair_with_the_demo_guest_until_stopped() {
    let a = args(&[]);
    assert_eq!(
        (a.emulator, a.cpus, a.append.as_str(), &a.guest),
        (EmulatorKind::Qemu, PAIR_CPUS, "", &None)
    );
    let expected = PairArgs {
        duration: None,
        failover_at: Vec::new(),
        reprotect: false,
        peer_timeout_ms: None,
        nic: Nic::VirtioNet,
        guest_net: None,
    };
    assert_eq!(a.mode, Mode::Pair(expected));
    assert_eq!(run(&["--cpus", "2", "-h"]).unwrap(), Parsed::Help);
}

#[test]
fn pair_options() {
    let p = pair_args(&[
        "--duration=20",
        "--failover-at",
        "7.5",
        "--peer-timeout",
        "1500",
        "--nic",
        "e1000",
    ]);
    assert_eq!(p.duration, Some(Duration::from_secs(20)));
    assert_eq!(p.failover_at, [Duration::from_millis(7500)]);
    assert_eq!((p.peer_timeout_ms, p.nic), (Some(1500), Nic::E1000));
    let p = pair_args(&["--guest-net", "10.0.2.1/24"]);
    assert_eq!(p.guest_net.as_deref(), Some("10.0.2.1/24"));
    for (bad, says) in [
        (
            &["--guest-net", "10.0.2.1"][..],
            "an IPv4 address and prefix",
        ),
        (&["--single", "--guest-net", "10.0.2.1/24"], "is for a pair"),
        (
            &["--emulator", "bochs", "--guest-net", "10.0.2.1/24"],
            "only QEMU hosts",
        ),
        (&["--append", "guest_net=nic"], "use --guest-net"),
        (
            &["--failover-at", "3", "--failover-at", "5"],
            "needs --reprotect",
        ),
        (
            &["--reprotect", "--emulator", "bochs"],
            "QEMU hosts on one emulated segment",
        ),
        (
            &["--reprotect", "--failover-at", "9", "--duration", "8"],
            "must come before the end",
        ),
        (&["--single", "--reprotect"], "is for a pair"),
    ] {
        let e = run(bad).unwrap_err().to_string();
        assert!(e.contains(says), "{bad:?}: {e}");
    }
    // Kill without an end: the run goes on until Ctrl-C.
    let p = pair_args(&["--failover-at", "3"]);
    assert_eq!(
        (p.failover_at, p.duration),
        (vec![Duration::from_secs(3)], None)
    );
    // Several failovers with re-protection, in time order.
    let p = pair_args(&["--reprotect", "--failover-at", "40", "--failover-at", "20"]);
    assert!(p.reprotect);
    assert_eq!(
        p.failover_at,
        [Duration::from_secs(20), Duration::from_secs(40)]
    );
    let a = args(&[
        "--emulator",
        "bochs",
        "--cpus",
        "2",
        "--append",
        "log=debug",
    ]);
    assert_eq!((a.emulator, a.cpus), (EmulatorKind::Bochs, 2));
    let Mode::Pair(p) = a.mode else { panic!() };
    assert_eq!(p.nic, Nic::E1000, "Bochs hosts have an e1000");
    assert_eq!(
        args(&["--emulator", "bochs"]).cpus,
        BOCHS_PAIR_CPUS,
        "a Bochs pair's own default"
    );
    assert_eq!(PAIR_CPUS, 2, "a QEMU pair host has a CPU for the pipeline");
    let file = some_file();
    let a = args(&["--guest", &file, "--guest-args", "x=1", "--guest-ram", "32"]);
    let guest = a.guest.unwrap();
    assert_eq!((guest.args.as_str(), guest.ram_mib), ("x=1", Some(32)));
}

#[test]
fn single_defaults_and_options() {
    let a = args(&["--single"]);
    assert_eq!(
        (a.emulator, a.cpus, a.append.as_str(), a.mode),
        (
            EmulatorKind::Qemu,
            SINGLE_CPUS,
            "",
            Mode::Single { timeout: None }
        )
    );
    let a = args(&[
        "--emulator",
        "bochs",
        "--cpus=4",
        "--append",
        "selftest=all log=debug",
        "--timeout",
        "0",
        "--single",
    ]);
    assert_eq!(
        (a.emulator, a.cpus, a.append.as_str()),
        (EmulatorKind::Bochs, 4, "selftest=all log=debug")
    );
    assert_eq!(
        a.mode,
        Mode::Single {
            timeout: Some(None)
        }
    );
    let a = args(&["--single", "--timeout=5"]);
    let timeout = Some(Some(Duration::from_secs(5)));
    assert_eq!(a.mode, Mode::Single { timeout });
}

#[test]
fn nonsense_is_refused() {
    for bad in [
        &["--emulator", "vbox"][..],
        &["--cpus", "0"],
        &["--cpus", "many"],
        &["--single", "--timeout", "-1"],
        &["--append"],
        &["--frobnicate", "1"],
        &["--help=yes"],
        &["--single=yes"],
        &["stray"],
        &["--duration", "0"],
        &["--duration", "-3"],
        &["--duration", "inf"],
        &["--duration", "NaN"],
        &["--failover-at", "soon"],
        &["--peer-timeout", "99"],
        &["--peer-timeout", "600001"],
        &["--nic", "rtl8139"],
    ] {
        assert!(run(bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn mode_combinations_are_checked() {
    let cases: [(&[&str], &str); 13] = [
        (&["--single", "--duration", "5"], "--duration is for a pair"),
        (
            &["--single", "--failover-at", "5"],
            "--failover-at is for a pair",
        ),
        (
            &["--single", "--peer-timeout", "500"],
            "--peer-timeout is for a pair",
        ),
        (&["--single", "--nic", "e1000"], "--nic is for a pair"),
        (&["--timeout", "5"], "--timeout is for --single"),
        (
            &["--failover-at", "5", "--duration", "5"],
            "--failover-at 5s must come before the end of --duration 5s",
        ),
        (
            &["--emulator", "bochs", "--nic", "virtio-net"],
            "Bochs hosts have only an e1000",
        ),
        (
            &["--append", "log=debug role=backup"],
            "sets role= and key=",
        ),
        (&["--append", "key=00"], "sets role= and key="),
        (&["--append", "peer_timeout=500"], "use --peer-timeout"),
        (&["--append", "guest_ram=8"], "use --guest-ram"),
        (&["--append", "guest=module"], "always runs a guest"),
        (&["--append", "selftest=all"], "add --single"),
    ];
    for (bad, why) in cases {
        let err = run(bad).expect_err(&format!("{bad:?} accepted"));
        assert!(err.to_string().contains(why), "{bad:?}: {err}");
    }
    // Pair-only words are fine for one host.
    let a = args(&["--single", "--append", "role=primary key=00 selftest=all"]);
    assert_eq!(a.cmdline(), "role=primary key=00 selftest=all");
}

#[test]
fn single_guest_options() {
    let file = some_file();
    let a = args(&[
        "--single",
        "--emulator=bochs",
        "--guest",
        &file,
        "--guest-args",
        "status=7 hello=world",
        "--append",
        "log=debug",
    ]);
    let guest = a.guest.clone().unwrap();
    assert_eq!(
        (guest.file, guest.args.as_str(), guest.ram_mib),
        (PathBuf::from(&file), "status=7 hello=world", None)
    );
    assert_eq!(a.cmdline(), "guest=module log=debug");
    assert_eq!(a.memory_mib(), MACHINE_MIB);

    let a = args(&[
        "--single",
        "--guest-ram=3072",
        "--guest",
        &file,
        "--append",
        " cpus=1  ",
    ]);
    let guest = a.guest.clone().unwrap();
    assert_eq!((guest.args.as_str(), guest.ram_mib), ("", Some(3072)));
    assert_eq!(a.cmdline(), "guest=module guest_ram=3072 cpus=1");
    assert_eq!(a.memory_mib(), 3072 + HOST_RESERVE_MIB);
    let a = args(&["--single", "--guest", &file, "--guest-ram", "2"]);
    assert_eq!(a.memory_mib(), 256);
    // guest_ram= in --append is fine on its own.
    let a = args(&["--single", "--guest", &file, "--append", "guest_ram=16"]);
    assert_eq!(a.cmdline(), "guest=module guest_ram=16");

    let a = args(&["--single", "--append", "selftest=all"]);
    assert_eq!((&a.guest, a.cmdline().as_str()), (&None, "selftest=all"));
}

#[test]
fn guest_options_are_checked_in_both_modes() {
    let file = some_file();
    let cases: [(&[&str], &str); 10] = [
        (&["--guest-args", "x=1"], "--guest-args needs --guest FILE"),
        (&["--guest-ram", "8"], "--guest-ram needs --guest FILE"),
        (&["--guest", "/nonexistent/guest"], "no such file"),
        (&["--guest", "/"], "no such file"),
        (
            &["--guest", &file, "--guest-ram", "1"],
            "expected MiB from 2 to 3072",
        ),
        (&["--guest", &file, "--guest-ram", "3073"], "expected MiB"),
        (&["--guest", &file, "--guest-ram", "lots"], "expected MiB"),
        (&["--guest", &file, "--guest-args", "it's"], "single quotes"),
        (
            &["--single", "--guest", &file, "--append", "guest=module"],
            "sets guest=module",
        ),
        (
            &[
                "--single",
                "--guest",
                &file,
                "--guest-ram=8",
                "--append",
                "guest_ram=9",
            ],
            "either --guest-ram or guest_ram=",
        ),
    ];
    for (bad, why) in cases {
        let err = run(bad).expect_err(&format!("{bad:?} accepted"));
        assert!(err.to_string().contains(why), "{bad:?}: {err}");
        if !bad.contains(&"--single") {
            let mut single = vec!["--single"];
            single.extend(bad);
            let err = run(&single).expect_err(&format!("{single:?} accepted"));
            assert!(err.to_string().contains(why), "{single:?}: {err}");
        }
    }
    assert!(run(&["--guest"]).is_err(), "--guest needs a value");
}

#[test]
fn initrd_and_guest_modules_follow_the_guest_in_order() {
    let file = some_file();
    let lib = concat!(env!("CARGO_MANIFEST_DIR"), "/src/lib.rs");
    let a = args(&[
        "--single",
        "--guest-module",
        &format!("{lib}:a=1 b:c"),
        "--guest",
        &file,
        "--initrd",
        &file,
        "--guest-module",
        lib,
    ]);
    let module = |file: &str, args: &str| ModuleArgs {
        file: PathBuf::from(file),
        args: args.into(),
    };
    assert_eq!(
        a.guest.unwrap().modules,
        [module(lib, "a=1 b:c"), module(&file, ""), module(lib, "")]
    );
    assert_eq!(
        (module_name(0), module_name(2)),
        ("module1".into(), "module3".into())
    );
    assert!(args(&["--guest", &file]).guest.unwrap().modules.is_empty());
}

#[test]
fn module_options_are_checked() {
    let file = some_file();
    let longest = "x".repeat(MODULE_STRING_MAX - "guest ".len());
    let a = args(&["--guest", &file, "--guest-args", &longest]);
    assert_eq!(a.guest.unwrap().args, longest);
    let room = MODULE_STRING_MAX - "module1 ".len();
    let fits = format!("{file}:{}", "y".repeat(room));
    assert_eq!(
        args(&["--guest", &file, "--guest-module", &fits])
            .guest
            .unwrap()
            .modules
            .len(),
        1
    );
    let too_long_guest = format!("{longest}x");
    let too_long = format!("{fits}y");
    for (given, expected) in [
        (&["--initrd", &file][..], "--initrd needs --guest FILE"),
        (
            &["--guest-module", &file],
            "--guest-module needs --guest FILE",
        ),
        (
            &["--guest", &file, "--initrd", "/nonexistent"],
            "--initrd /nonexistent: no such file",
        ),
        (
            &["--guest", &file, "--guest-module", "/nonexistent:x"],
            "no such file",
        ),
        (
            &["--guest", &file, "--guest-module", &format!("{file}:it's")],
            "single quotes",
        ),
        (
            &["--guest", &file, "--guest-args", &too_long_guest],
            "at most 506",
        ),
        (
            &["--guest", &file, "--guest-module", &too_long],
            "at most 504",
        ),
    ] {
        let err = run(given).unwrap_err().to_string();
        assert!(err.contains(expected), "{given:?}: {err}");
    }
}

#[test]
fn a_linux_guest_gets_enough_ram_unless_told() {
    let dir = std::env::temp_dir().join(format!("castor-run-args-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kernel = dir.join("bzImage");
    let mut image = vec![0u8; 0x400];
    image[0x202..0x206].copy_from_slice(b"HdrS");
    std::fs::write(&kernel, &image).unwrap();
    let kernel = kernel.to_str().unwrap();
    let a = args(&["--guest", kernel]);
    assert_eq!(a.guest.as_ref().unwrap().ram_mib, Some(LINUX_GUEST_RAM_MIB));
    assert_eq!(a.memory_mib(), LINUX_GUEST_RAM_MIB + HOST_RESERVE_MIB);
    let a = args(&["--single", "--guest", kernel]);
    assert_eq!(
        a.cmdline(),
        format!("guest=module guest_ram={LINUX_GUEST_RAM_MIB}")
    );
    // What the user says wins.
    let a = args(&["--guest", kernel, "--guest-ram", "96"]);
    assert_eq!(a.guest.unwrap().ram_mib, Some(96));
    let a = args(&["--single", "--guest", kernel, "--append", "guest_ram=200"]);
    assert_eq!(a.cmdline(), "guest=module guest_ram=200");
    // Not a bzImage (a Multiboot kernel, or too short to tell): Castor's default.
    let a = args(&["--guest", &some_file()]);
    assert_eq!(a.guest.unwrap().ram_mib, None);
    std::fs::write(dir.join("short"), b"HdrS").unwrap();
    let a = args(&["--guest", dir.join("short").to_str().unwrap()]);
    assert_eq!(a.guest.unwrap().ram_mib, None);
    std::fs::remove_dir_all(&dir).unwrap();
}
