//! Given/when/then tests of aggregates.

use crate::{Aggregate, Event};
use std::fmt::Debug;

/// A given/when/then test of one command on an aggregate: given past events, when a command,
/// then these events, this error, or nothing.
///
/// ```
/// use recount::testing::AggregateTest;
/// # use recount::{Aggregate, Event, aggregate::DecodeError};
/// # #[derive(Debug, Default)] struct Counter { n: u32 }
/// # #[derive(Debug, Clone, PartialEq)] enum CounterEvent { Added(u32) }
/// # impl Event for CounterEvent {
/// #   const EVENT_TYPES: &'static [&'static str] = &["counter.added"];
/// #   fn event_type(&self) -> &'static str { "counter.added" }
/// #   fn schema_version(&self) -> u32 { 1 }
/// #   fn encode(&self) -> Result<Box<serde_json::value::RawValue>, serde_json::Error> {
/// #       let CounterEvent::Added(n) = self; serde_json::value::to_raw_value(&serde_json::json!({"by": n})) }
/// #   fn decode(t: &str, _: u32, p: &str) -> Result<Self, DecodeError> {
/// #       let v: serde_json::Value = serde_json::from_str(p)?; Ok(CounterEvent::Added(v["by"].as_u64().unwrap_or(0) as u32)) }
/// # }
/// # #[derive(Debug, PartialEq, thiserror::Error)] #[error("too big")] struct TooBig;
/// # impl Aggregate for Counter { const CATEGORY: &'static str = "counter"; type Event = CounterEvent; type Error = TooBig;
/// #   fn apply(&mut self, e: CounterEvent) { let CounterEvent::Added(n) = e; self.n += n; } }
/// # impl Counter { fn add(&self, by: u32) -> Result<Vec<CounterEvent>, TooBig> {
/// #   if self.n + by > 10 { Err(TooBig) } else { Ok(vec![CounterEvent::Added(by)]) } } }
/// AggregateTest::<Counter>::given([CounterEvent::Added(4)])
///     .when(|c| c.add(3))
///     .then_events([CounterEvent::Added(3)]);
/// AggregateTest::<Counter>::given([CounterEvent::Added(9)])
///     .when(|c| c.add(3))
///     .then_error(TooBig);
/// ```
#[derive(Debug)]
pub struct AggregateTest<A> {
    state: A,
}

impl<A: Aggregate> AggregateTest<A> {
    /// Starts from the state after `events`.
    pub fn given(events: impl IntoIterator<Item = A::Event>) -> Self {
        AggregateTest {
            state: A::replayed(events),
        }
    }

    /// Starts from the default state.
    pub fn given_no_events() -> Self {
        AggregateTest {
            state: A::default(),
        }
    }

    /// Runs the command.
    pub fn when(self, command: impl FnOnce(&A) -> Result<Vec<A::Event>, A::Error>) -> Then<A> {
        let result = command(&self.state);
        Then {
            state: self.state,
            result,
        }
    }
}

/// The outcome of [`AggregateTest::when`], to check.
#[derive(Debug)]
pub struct Then<A: Aggregate> {
    state: A,
    result: Result<Vec<A::Event>, A::Error>,
}

impl<A: Aggregate> Then<A>
where
    A::Event: Debug + PartialEq,
    A::Error: Debug,
{
    /// Asserts the command decided exactly `expected`, and that each event survives a round
    /// trip through its stored form. Returns the state after applying them, for more checks.
    #[track_caller]
    pub fn then_events(self, expected: impl IntoIterator<Item = A::Event>) -> A {
        let expected: Vec<A::Event> = expected.into_iter().collect();
        let events = match self.result {
            Ok(events) => events,
            Err(e) => panic!("expected events {expected:?}, but the command was rejected: {e:?}"),
        };
        assert_eq!(events, expected, "the command decided other events");
        for e in &events {
            let payload = e.encode().expect("event encodes");
            let back = A::Event::decode(e.event_type(), e.schema_version(), payload.get())
                .unwrap_or_else(|err| {
                    panic!("event {e:?} does not decode from its payload: {err}")
                });
            assert_eq!(
                &back, e,
                "event changed in a round trip through its payload"
            );
        }
        let mut state = self.state;
        for e in events {
            state.apply(e);
        }
        state
    }

    /// Asserts the command was accepted but decided nothing.
    #[track_caller]
    pub fn then_no_events(self) {
        match self.result {
            Ok(events) => assert!(events.is_empty(), "expected no events, got {events:?}"),
            Err(e) => panic!("expected no events, but the command was rejected: {e:?}"),
        }
    }

    /// Asserts the command was rejected with `expected`.
    #[track_caller]
    pub fn then_error(self, expected: A::Error)
    where
        A::Error: PartialEq,
    {
        match self.result {
            Ok(events) => panic!("expected rejection {expected:?}, got events {events:?}"),
            Err(e) => assert_eq!(e, expected, "the command was rejected with another error"),
        }
    }

    /// Asserts the command was rejected with an error that satisfies `check`.
    #[track_caller]
    pub fn then_error_matches(self, check: impl FnOnce(&A::Error) -> bool) {
        match self.result {
            Ok(events) => panic!("expected a rejection, got events {events:?}"),
            Err(e) => assert!(
                check(&e),
                "the command was rejected with an unexpected error: {e:?}"
            ),
        }
    }
}
