//! A hand-written aggregate for repository tests (the macro has its own tests).

#![allow(dead_code, unreachable_pub)]

use recount::aggregate::DecodeError;
use recount::{Aggregate, Event};
use serde_json::value::RawValue;

#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Counter {
    pub value: u64,
    pub adds: u64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum CounterEvent {
    Added { by: u64 },
    Reset,
}

impl Event for CounterEvent {
    const EVENT_TYPES: &'static [&'static str] = &["counter.added", "counter.reset"];

    fn event_type(&self) -> &'static str {
        match self {
            CounterEvent::Added { .. } => "counter.added",
            CounterEvent::Reset => "counter.reset",
        }
    }

    fn schema_version(&self) -> u32 {
        1
    }

    fn encode(&self) -> Result<Box<RawValue>, serde_json::Error> {
        match self {
            CounterEvent::Added { by } => {
                serde_json::value::to_raw_value(&serde_json::json!({ "by": by }))
            }
            CounterEvent::Reset => serde_json::value::to_raw_value(&serde_json::json!({})),
        }
    }

    fn decode(event_type: &str, _version: u32, payload: &str) -> Result<Self, DecodeError> {
        #[derive(serde::Deserialize)]
        struct Added {
            by: u64,
        }
        match event_type {
            "counter.added" => Ok(CounterEvent::Added {
                by: serde_json::from_str::<Added>(payload)?.by,
            }),
            "counter.reset" => Ok(CounterEvent::Reset),
            other => Err(DecodeError::UnknownType(other.to_owned())),
        }
    }
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum CounterError {
    #[error("the counter is capped at {0}")]
    Capped(u64),
}

impl Counter {
    pub fn add(&self, by: u64) -> Result<Vec<CounterEvent>, CounterError> {
        if self.value + by > 1_000_000 {
            return Err(CounterError::Capped(1_000_000));
        }
        Ok(vec![CounterEvent::Added { by }])
    }
}

fn apply(state: &mut Counter, event: CounterEvent) {
    match event {
        CounterEvent::Added { by } => {
            state.value += by;
            state.adds += 1;
        }
        CounterEvent::Reset => state.value = 0,
    }
}

impl Aggregate for Counter {
    const CATEGORY: &'static str = "counter";
    type Event = CounterEvent;
    type Error = CounterError;

    fn apply(&mut self, event: CounterEvent) {
        apply(self, event)
    }
}

/// The same counter with snapshots every 10 events, tagged `v2`.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SnapCounter(pub Counter);

impl SnapCounter {
    pub fn add(&self, by: u64) -> Result<Vec<CounterEvent>, CounterError> {
        self.0.add(by)
    }
}

impl Aggregate for SnapCounter {
    const CATEGORY: &'static str = "counter";
    type Event = CounterEvent;
    type Error = CounterError;

    fn apply(&mut self, event: CounterEvent) {
        apply(&mut self.0, event)
    }

    fn snapshot_every() -> Option<u64> {
        Some(10)
    }

    fn snapshot_tag() -> &'static str {
        "v2"
    }

    fn encode_snapshot(&self) -> Option<Result<String, serde_json::Error>> {
        Some(serde_json::to_string(self))
    }

    fn decode_snapshot(state: &str) -> Option<Result<Self, serde_json::Error>> {
        Some(serde_json::from_str(state))
    }
}
