//! `StreamId` from text (stored rows, HTTP paths): parsing never panics, a parsed id keeps its
//! text and splits at the first `-`, and `new(category, id)` agrees with `parse`.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use recount::{Error, StreamId, MAX_STREAM_ID_LEN};

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    text: &'a str,
    category: &'a str,
    id: &'a str,
}

fn check_valid(s: &StreamId) {
    let text = s.as_str();
    assert!(!text.is_empty() && text.len() <= MAX_STREAM_ID_LEN);
    assert!(!text.chars().any(char::is_control));
    assert!(!s.category().is_empty() && !s.category().contains('-'));
    let rebuilt = if text.len() > s.category().len() {
        format!("{}-{}", s.category(), s.id())
    } else {
        s.category().to_owned()
    };
    assert_eq!(rebuilt, text);
    assert_eq!(StreamId::parse(&s.to_string()).ok().as_ref(), Some(s));
    let json = serde_json::to_string(s).expect("a stream id serializes");
    assert_eq!(
        serde_json::from_str::<StreamId>(&json).ok().as_ref(),
        Some(s)
    );
}

fuzz_target!(|input: Input<'_>| {
    match StreamId::parse(input.text) {
        Ok(s) => {
            assert_eq!(s.as_str(), input.text);
            check_valid(&s);
            if !s.id().is_empty() {
                assert_eq!(StreamId::new(s.category(), s.id()).ok().as_ref(), Some(&s));
            }
        }
        Err(Error::InvalidInput { .. }) => {}
        Err(other) => panic!("a bad stream id is InvalidInput, not {other:?}"),
    }
    match StreamId::new(input.category, input.id) {
        Ok(s) => {
            check_valid(&s);
            assert_eq!((s.category(), s.id()), (input.category, input.id));
        }
        Err(Error::InvalidInput { .. }) => {}
        Err(other) => panic!("a bad stream id is InvalidInput, not {other:?}"),
    }
});
