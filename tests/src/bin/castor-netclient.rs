//! `castor-netclient`: the record client a network guest's tests run inside their network
//! namespace (`nsenter`, [`castor_tests::guestnet::GuestNet::command`]). It stores records in
//! the guest's record service over one TCP connection, spot-checks them, reads them all back
//! and reports; see [`castor_tests::netclient`] for its options, lines and exit status.

use castor_tests::netclient::{self, ClientConfig};
use std::io::BufRead;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{}", netclient::USAGE);
        return ExitCode::SUCCESS;
    }
    let config = match ClientConfig::from_args(&args) {
        Ok(config) => config,
        Err(why) => {
            eprintln!("castor-netclient: {why}\n\n{}", netclient::USAGE);
            return ExitCode::from(2);
        }
    };
    // `stop` on stdin ends the loop; so does stdin's end when no --duration bounds it.
    let stop = Arc::new(AtomicBool::new(false));
    let stopper = Arc::clone(&stop);
    let until_stop = config.duration.is_none();
    std::thread::spawn(move || {
        let mut lines = std::io::stdin().lock().lines();
        let stopped = loop {
            match lines.next() {
                Some(Ok(line)) if line.trim() == "stop" => break true,
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break until_stop,
            }
        };
        if stopped {
            stopper.store(true, Ordering::Relaxed);
        }
    });
    let ok = netclient::run(&config, &stop, &mut std::io::stdout().lock());
    match ok {
        true => ExitCode::SUCCESS,
        false => ExitCode::FAILURE,
    }
}
