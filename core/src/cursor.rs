//! Positions in the global log.

use crate::Error;
use std::fmt;

/// An opaque, totally ordered position in a store's global log.
///
/// Each store decides what it holds: SQLite and the in-memory store use the row position,
/// PostgreSQL the pair `(transaction id, global position)`. [`Cursor::START`] comes before
/// every event. A cursor prints as text and parses back, for checkpoints and query strings.
///
/// ```
/// use recount::Cursor;
/// let c = Cursor::from_parts(7, 42);
/// assert_eq!(c.to_string().parse::<Cursor>().unwrap(), c);
/// assert!(Cursor::START < c);
/// assert_eq!("15".parse::<Cursor>().unwrap(), Cursor::from_position(15));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Cursor {
    major: u64,
    minor: u64,
}

impl Cursor {
    /// Before the first event of the log.
    pub const START: Cursor = Cursor { major: 0, minor: 0 };

    /// A cursor for stores with a single position (SQLite, in-memory).
    pub const fn from_position(position: u64) -> Self {
        Cursor {
            major: 0,
            minor: position,
        }
    }

    /// A cursor from two parts, ordered by `major` then `minor` (PostgreSQL: transaction id,
    /// global position).
    pub const fn from_parts(major: u64, minor: u64) -> Self {
        Cursor { major, minor }
    }

    /// The two parts, `(major, minor)`.
    pub const fn parts(self) -> (u64, u64) {
        (self.major, self.minor)
    }

    /// The position of a single-position cursor (the minor part).
    pub const fn position(self) -> u64 {
        self.minor
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.major == 0 {
            write!(f, "{}", self.minor)
        } else {
            write!(f, "{}.{}", self.major, self.minor)
        }
    }
}

impl fmt::Debug for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cursor({self})")
    }
}

impl std::str::FromStr for Cursor {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || Error::invalid("cursor", format!("`{s}` is not a cursor"));
        let num = |p: &str| {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            p.parse::<u64>().map_err(|_| bad())
        };
        match s.split_once('.') {
            Some((a, b)) => Ok(Cursor::from_parts(num(a)?, num(b)?)),
            None => Ok(Cursor::from_position(num(s)?)),
        }
    }
}

impl serde::Serialize for Cursor {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Cursor {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::Cursor;

    #[test]
    fn parts_and_position_are_what_the_cursor_was_built_from() {
        let c = Cursor::from_parts(3, 7);
        assert_eq!(c.parts(), (3, 7));
        assert_eq!(c.position(), 7);
        assert_eq!(Cursor::from_position(9).parts(), (0, 9));
        assert_eq!(Cursor::START.parts(), (0, 0));
    }

    #[test]
    fn a_single_position_prints_alone_and_two_parts_print_with_a_dot() {
        assert_eq!(Cursor::from_position(15).to_string(), "15");
        assert_eq!(Cursor::from_parts(3, 7).to_string(), "3.7");
        assert_eq!(Cursor::from_parts(3, 0).to_string(), "3.0");
        assert_eq!(Cursor::START.to_string(), "0");
    }

    #[test]
    fn cursors_parse_from_digits_with_at_most_one_dot() {
        assert_eq!("15".parse::<Cursor>().unwrap(), Cursor::from_position(15));
        assert_eq!("3.7".parse::<Cursor>().unwrap(), Cursor::from_parts(3, 7));
        assert_eq!("0.7".parse::<Cursor>().unwrap(), Cursor::from_position(7));
        let max = u64::MAX.to_string();
        assert_eq!(
            max.parse::<Cursor>().unwrap(),
            Cursor::from_position(u64::MAX)
        );
    }

    #[test]
    fn anything_but_digits_and_one_dot_is_not_a_cursor() {
        for bad in [
            "",
            ".",
            "1.",
            ".1",
            "a",
            "1.2.3",
            "+1",
            "-1",
            " 1",
            "1 ",
            "1.+2",
            "١",
            "18446744073709551616",
        ] {
            let err = bad.parse::<Cursor>().expect_err(bad);
            assert!(
                matches!(err, crate::Error::InvalidInput { .. }),
                "`{bad}`: {err:?}"
            );
        }
    }

    #[test]
    fn cursors_serialize_as_their_text() {
        let c = Cursor::from_parts(3, 7);
        assert_eq!(serde_json::to_string(&c).unwrap(), r#""3.7""#);
        assert_eq!(serde_json::from_str::<Cursor>(r#""3.7""#).unwrap(), c);
        assert!(serde_json::from_str::<Cursor>(r#""3.x""#).is_err());
        assert!(serde_json::from_str::<Cursor>("37").is_err());
    }
}
