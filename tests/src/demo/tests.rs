//! Unit tests of the demo guest's host-side model and checker.

use super::*;

const PARAMS: DemoParams = DemoParams {
    pages: 3,
    span: 10,
    hz: 20,
};

/// The step lines a correct guest prints for `steps`, as Castor forwards them.
fn released(params: &DemoParams, steps: std::ops::Range<u64>) -> Vec<String> {
    steps
        .map(|k| {
            let chain = expected_chain(params, k);
            format!("[guest] demo: step={k} chain={chain:016x}")
        })
        .collect()
}

fn check(lines: &[String]) -> Result<DemoSummary, DemoViolation> {
    check_released(&PARAMS, lines.iter().map(String::as_str))
}

#[test]
fn matches_the_real_guest() {
    // Printed by castor-demo under `qemu-system-x86_64 -kernel` with
    // `steps=40 hz=50 pages=16 span=256`: the first step, the first that reads pages
    // written before (16 = 256 / 16), and the last.
    let params = DemoParams {
        pages: 16,
        span: 256,
        hz: 50,
    };
    let printed = [
        (0, 0x239b_7fbe_5543_b59f),
        (1, 0xdb07_6f48_7b24_593c),
        (16, 0xa527_47be_3703_fcb8),
        (39, 0xa1ea_29ae_45b3_bc7a),
    ];
    for (step, chain) in printed {
        assert_eq!(expected_chain(&params, step), chain, "step {step}");
    }
}

#[test]
fn a_correct_run_passes_among_other_output() {
    let mut lines = vec![
        "Castor v0.1.0 booting".to_string(),
        "[cpu0 INFO ] guest: starting 'pages=3 span=10 hz=20 steps=0' (1 bytes)".to_string(),
        "[cpu0 INFO ] [guest] demo: pages=3 span=10 hz=20".to_string(),
    ];
    let steps = released(&PARAMS, 0..50);
    lines.extend_from_slice(&steps[..20]);
    lines.push("[cpu0 INFO ] link: peer lost after 3000 ms of silence".into());
    lines.push("backup: taking over at epoch 7\r".into());
    lines.extend_from_slice(&steps[20..]);
    let summary = check(&lines).unwrap();
    assert_eq!(
        summary,
        DemoSummary {
            first: 0,
            last: 49,
            count: 50
        }
    );
    // A window that starts later is fine too; its chains are still checked.
    let window = check(&steps[7..30]).unwrap();
    assert_eq!((window.first, window.last, window.count), (7, 29, 23));
}

#[test]
fn gaps_repeats_and_rewinds_are_reported_where_they_happen() {
    let steps = released(&PARAMS, 0..10);
    let mut gap = steps.clone();
    gap.remove(5);
    assert_eq!(
        check(&gap),
        Err(DemoViolation::Gap {
            after: 4,
            got: 6,
            line: 6
        })
    );
    let mut repeat = steps.clone();
    repeat.insert(4, steps[3].clone());
    assert_eq!(
        check(&repeat),
        Err(DemoViolation::Repeat { step: 3, line: 5 })
    );
    let mut rewind = steps.clone();
    rewind.insert(6, steps[4].clone());
    assert_eq!(
        check(&rewind),
        Err(DemoViolation::Rewind {
            after: 5,
            got: 4,
            line: 7
        })
    );
    // A backup that resumed one step behind: k, k-1, k.
    let mut behind = steps[..6].to_vec();
    behind.extend_from_slice(&steps[4..]);
    assert!(matches!(
        check(&behind),
        Err(DemoViolation::Rewind {
            after: 5,
            got: 4,
            ..
        })
    ));
}

#[test]
fn a_wrong_chain_is_reported() {
    let mut lines = released(&PARAMS, 0..10);
    let chain = expected_chain(&PARAMS, 6) ^ 1;
    lines[6] = format!("demo: step=6 chain={chain:016x}");
    assert_eq!(
        check(&lines),
        Err(DemoViolation::WrongChain {
            step: 6,
            expected: chain ^ 1,
            got: chain,
            line: 7
        })
    );
    // A right chain at the wrong step.
    let mut swapped = released(&PARAMS, 0..10);
    let chain4 = expected_chain(&PARAMS, 4);
    swapped[3] = format!("demo: step=3 chain={chain4:016x}");
    assert!(matches!(
        check(&swapped),
        Err(DemoViolation::WrongChain {
            step: 3,
            line: 4,
            ..
        })
    ));
}

#[test]
fn no_lines_is_a_violation() {
    assert_eq!(check(&[]), Err(DemoViolation::NoLines));
    let noise = ["Castor ready".to_string(), PARAMS.header()];
    assert_eq!(check(&noise), Err(DemoViolation::NoLines));
}

