// SPDX-License-Identifier: MIT OR Apache-2.0
//! Links the guest with its own linker script (at 1 MiB, flat file layout for the Multiboot
//! a.out kludge) when building for bare metal.

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = std::path::Path::new(&dir);
    for f in ["linker.ld", "src/boot.S"] {
        println!("cargo:rerun-if-changed={}", dir.join(f).display());
    }
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!(
            "cargo:rustc-link-arg-bins=-T{}",
            dir.join("linker.ld").display()
        );
        println!("cargo:rustc-link-arg-bins=-zmax-page-size=4096");
        println!("cargo:rustc-link-arg-bins=--no-pie");
    }
}
