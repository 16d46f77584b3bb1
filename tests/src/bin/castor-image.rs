//! `castor-image` (behind `scripts/build-iso`): builds Castor and a bootable BIOS GRUB ISO.

use castor_tests::cli::{self, ImageArgs, Parsed};
use castor_tests::error::Context;
use castor_tests::image::IsoSpec;
use castor_tests::kernel::{self, BuildOutput};
use castor_tests::{Result, target_dir};
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = match cli::parse_image_args(std::env::args().skip(1)) {
        Ok(Parsed::Args(args)) => args,
        Ok(Parsed::Help) => {
            // Ignore a closed pipe (e.g. `| head`).
            let _ = writeln!(std::io::stdout(), "{}", cli::IMAGE_USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("castor-image: {e}\n\n{}", cli::IMAGE_USAGE);
            return ExitCode::from(2);
        }
    };
    match build(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("castor-image: {e}");
            ExitCode::FAILURE
        }
    }
}

fn build(args: &ImageArgs) -> Result<()> {
    let elf = kernel::prebuilt_or_build(BuildOutput::Inherit)?;
    if let Some(parent) = args.output.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).context(format!("creating {}", parent.display()))?;
    }
    let work = target_dir().join(format!("castor-image-{}", std::process::id()));
    std::fs::create_dir_all(&work).context(format!("creating {}", work.display()))?;
    let result = IsoSpec::new(elf, args.append.clone()).build(&args.output, &work);
    let _ = std::fs::remove_dir_all(&work);
    result?;
    eprintln!(
        "castor-image: wrote {} (kernel command line {:?})",
        args.output.display(),
        args.append
    );
    Ok(())
}
