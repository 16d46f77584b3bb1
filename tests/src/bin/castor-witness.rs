//! `castor-witness`: the witness of Castor pairs, for any Linux machine; see
//! [`castor_tests::witness`] for its options and lines, and `castor_ft::witness` for the
//! protocol and its timing rules. Runs until killed.

use castor_tests::witness::{self, WitnessConfig};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{}", witness::USAGE);
        return ExitCode::SUCCESS;
    }
    let config = match WitnessConfig::from_args(&args) {
        Ok(config) => config,
        Err(why) => {
            eprintln!("castor-witness: {why}\n\n{}", witness::USAGE);
            return ExitCode::from(2);
        }
    };
    let stop = AtomicBool::new(false);
    match witness::run(&config, &stop, &mut std::io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("castor-witness: {e}");
            ExitCode::FAILURE
        }
    }
}