#[test]
fn headers_errors_and_garbage_are_judged() {
    let steps = released(&PARAMS, 0..5);
    let other = DemoParams { span: 11, ..PARAMS };
    let wrong = [other.header(), steps[0].clone()];
    assert!(matches!(
        check(&wrong),
        Err(DemoViolation::WrongParams { line: 1, .. })
    ));
    let mut restart = vec![PARAMS.header()];
    restart.extend_from_slice(&steps[..3]);
    restart.push(format!("[guest] {}", PARAMS.header()));
    assert_eq!(check(&restart), Err(DemoViolation::Restarted { line: 5 }));
    let error = ["[guest] demo: error: exception 14 (error code 0x2) at rip=0x1".to_string()];
    assert!(matches!(
        check(&error),
        Err(DemoViolation::GuestError { line: 1, .. })
    ));
    let mut garbled = steps.clone();
    garbled[2] = garbled[2].replace("chain=", "chian=");
    assert!(matches!(
        check(&garbled),
        Err(DemoViolation::Malformed { line: 3, .. })
    ));
}

#[test]
fn headers_name_the_parameters() {
    let header = format!("[cpu0 INFO ] [guest] {}", PARAMS.header());
    assert_eq!(DemoParams::from_header(&header), Some(PARAMS));
    let defaults = DemoParams::from_header("demo: pages=64 span=1024 hz=20");
    assert_eq!(defaults, Some(DemoParams::default()));
    for bad in [
        "demo: pages=3 span=10",
        "demo: pages=03 span=10 hz=20",
        "demo: pages=3 span=10 hz=20 x",
        "demo: step=1 chain=00000000000000ff",
    ] {
        assert_eq!(DemoParams::from_header(bad), None, "{bad:?}");
    }
}

#[test]
fn step_lines_parse_strictly() {
    assert_eq!(
        parse_line("demo: step=12 chain=00000000000000ff"),
        Some((12, 0xff))
    );
    assert_eq!(
        parse_line("[cpu1 INFO ] [guest] demo: step=0 chain=0123456789abcdef\r"),
        Some((0, 0x0123_4567_89ab_cdef))
    );
    for bad in [
        "demo: step=12 chain=ff",
        "demo: step=12 chain=00000000000000FF",
        "demo: step=12 chain=000000000000000ff",
        "demo: step=012 chain=00000000000000ff",
        "demo: step=+1 chain=00000000000000ff",
        "demo: step= chain=00000000000000ff",
        "demo: step=1 chain=00000000000000ff x",
        "xdemo: step=1 chain=00000000000000ff",
        "castor-demo: step=1 chain=00000000000000ff",
        "demo: pages=3 span=10 hz=20",
    ] {
        assert_eq!(parse_line(bad), None, "{bad:?}");
    }
}

#[test]
fn a_corrupted_page_changes_the_chain_within_the_revisit_interval() {
    let within = PARAMS.revisit_steps();
    assert_eq!(within, 4);
    for start in [0, 5, 13] {
        let mut pristine = DemoModel::new(PARAMS);
        for _ in 0..start {
            pristine.advance();
        }
        for page in 0..PARAMS.span {
            for (word, bit) in [(0, 0), (511, 63), (200, 17)] {
                let mut reference = pristine.clone();
                let mut corrupted = pristine.clone();
                corrupted.page_mut(page)[word] ^= 1 << bit;
                let differs = (0..within).any(|_| reference.advance() != corrupted.advance());
                assert!(
                    differs,
                    "page {page} word {word} bit {bit} at step {start} went unnoticed"
                );
            }
        }
    }
}

#[test]
fn the_checker_catches_a_corrupted_guest() {
    // A guest whose page 7 is clobbered after step 20 prints what the corrupted model does.
    let mut model = DemoModel::new(PARAMS);
    let mut lines: Vec<String> = Vec::new();
    let mut emit = |model: &mut DemoModel| {
        let k = model.next_step();
        let chain = model.advance();
        lines.push(format!("demo: step={k} chain={chain:016x}"));
    };
    (0..21).for_each(|_| emit(&mut model));
    model.page_mut(7).fill(0);
    (0..PARAMS.revisit_steps()).for_each(|_| emit(&mut model));
    let Err(DemoViolation::WrongChain { step, .. }) = check(&lines) else {
        panic!("corruption not caught: {:?}", check(&lines));
    };
    assert!((21..21 + PARAMS.revisit_steps()).contains(&step), "{step}");
}

#[test]
fn the_reference_is_cached_and_order_independent() {
    let params = DemoParams {
        pages: 2,
        span: 5,
        hz: 1,
    };
    let late = expected_chain(&params, 30);
    let mut model = DemoModel::new(params);
    let chains: Vec<u64> = (0..=30).map(|_| model.advance()).collect();
    assert_eq!(late, chains[30]);
    assert_eq!(expected_chain(&params, 4), chains[4]);
    assert_eq!(
        params.args(9),
        "pages=2 span=5 hz=1 steps=9",
        "the guest's command line"
    );
}
