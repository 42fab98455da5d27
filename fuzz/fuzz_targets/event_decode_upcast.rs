//! Stored events decoded into an `#[aggregate]`'s event enum, through its upcaster chain:
//! whatever the stored type, schema version and payload, decoding is an event,
//! `UnknownEventType` or `Corrupt`, never a panic; a decoded event encodes and decodes back to
//! itself at the current version.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use recount::{aggregate, Aggregate, Cursor, Error, Event, RecordedEvent, StreamId};
use serde_json::{json, Value};

#[derive(Debug, Default)]
struct Account {
    balance: i64,
}

/// v1 had no currency; written the way the docs write upcasters, indexing into the payload.
fn opened_v1(mut v: Value) -> Value {
    v["currency"] = json!("EUR");
    v
}

/// v2 kept the amount in whole units; v3 in cents.
fn opened_v2(mut v: Value) -> Result<Value, String> {
    let units = v["initial"].as_i64().ok_or("`initial` is not an integer")?;
    v["initial"] = json!(units.checked_mul(100).ok_or("`initial` overflows")?);
    Ok(v)
}

#[aggregate(category = "account", error = std::convert::Infallible)]
impl Account {
    /// The account was opened.
    #[event(
        name = "account.opened",
        version = 3,
        upcast(from = 1, with = opened_v1),
        upcast(from = 2, with = opened_v2)
    )]
    fn opened(&mut self, initial: i64, currency: String) {
        let _ = currency;
        self.balance = initial;
    }

    /// Money was moved.
    #[event(name = "account.moved")]
    fn moved(&mut self, by: i64, note: Option<String>) {
        let _ = note;
        self.balance = self.balance.saturating_add(by);
    }

    /// The account was closed.
    #[event(name = "account.closed")]
    fn closed(&mut self) {}
}

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    /// An index into the known types, or (past their end) `other_type`.
    type_index: u8,
    other_type: &'a str,
    schema_version: u32,
    payload: &'a str,
}

fuzz_target!(|input: Input<'_>| {
    let types = AccountEvent::EVENT_TYPES;
    let event_type = types
        .get(usize::from(input.type_index))
        .copied()
        .unwrap_or(input.other_type);
    let recorded = RecordedEvent {
        id: uuid::Uuid::nil(),
        stream: StreamId::new("account", "1").expect("a valid stream id"),
        version: 1,
        cursor: Cursor::from_position(1),
        event_type: event_type.to_owned(),
        schema_version: input.schema_version,
        payload: input.payload.to_owned(),
        metadata: "{}".to_owned(),
        recorded_at: chrono::DateTime::UNIX_EPOCH,
    };
    match recorded.decode::<AccountEvent>() {
        Ok(event) => {
            assert!(types.contains(&event_type));
            assert_eq!(event.event_type(), event_type);
            let encoded = event.encode().expect("a decoded event encodes");
            let again = AccountEvent::decode(event_type, event.schema_version(), encoded.get())
                .expect("an encoded event decodes");
            assert_eq!(again, event.clone());
            // Applying what decoded never panics either.
            let _ = Account::replayed([event]).balance;
        }
        Err(Error::UnknownEventType { event_type: t, .. }) => {
            assert!(!types.contains(&t.as_str()));
        }
        Err(Error::Corrupt { .. }) => {}
        Err(other) => panic!("decoding failed with {other:?}"),
    }
});
