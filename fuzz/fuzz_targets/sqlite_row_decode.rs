//! SQLite event rows, whatever the file holds (SQLite is dynamically typed: any column may hold
//! any type): decoding is an event that satisfies what an append accepts, or `Corrupt`, never
//! a panic.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use recount::{Error, StreamId};
use recount_sqlite::fuzzing::{decode_event_row, ValueRef, EVENT_COLUMNS};

/// Any SQLite value.
#[derive(Debug, Arbitrary)]
enum Value<'a> {
    Null,
    Integer(i64),
    Real(f64),
    Text(&'a [u8]),
    Blob(&'a [u8]),
}

/// A column: mostly of the type the store writes there (so the fuzzer gets past the first
/// checks to the later ones), sometimes anything.
#[derive(Debug, Arbitrary)]
enum Column<'a, T> {
    Typed(T),
    Any(Value<'a>),
}

#[derive(Debug, Arbitrary)]
struct Row<'a> {
    position: Column<'a, i64>,
    stream_id: Column<'a, &'a str>,
    stream_version: Column<'a, i64>,
    event_id: Column<'a, [u8; 16]>,
    event_type: Column<'a, &'a str>,
    schema_version: Column<'a, i64>,
    /// A JSON object's inside, wrapped in braces.
    payload: Column<'a, &'a str>,
    metadata: Column<'a, &'a str>,
    recorded_at: Column<'a, i64>,
}

fn any<'a>(v: &Value<'a>) -> ValueRef<'a> {
    match *v {
        Value::Null => ValueRef::Null,
        Value::Integer(i) => ValueRef::Integer(i),
        Value::Real(r) => ValueRef::Real(r),
        Value::Text(t) => ValueRef::Text(t),
        Value::Blob(b) => ValueRef::Blob(b),
    }
}

fn int<'a>(c: &Column<'a, i64>) -> ValueRef<'a> {
    match c {
        Column::Typed(i) => ValueRef::Integer(*i),
        Column::Any(v) => any(v),
    }
}

fn text<'a>(c: &Column<'a, &'a str>) -> ValueRef<'a> {
    match c {
        Column::Typed(t) => ValueRef::Text(t.as_bytes()),
        Column::Any(v) => any(v),
    }
}

fn object<'r>(c: &Column<'r, &'r str>, wrapped: &'r Option<String>) -> ValueRef<'r> {
    match (c, wrapped) {
        (Column::Typed(_), Some(w)) => ValueRef::Text(w.as_bytes()),
        (c, _) => text(c),
    }
}

fn wrap(c: &Column<'_, &str>) -> Option<String> {
    match c {
        Column::Typed(inner) => Some(format!("{{{inner}}}")),
        Column::Any(_) => None,
    }
}

fuzz_target!(|row: Row<'_>| {
    let (payload, metadata) = (wrap(&row.payload), wrap(&row.metadata));
    let cols: [ValueRef<'_>; EVENT_COLUMNS] = [
        int(&row.position),
        text(&row.stream_id),
        int(&row.stream_version),
        match &row.event_id {
            Column::Typed(b) => ValueRef::Blob(b),
            Column::Any(v) => any(v),
        },
        text(&row.event_type),
        int(&row.schema_version),
        object(&row.payload, &payload),
        object(&row.metadata, &metadata),
        int(&row.recorded_at),
    ];
    match decode_event_row(&cols) {
        Ok(e) => {
            assert!(e.version > 0 && e.cursor.position() > 0);
            assert_eq!(e.cursor.parts().0, 0);
            recount::check_schema_version(e.schema_version)
                .expect("a decoded schema version is one an append accepts");
            assert_eq!(
                StreamId::parse(e.stream.as_str()).ok(),
                Some(e.stream.clone())
            );
            assert!(e.payload.trim_ascii().starts_with('{'));
            assert!(e.metadata.trim_ascii().starts_with('{'));
        }
        Err(Error::Corrupt { .. }) => {}
        Err(other) => panic!("a bad row is Corrupt, not {other:?}"),
    }
});
