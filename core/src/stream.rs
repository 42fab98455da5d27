//! Stream ids and categories.

use crate::Error;
use std::fmt;

/// Longest stream id accepted, in bytes.
pub const MAX_STREAM_ID_LEN: usize = 200;

/// A stream's id: `"<category>-<id>"`.
///
/// The category is the part before the first `-` and contains no `-` itself; the id part may.
/// A stream id is not empty, at most [`MAX_STREAM_ID_LEN`] bytes, and has no control
/// characters.
///
/// ```
/// use recount::StreamId;
/// let s = StreamId::new("story", "42-a").unwrap();
/// assert_eq!(s.as_str(), "story-42-a");
/// assert_eq!(s.category(), "story");
/// assert_eq!(s.id(), "42-a");
/// assert_eq!("story-42-a".parse::<StreamId>().unwrap(), s);
/// assert!(StreamId::new("bad-cat", "1").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StreamId {
    value: String,
    category_len: usize,
}

impl StreamId {
    /// Builds `"<category>-<id>"`, validating both parts.
    pub fn new(category: &str, id: &str) -> Result<Self, Error> {
        validate_category(category)?;
        if id.is_empty() {
            return Err(Error::invalid("stream id", "the id part is empty"));
        }
        Self::checked(format!("{category}-{id}"), category.len())
    }

    /// Parses and validates a full stream id. A stream id without `-` is all category.
    pub fn parse(value: &str) -> Result<Self, Error> {
        let category_len = value.find('-').unwrap_or(value.len());
        validate_category(&value[..category_len])?;
        Self::checked(value.to_owned(), category_len)
    }

    fn checked(value: String, category_len: usize) -> Result<Self, Error> {
        if value.len() > MAX_STREAM_ID_LEN {
            return Err(Error::invalid(
                "stream id",
                format!(
                    "{} bytes, more than the limit of {MAX_STREAM_ID_LEN}",
                    value.len()
                ),
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(Error::invalid("stream id", "contains a control character"));
        }
        Ok(StreamId {
            value,
            category_len,
        })
    }

    /// The whole id, `"<category>-<id>"`.
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// The category: the part before the first `-`.
    pub fn category(&self) -> &str {
        &self.value[..self.category_len]
    }

    /// The part after the first `-` (empty for a stream id that is all category).
    pub fn id(&self) -> &str {
        self.value.get(self.category_len + 1..).unwrap_or("")
    }
}

fn validate_category(category: &str) -> Result<(), Error> {
    if category.is_empty() {
        return Err(Error::invalid("category", "empty"));
    }
    if category.contains('-') {
        return Err(Error::invalid(
            "category",
            format!("`{category}` contains `-`"),
        ));
    }
    if category.chars().any(char::is_control) {
        return Err(Error::invalid("category", "contains a control character"));
    }
    Ok(())
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

impl fmt::Debug for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StreamId({:?})", self.value)
    }
}

impl std::str::FromStr for StreamId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        StreamId::parse(s)
    }
}

impl TryFrom<String> for StreamId {
    type Error = Error;
    fn try_from(value: String) -> Result<Self, Error> {
        StreamId::parse(&value)
    }
}

impl From<StreamId> for String {
    fn from(s: StreamId) -> String {
        s.value
    }
}

impl AsRef<str> for StreamId {
    fn as_ref(&self) -> &str {
        &self.value
    }
}

/// The optimistic-concurrency expectation of an append or a delete (store contract, item 2).
///
/// A violated expectation is [`Error::Conflict`] with the stream's true version, and nothing
/// is written.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use recount::{Error, EventStore, ExpectedVersion, InMemoryStore, NewEvent, StreamId};
/// let store = InMemoryStore::new();
/// let s = StreamId::new("counter", "1").unwrap();
/// let e = || NewEvent::new("counter.added", &serde_json::json!({ "by": 1 })).unwrap();
/// store.append(&s, ExpectedVersion::NoStream, vec![e()]).await.unwrap();
/// store.append(&s, ExpectedVersion::Exact(1), vec![e()]).await.unwrap();
/// store.append(&s, ExpectedVersion::StreamExists, vec![e()]).await.unwrap();
/// let late = store.append(&s, ExpectedVersion::Exact(1), vec![e()]).await;
/// assert!(matches!(late, Err(Error::Conflict { actual: 3, .. })));
/// assert!(ExpectedVersion::Exact(0).matches(0) && ExpectedVersion::Any.matches(7));
/// # });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ExpectedVersion {
    /// No check.
    Any,
    /// The stream has no events.
    NoStream,
    /// The stream has at least one event.
    StreamExists,
    /// The stream's version is exactly this (`Exact(0)` is the same as `NoStream`).
    Exact(u64),
}

