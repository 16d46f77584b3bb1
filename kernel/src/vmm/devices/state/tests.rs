// SPDX-License-Identifier: MIT OR Apache-2.0
//! Host unit tests of the device-state codec.

use super::*;
use alloc::string::ToString;

#[test]
fn fields_round_trip_little_endian() {
    let mut w = StateWriter::new();
    w.u8(0xAB);
    w.u16(0x1234);
    w.u32(0xDEAD_BEEF);
    w.u64(u64::MAX - 1);
    w.i64(-5);
    w.flag(true);
    w.option(Some(7_u16), |w, v| w.u16(v));
    w.option(None::<u16>, |w, v| w.u16(v));
    w.section(|w| w.u8(9));
    let bytes = w.into_bytes();
    assert_eq!(&bytes[..3], [0xAB, 0x34, 0x12]);
    let mut r = StateReader::new(&bytes);
    assert_eq!(r.u8(), Ok(0xAB));
    assert_eq!(r.u16(), Ok(0x1234));
    assert_eq!(r.u32(), Ok(0xDEAD_BEEF));
    assert_eq!(r.u64(), Ok(u64::MAX - 1));
    assert_eq!(r.i64(), Ok(-5));
    assert_eq!(r.flag("f"), Ok(true));
    assert_eq!(r.option("o", |r| r.u16()), Ok(Some(7)));
    assert_eq!(r.option("o", |r| r.u16()), Ok(None));
    let mut s = r.section().unwrap();
    assert_eq!(s.u8(), Ok(9));
    assert_eq!(s.finish(), Ok(()));
    assert_eq!(r.finish(), Ok(()));
}

#[test]
fn malformed_fields_are_refused_with_their_place() {
    let mut r = StateReader::new(&[1, 2, 3]);
    assert_eq!(r.u8(), Ok(1));
    assert_eq!(
        r.u32(),
        Err(StateError::Truncated {
            offset: 1,
            needed: 2
        })
    );
    assert_eq!(
        r.finish(),
        Err(StateError::Trailing {
            offset: 1,
            extra: 2
        })
    );
    assert_eq!(
        StateReader::new(&[2]).flag("PIT armed"),
        Err(StateError::Invalid {
            field: "PIT armed",
            value: 2
        })
    );
    assert_eq!(
        StateReader::new(&[2]).option("latch", |r| r.u8()),
        Err(StateError::Invalid {
            field: "latch",
            value: 2
        })
    );
    assert_eq!(
        StateReader::new(&[0x30]).bits(0x0F, "IER"),
        Err(StateError::Invalid {
            field: "IER",
            value: 0x30
        })
    );
    // A section claiming more than is there, offsets counted from the start of the state.
    let mut r = StateReader::new(&[0, 4, 0, 0, 0, 1]);
    r.u8().unwrap();
    assert_eq!(
        r.section().unwrap_err(),
        StateError::Truncated {
            offset: 5,
            needed: 3
        }
    );
    let mut r = StateReader::new(&[0, 2, 0, 0, 0, 1, 2]);
    r.u8().unwrap();
    let mut s = r.section().unwrap();
    s.u8().unwrap();
    assert_eq!(
        s.finish(),
        Err(StateError::Trailing {
            offset: 6,
            extra: 1
        })
    );
    let huge = [0xFF; 4];
    assert!(matches!(
        StateReader::new(&huge).section(),
        Err(StateError::Truncated { .. })
    ));
}

#[test]
fn errors_name_what_is_wrong() {
    let e = StateError::UnknownDevice(DeviceId::uart16550(0x2F8));
    assert_eq!(
        e.to_string(),
        "device state for 16550 UART at port 0x2f8, which this guest does not have"
    );
    assert_eq!(
        StateError::UnknownDevice(DeviceId::from_raw(0x0009_0001)).to_string(),
        "device state for device 0x00090001, which this guest does not have"
    );
    assert_eq!(
        StateError::Version {
            found: 7,
            supported: 1
        }
        .to_string(),
        "device state version 7 is not supported (this build reads 1)"
    );
    assert_eq!(
        StateError::Invalid {
            field: "PIT access",
            value: 0
        }
        .to_string(),
        "invalid device state: PIT access = 0x0"
    );
}
