//! Refusing JSON that can be stored but not read back.
//!
//! `RawValue` (what a payload is) checks only JSON's syntax; reading an event back parses it
//! with serde_json, which also refuses nesting past its recursion limit, numbers beyond
//! `f64`, and string escapes that are not Unicode (a lone UTF-16 surrogate such as
//! `"\ud800"`). Stored, such JSON is [`Error::Corrupt`](crate::Error::Corrupt) on every read;
//! so appends check it with the very parser that reads it back.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// How deep arrays and objects may nest: serde_json stops reading at 128 levels.
pub const MAX_JSON_DEPTH: usize = 127;

/// Checks that `json` (valid JSON syntax) reads back; the error is why not, in words.
pub(crate) fn check_readable(json: &str) -> Result<(), String> {
    match serde_json::from_str::<Readable>(json) {
        Ok(Readable) => Ok(()),
        Err(e) => Err(explain(json, &e)),
    }
}

/// Parses every value the way reading does (`deserialize_any`: numbers, string escapes and
/// nesting all checked) and keeps nothing, so the check allocates nothing. (serde's
/// `IgnoredAny` would not do: serde_json skips an ignored value without checking any of it.)
struct Readable;

impl<'de> Deserialize<'de> for Readable {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ReadableVisitor)
    }
}

struct ReadableVisitor;

impl<'de> Visitor<'de> for ReadableVisitor {
    type Value = Readable;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Readable, E> {
        Ok(Readable)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Readable, E> {
        Ok(Readable)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Readable, E> {
        Ok(Readable)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Readable, E> {
        Ok(Readable)
    }
    fn visit_str<E>(self, _: &str) -> Result<Readable, E> {
        Ok(Readable)
    }
    fn visit_unit<E>(self) -> Result<Readable, E> {
        Ok(Readable)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Readable, A::Error> {
        while seq.next_element::<Readable>()?.is_some() {}
        Ok(Readable)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Readable, A::Error> {
        // Keys are strings: read them as values are, so their escapes are checked too.
        while map.next_key::<Readable>()?.is_some() {
            map.next_value::<Readable>()?;
        }
        Ok(Readable)
    }
}

/// Names the reason serde_json refused `json`: the nesting or a lone surrogate when that is
/// it (found by a scan of the text), else serde_json's own message.
fn explain(json: &str, e: &serde_json::Error) -> String {
    let scan = scan(json);
    if scan.depth > MAX_JSON_DEPTH {
        return format!(
            "arrays and objects nest {} levels deep; at most {MAX_JSON_DEPTH} read back \
             (serde_json's recursion limit)",
            scan.depth
        );
    }
    if let Some(escape) = scan.lone_surrogate {
        return format!(
            "a string holds the escape `{escape}`, a lone UTF-16 surrogate, which is not Unicode \
             text and does not read back"
        );
    }
    format!("does not read back as JSON: {e}")
}

#[derive(Debug, Default, PartialEq)]
struct Scan {
    depth: usize,
    lone_surrogate: Option<String>,
}

/// The deepest nesting of `json` and its first lone surrogate escape. Only run on JSON that
/// failed to read, to explain why.
fn scan(json: &str) -> Scan {
    let bytes = json.as_bytes();
    let mut out = Scan::default();
    let (mut depth, mut in_string, mut i) = (0usize, false, 0);
    // The high surrogate escape waiting for its low half, and where it ended.
    let mut pending: Option<(u16, usize)> = None;
    while i < bytes.len() {
        let b = bytes[i];
        if let Some((high, end)) = pending {
            let low = (b == b'\\' && end == i)
                .then(|| hex_escape(bytes, i))
                .flatten();
            if !low.is_some_and(|u| (0xDC00..=0xDFFF).contains(&u)) {
                out.lone_surrogate.get_or_insert(format!("\\u{high:04x}"));
            }
            pending = None;
        }
        match (in_string, b) {
            (_, b'"') => in_string = !in_string,
            (false, b'[' | b'{') => {
                depth += 1;
                out.depth = out.depth.max(depth);
            }
            (false, b']' | b'}') => depth = depth.saturating_sub(1),
            (true, b'\\') => {
                if let Some(u) = hex_escape(bytes, i) {
                    if (0xD800..=0xDBFF).contains(&u) {
                        pending = Some((u, i + 6));
                    } else if (0xDC00..=0xDFFF).contains(&u) {
                        out.lone_surrogate.get_or_insert(format!("\\u{u:04x}"));
                    }
                    i += 6;
                } else {
                    i += 2;
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    if let Some((high, _)) = pending {
        out.lone_surrogate.get_or_insert(format!("\\u{high:04x}"));
    }
    out
}

/// The code unit of a `\uXXXX` escape starting at `at`.
fn hex_escape(bytes: &[u8], at: usize) -> Option<u16> {
    let hex = bytes.get(at..at + 6)?;
    if hex[1] != b'u' {
        return None;
    }
    u16::from_str_radix(std::str::from_utf8(&hex[2..]).ok()?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn nested(depth: usize) -> String {
        format!(
            "{{\"a\":{}1{}}}",
            "[".repeat(depth - 1),
            "]".repeat(depth - 1)
        )
    }

    /// The check must agree with what reading does, at the limit and on each side of it.
    #[test]
    fn the_check_accepts_exactly_what_serde_json_reads_back() {
        let cases = [
            nested(MAX_JSON_DEPTH),
            nested(MAX_JSON_DEPTH + 1),
            nested(500),
            r#"{"a":"\ud800"}"#.into(),
            r#"{"a":"\udc00x"}"#.into(),
            r#"{"a":"\ud800\u0041"}"#.into(),
            r#"{"\ud800":1}"#.into(),
            r#"{"a":"\ud83d\ude00"}"#.into(),
            r#"{"a":"\\ud800"}"#.into(),
            r#"{"a":1e400}"#.into(),
            r#"{"a":-1e400,"b":[1,{"c":"ok"}]}"#.into(),
            r#"{"a":123456789012345678901234567890}"#.into(),
        ];
        for json in &cases {
            let reads = serde_json::from_str::<Value>(json).is_ok();
            assert_eq!(check_readable(json).is_ok(), reads, "{json}");
        }
    }

    #[test]
    fn reasons_name_the_nesting_and_the_lone_surrogate() {
        let deep = check_readable(&nested(200)).unwrap_err();
        assert!(deep.contains("200 levels"), "{deep}");
        let lone = check_readable(r#"{"a":"x\ud800"}"#).unwrap_err();
        assert!(lone.contains(r"\ud800") && lone.contains("lone"), "{lone}");
        let low = check_readable(r#"{"a":"\udc01"}"#).unwrap_err();
        assert!(low.contains(r"\udc01"), "{low}");
        let big = check_readable(r#"{"a":1e400}"#).unwrap_err();
        assert!(big.contains("number out of range"), "{big}");
    }
}