impl ExpectedVersion {
    /// Whether a stream at `actual` (0: no events) satisfies this expectation.
    pub fn matches(self, actual: u64) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual == 0,
            ExpectedVersion::StreamExists => actual > 0,
            ExpectedVersion::Exact(v) => actual == v,
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any version"),
            ExpectedVersion::NoStream => f.write_str("no stream"),
            ExpectedVersion::StreamExists => f.write_str("an existing stream"),
            ExpectedVersion::Exact(v) => write!(f, "version {v}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ExpectedVersion, StreamId, MAX_STREAM_ID_LEN};
    use crate::Error;

    fn invalid<T: std::fmt::Debug>(r: Result<T, Error>) -> bool {
        matches!(r, Err(Error::InvalidInput { .. }))
    }

    #[test]
    fn the_category_ends_at_the_first_dash_and_the_id_may_hold_more() {
        let s = StreamId::parse("ab-c-d").unwrap();
        assert_eq!((s.category(), s.id(), s.as_str()), ("ab", "c-d", "ab-c-d"));
        let all_category = StreamId::parse("abc").unwrap();
        assert_eq!((all_category.category(), all_category.id()), ("abc", ""));
        let built = StreamId::new("abc", "x-1").unwrap();
        assert_eq!((built.category(), built.id()), ("abc", "x-1"));
    }

    #[test]
    fn a_stream_id_of_the_limit_is_accepted_and_one_byte_more_is_not() {
        let at_limit = format!("c-{}", "x".repeat(MAX_STREAM_ID_LEN - 2));
        assert_eq!(StreamId::parse(&at_limit).unwrap().as_str(), at_limit);
        let over = format!("{at_limit}x");
        assert!(invalid(StreamId::parse(&over)));
        assert!(invalid(StreamId::new(
            "c",
            &"x".repeat(MAX_STREAM_ID_LEN - 1)
        )));
    }

    #[test]
    fn bad_categories_and_ids_are_refused() {
        assert!(invalid(StreamId::new("bad-cat", "1")));
        assert!(invalid(StreamId::new("", "1")));
        assert!(invalid(StreamId::new("c\u{7}", "1")));
        assert!(invalid(StreamId::new("c", "")));
        assert!(invalid(StreamId::new("c", "1\n")));
        assert!(invalid(StreamId::parse("")));
        assert!(invalid(StreamId::parse("-1")));
        assert!(invalid(StreamId::parse("c-1\0")));
    }

    #[test]
    fn a_stream_id_converts_to_and_from_its_text() {
        let s = StreamId::new("story", "7").unwrap();
        assert_eq!(s.to_string(), "story-7");
        assert_eq!(AsRef::<str>::as_ref(&s), "story-7");
        assert_eq!("story-7".parse::<StreamId>().unwrap(), s);
        assert_eq!(StreamId::try_from("story-7".to_owned()).unwrap(), s);
        assert!(invalid(StreamId::try_from("-7".to_owned())));
        assert!(invalid("".parse::<StreamId>()));
        assert_eq!(String::from(s.clone()), "story-7");
        assert_eq!(serde_json::to_string(&s).unwrap(), r#""story-7""#);
        assert_eq!(serde_json::from_str::<StreamId>(r#""story-7""#).unwrap(), s);
        assert!(serde_json::from_str::<StreamId>(r#""-7""#).is_err());
    }

    #[test]
    fn expected_versions_match_exactly_what_they_say() {
        use ExpectedVersion::*;
        let cases = [
            (Any, 0, true),
            (Any, 5, true),
            (NoStream, 0, true),
            (NoStream, 1, false),
            (StreamExists, 0, false),
            (StreamExists, 1, true),
            (StreamExists, 9, true),
            (Exact(0), 0, true),
            (Exact(3), 3, true),
            (Exact(3), 2, false),
            (Exact(3), 4, false),
        ];
        for (expected, actual, matches) in cases {
            assert_eq!(
                expected.matches(actual),
                matches,
                "{expected:?} at {actual}"
            );
        }
    }

    #[test]
    fn expected_versions_read_as_words_in_conflict_messages() {
        assert_eq!(ExpectedVersion::Any.to_string(), "any version");
        assert_eq!(ExpectedVersion::NoStream.to_string(), "no stream");
        assert_eq!(
            ExpectedVersion::StreamExists.to_string(),
            "an existing stream"
        );
        assert_eq!(ExpectedVersion::Exact(4).to_string(), "version 4");
    }
}
