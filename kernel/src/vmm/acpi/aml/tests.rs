// SPDX-License-Identifier: MIT OR Apache-2.0
//! The AML encoder against the bytes iasl emits for the same ASL (the ASL is quoted above each
//! case; the sequences are those of iasl-compiled tables such as QEMU's DSDT and the rust-vmm
//! `acpi_tables` test vectors).

use alloc::vec;

use super::*;

#[test]
fn package_lengths_use_one_to_four_bytes_and_count_themselves() {
    assert_eq!(pkg_length(0), [1]);
    assert_eq!(pkg_length(62), [63]);
    assert_eq!(pkg_length(63), [0x40 | (65 & 0xF), 65 >> 4]);
    assert_eq!(pkg_length(64), [0x40 | (66 & 0xF), 66 >> 4]);
    assert_eq!(
        pkg_length(4093),
        [0x4F, 0xFF],
        "4095: the most two bytes hold"
    );
    assert_eq!(pkg_length(4094), [0x81, 0, 1]);
    assert_eq!(
        pkg_length(4096),
        [
            0x80 | (4099 & 0xF) as u8,
            (4099 >> 4) as u8,
            (4099 >> 12) as u8
        ]
    );
    assert_eq!(pkg_length((1 << 20) - 4), [0x8F, 0xFF, 0xFF]);
    assert_eq!(pkg_length((1 << 20) - 3), [0xC1, 0, 0, 1]);
    assert_eq!(pkg_length((1 << 28) - 5), [0xCF, 0xFF, 0xFF, 0xFF]);
}

#[test]
#[should_panic(expected = "longer than 2^28")]
fn a_package_beyond_28_bits_is_refused() {
    let _ = pkg_length((1 << 28) - 4);
}

#[test]
fn name_strings() {
    assert_eq!(name_string("_HID"), *b"_HID");
    assert_eq!(name_string("RTC"), *b"RTC_", "short segments are padded");
    assert_eq!(name_string("\\_S5"), *b"\\_S5_");
    assert_eq!(name_string("_SB.COM1"), *b"\x2E_SB_COM1");
    assert_eq!(name_string("\\_SB.PCI0.ISA"), *b"\\\x2F\x03_SB_PCI0ISA_");
    assert_eq!(name_string("^^PCI0"), *b"^^PCI0");
    assert_eq!(name_string("\\"), [b'\\', 0], "the root: NullName");
}

#[test]
#[should_panic(expected = "invalid AML name segment")]
fn a_name_segment_of_five_characters_is_refused() {
    let _ = name_string("_SB.TOOLONG");
}

#[test]
#[should_panic(expected = "invalid AML name segment")]
fn a_name_segment_starting_with_a_digit_is_refused() {
    let _ = name_string("0ABC");
}

#[test]
fn integers_take_the_shortest_form() {
    assert_eq!(integer(0), [0x00]);
    assert_eq!(integer(1), [0x01]);
    assert_eq!(integer(u64::MAX), [0xFF]);
    assert_eq!(integer(5), [0x0A, 0x05]);
    assert_eq!(integer(0xFF), [0x0A, 0xFF]);
    assert_eq!(integer(0x3F8), [0x0B, 0xF8, 0x03]);
    assert_eq!(integer(0xFEC0_0000), [0x0C, 0x00, 0x00, 0xC0, 0xFE]);
    assert_eq!(integer(0x1_0000_0000), [0x0E, 0, 0, 0, 0, 1, 0, 0, 0]);
}

#[test]
fn strings_end_with_a_null() {
    // Name (_STR, "COM1")
    assert_eq!(
        name("_STR", &string("COM1")),
        [
            0x08, b'_', b'S', b'T', b'R', 0x0D, b'C', b'O', b'M', b'1', 0x00
        ]
    );
}

#[test]
fn eisa_ids_are_compressed_dwords() {
    // Name (_HID, EisaId ("PNP0501"))
    assert_eq!(
        name("_HID", &eisa_id("PNP0501")),
        [0x08, 0x5F, 0x48, 0x49, 0x44, 0x0C, 0x41, 0xD0, 0x05, 0x01]
    );
    assert_eq!(eisa_id("PNP0A03"), [0x0C, 0x41, 0xD0, 0x0A, 0x03]);
    assert_eq!(
        eisa_id("PNP0000"),
        [0x0C, 0x41, 0xD0, 0x00, 0x00],
        "never shortened"
    );
    assert_eq!(eisa_id("QEM0001"), [0x0C, 0x44, 0xAD, 0x00, 0x01]);
}

#[test]
#[should_panic(expected = "invalid EISA id")]
fn a_malformed_eisa_id_is_refused() {
    let _ = eisa_id("pnp0501");
}

#[test]
fn the_s5_package() {
    // Name (_S5, Package (0x01) { 0x05 })
    assert_eq!(
        name("_S5", &package(&[integer(5)])),
        [0x08, 0x5F, 0x53, 0x35, 0x5F, 0x12, 0x04, 0x01, 0x0A, 0x05]
    );
    // Name (\_S5, Package (0x04) { 0x05, 0x05, Zero, Zero })
    assert_eq!(
        name(
            "\\_S5",
            &package(&[integer(5), integer(5), integer(0), integer(0)])
        ),
        [
            0x08, 0x5C, 0x5F, 0x53, 0x35, 0x5F, 0x12, 0x08, 0x04, 0x0A, 0x05, 0x0A, 0x05, 0x00,
            0x00
        ]
    );
}

