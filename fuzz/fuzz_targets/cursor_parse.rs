//! `Cursor` from text (checkpoints, `?after=` query strings): parsing never panics, a parsed
//! cursor prints and parses back to itself, and every cursor built from parts does too.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use recount::{Cursor, Error};

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    text: &'a str,
    major: u64,
    minor: u64,
}

fuzz_target!(|input: Input<'_>| {
    match input.text.parse::<Cursor>() {
        Ok(c) => {
            let printed = c.to_string();
            assert_eq!(printed.parse::<Cursor>().ok(), Some(c), "{printed}");
            // Printing is canonical: what was printed prints the same way again.
            assert_eq!(
                printed.parse::<Cursor>().map(|c| c.to_string()).ok(),
                Some(printed.clone())
            );
            let json = serde_json::to_string(&c).expect("a cursor serializes");
            assert_eq!(serde_json::from_str::<Cursor>(&json).ok(), Some(c));
            // Only digits and at most one dot make a cursor.
            assert!(input.text.bytes().all(|b| b.is_ascii_digit() || b == b'.'));
        }
        Err(Error::InvalidInput { .. }) => {}
        Err(other) => panic!("a bad cursor is InvalidInput, not {other:?}"),
    }
    let built = Cursor::from_parts(input.major, input.minor);
    assert_eq!(built.to_string().parse::<Cursor>().ok(), Some(built));
    assert_eq!(built.parts(), (input.major, input.minor));
    let single = Cursor::from_position(input.minor);
    assert_eq!(single.to_string().parse::<Cursor>().ok(), Some(single));
    // Order is by major, then minor.
    assert_eq!(
        built.cmp(&single),
        (input.major, input.minor).cmp(&(0, input.minor))
    );
});
