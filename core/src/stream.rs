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
