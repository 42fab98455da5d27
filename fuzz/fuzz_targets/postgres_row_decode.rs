//! PostgreSQL event rows: the part of decoding that needs no server (checking the columns
//! the driver decoded, and the `xid8` wire formats). Decoding is an event that satisfies
//! what an append accepts, or `Corrupt`, never a panic.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use recount::{Error, StreamId};
use recount_postgres::fuzzing::{
    decode_event_columns, xid8_from_binary, xid8_from_text, EventColumns,
};

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    transaction_id: Result<u64, String>,
    global_position: Result<i64, String>,
    stream_id: Result<&'a str, String>,
    stream_version: Result<i64, String>,
    event_id: Result<[u8; 16], String>,
    event_type: Result<&'a str, String>,
    schema_version: Result<i32, String>,
    payload: Result<String, String>,
    metadata: Result<String, String>,
    recorded_at_micros: Result<i64, String>,
    xid8_bytes: &'a [u8],
    xid8_text: &'a str,
}

fuzz_target!(|input: Input<'_>| {
    let columns = EventColumns {
        transaction_id: input.transaction_id.clone(),
        global_position: input.global_position.clone(),
        stream_id: input.stream_id.clone(),
        stream_version: input.stream_version.clone(),
        event_id: input.event_id.clone().map(uuid::Uuid::from_bytes),
        event_type: input.event_type.clone(),
        schema_version: input.schema_version.clone(),
        payload: input.payload.clone(),
        metadata: input.metadata.clone(),
        recorded_at: input.recorded_at_micros.clone().and_then(|m| {
            chrono::DateTime::from_timestamp_micros(m).ok_or_else(|| "out of range".to_owned())
        }),
    };
    match decode_event_columns(columns) {
        Ok(e) => {
            assert!(e.version > 0 && e.cursor.parts().1 > 0);
            assert_eq!(Ok(e.cursor.parts().0), input.transaction_id);
            recount::check_schema_version(e.schema_version)
                .expect("a decoded schema version is one an append accepts");
            assert_eq!(
                StreamId::parse(e.stream.as_str()).ok(),
                Some(e.stream.clone())
            );
            assert_eq!(Ok(e.payload.as_str()), input.payload.as_deref());
        }
        Err(Error::Corrupt { .. }) => {}
        Err(other) => panic!("a bad row is Corrupt, not {other:?}"),
    }
    match xid8_from_binary(input.xid8_bytes) {
        Ok(x) => assert_eq!(x.to_be_bytes().as_slice(), input.xid8_bytes),
        Err(_) => assert_ne!(input.xid8_bytes.len(), 8),
    }
    if let Ok(x) = xid8_from_text(input.xid8_text) {
        assert_eq!(input.xid8_text.parse::<u64>().ok(), Some(x));
    }
});