#[test]
fn a_scope_with_a_memory_resource() {
    // Scope (_SB.MBRD) { Name (_CRS, ResourceTemplate () {
    //     Memory32Fixed (ReadWrite, 0xE8000000, 0x10000000) }) }
    let crs = resource_template(&[Resource::Memory32Fixed {
        writable: true,
        base: 0xE800_0000,
        len: 0x1000_0000,
    }]);
    assert_eq!(
        scope("_SB.MBRD", &[name("_CRS", &crs)]),
        [
            0x10, 0x21, 0x2E, 0x5F, 0x53, 0x42, 0x5F, 0x4D, 0x42, 0x52, 0x44, 0x08, 0x5F, 0x43,
            0x52, 0x53, 0x11, 0x11, 0x0A, 0x0E, 0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xE8,
            0x00, 0x00, 0x00, 0x10, 0x79, 0x00,
        ]
    );
}

#[test]
fn the_com1_device() {
    // Device (COM1) {
    //     Name (_HID, EisaId ("PNP0501"))
    //     Name (_UID, One)
    //     Name (_CRS, ResourceTemplate () {
    //         IO (Decode16, 0x03F8, 0x03F8, 0x00, 0x08)
    //         IRQNoFlags () {4} }) }
    let com1 = device(
        "COM1",
        &[
            name("_HID", &eisa_id("PNP0501")),
            name("_UID", &integer(1)),
            name(
                "_CRS",
                &resource_template(&[
                    Resource::Io {
                        min: 0x3F8,
                        max: 0x3F8,
                        align: 0,
                        len: 8,
                    },
                    Resource::IrqNoFlags(4),
                ]),
            ),
        ],
    );
    let expected = [
        0x5B, 0x82, 0x2B, b'C', b'O', b'M', b'1', // Device, PkgLength 43, name
        0x08, b'_', b'H', b'I', b'D', 0x0C, 0x41, 0xD0, 0x05, 0x01, // _HID
        0x08, b'_', b'U', b'I', b'D', 0x01, // _UID
        0x08, b'_', b'C', b'R', b'S', 0x11, 0x10, 0x0A, 0x0D, // _CRS: Buffer (13)
        0x47, 0x01, 0xF8, 0x03, 0xF8, 0x03, 0x00, 0x08, // IO
        0x22, 0x10, 0x00, // IRQNoFlags {4}
        0x79, 0x00, // End Tag
    ];
    assert_eq!(com1, expected);
}

#[test]
fn irq_descriptors_with_flags() {
    let t = |level, active_low, shared| {
        resource_template(&[Resource::Irq {
            irq: 9,
            level,
            active_low,
            shared,
        }])
    };
    // IRQ (Level, ActiveLow, Shared) {9}: the SCI.
    assert_eq!(
        t(true, true, true),
        [0x11, 0x09, 0x0A, 0x06, 0x23, 0x00, 0x02, 0x18, 0x79, 0x00]
    );
    // IRQ (Edge, ActiveHigh, Exclusive) {9}
    assert_eq!(t(false, false, false)[4..8], [0x23, 0x00, 0x02, 0x01]);
    // IRQNoFlags () {0} and {15}
    assert_eq!(
        resource_template(&[Resource::IrqNoFlags(0)])[4..7],
        [0x22, 0x01, 0x00]
    );
    assert_eq!(
        resource_template(&[Resource::IrqNoFlags(15)])[4..7],
        [0x22, 0x00, 0x80]
    );
    // An empty template is the End Tag alone.
    assert_eq!(resource_template(&[]), [0x11, 0x05, 0x0A, 0x02, 0x79, 0x00]);
}

#[test]
fn extended_interrupt_descriptors() {
    let t = |level, active_low, shared| {
        resource_template(&[Resource::Interrupt {
            gsi: 16,
            level,
            active_low,
            shared,
        }])[4..13]
            .to_vec()
    };
    // Interrupt (ResourceConsumer, Level, ActiveHigh, Exclusive) {16}, as iasl emits it.
    assert_eq!(
        t(true, false, false),
        [0x89, 0x06, 0x00, 0x01, 0x01, 0x10, 0x00, 0x00, 0x00]
    );
    // Interrupt (ResourceConsumer, Edge, ActiveLow, Shared) {16}
    assert_eq!(t(false, true, true)[3], 0x0F);
}

#[test]
#[should_panic(expected = "ISA IRQ 16 out of range")]
fn an_irq_above_15_is_refused() {
    let _ = resource_template(&[Resource::IrqNoFlags(16)]);
}

#[test]
fn methods_and_large_buffers() {
    // Method (_STA, 0, NotSerialized) { Return (0x0F) }
    assert_eq!(
        method("_STA", 0, &[return_value(&integer(0x0F))]),
        [0x14, 0x09, b'_', b'S', b'T', b'A', 0x00, 0xA4, 0x0A, 0x0F]
    );
    // Buffer (0x0100) { ... }: a word size and a two-byte PkgLength (PkgLength 2 + 3 + 256 = 261).
    let big = buffer(&[0xAB; 256]);
    assert_eq!(big[..6], [0x11, 0x45, 0x10, 0x0B, 0x00, 0x01]);
    assert_eq!(big.len(), 262);
    // A device whose body needs a three-byte PkgLength.
    let body = vec![buffer(&[0; 5000])];
    let d = device("\\_SB.BIG", &body);
    let content = 10 + body[0].len();
    assert_eq!(d[..2], [0x5B, 0x82]);
    assert_eq!(d[2..5], pkg_length(content)[..]);
    assert_eq!(d.len(), 2 + 3 + content);
}
