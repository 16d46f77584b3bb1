// SPDX-License-Identifier: MIT OR Apache-2.0
//! Links the kernel binary with boot/linker.ld when building for bare metal.

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let boot = std::path::Path::new(&dir).join("../boot");
    for f in [
        "linker.ld",
        "multiboot_header.S",
        "entry.S",
        "ap_trampoline.S",
    ] {
        println!("cargo:rerun-if-changed={}", boot.join(f).display());
    }
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!(
            "cargo:rustc-link-arg-bins=-T{}",
            boot.join("linker.ld").display()
        );
        println!("cargo:rustc-link-arg-bins=-zmax-page-size=4096");
        println!("cargo:rustc-link-arg-bins=--no-pie");
    }
}
