//! `castor-bench FILE` (behind `scripts/bench` and `scripts/test`): reads the output of the
//! `bench_` tests and prints their figures beside their targets, one row each
//! ([`castor_tests::benchtable`]).

use castor_tests::benchtable;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: castor-bench FILE (the output of the bench_ tests)");
        return ExitCode::from(2);
    };
    let output = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("castor-bench: {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let rows = benchtable::rows(&output);
    if rows.is_empty() {
        eprintln!("castor-bench: {path}: no benchmark figures");
        return ExitCode::FAILURE;
    }
    print!("{}", benchtable::table(&rows));
    ExitCode::SUCCESS
}
