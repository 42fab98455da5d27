//! Stores and consumers that fail on purpose, for resilience tests.

use crate::projection::{CheckpointMove, Consumer, ConsumerKind, DeadLetterPolicy};
use crate::{
    AppendResult, Cursor, Error, EventStore, ExpectedVersion, LogBatch, LogFilter, NewEvent,
    RecordedEvent, Result, Snapshot, StreamId,
};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The fault plan shared by a [`FaultyStore`] and its [`FaultyConsumer`]s: a failure rate
/// that can be changed while they run, and a count of the faults injected per call.
#[derive(Debug, Default)]
pub struct Faults {
    /// Failure probability in millionths.
    rate_ppm: AtomicU32,
    /// A pause before every call, in microseconds (a slow network).
    delay_us: AtomicU32,
    injected: Mutex<BTreeMap<&'static str, u64>>,
}

impl Faults {
    /// A plan failing each call with probability `rate` (0 to 1).
    pub fn new(rate: f64) -> Arc<Self> {
        let faults = Arc::new(Faults::default());
        faults.set_rate(rate);
        faults
    }

    /// Changes the failure probability (0 stops the faults).
    pub fn set_rate(&self, rate: f64) {
        let ppm = (rate.clamp(0.0, 1.0) * 1_000_000.0) as u32;
        self.rate_ppm.store(ppm, Ordering::Relaxed);
    }

    /// Makes every call wait `delay` first, as over a slow network (0: no wait).
    pub fn set_delay(&self, delay: Duration) {
        let us = delay.as_micros().min(u128::from(u32::MAX)) as u32;
        self.delay_us.store(us, Ordering::Relaxed);
    }

    /// Faults injected so far, per call (`read_all`, `save_checkpoint`, `commit`, …), with
    /// `:after` for those injected after the call took effect.
    pub fn injected(&self) -> BTreeMap<&'static str, u64> {
        self.injected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Faults injected so far into calls named `call` (before and after).
    pub fn injected_into(&self, call: &str) -> u64 {
        self.injected()
            .iter()
            .filter(|(k, _)| k.split(':').next() == Some(call))
            .map(|(_, n)| n)
            .sum()
    }

    /// Draws whether to fail: `None` no fault, `Some(false)` before the call, `Some(true)`
    /// after it (the call took effect, the caller hears a failure).
    fn draw(&self) -> Option<bool> {
        let ppm = self.rate_ppm.load(Ordering::Relaxed);
        if ppm == 0 {
            return None;
        }
        let r = uuid::Uuid::new_v4().as_u128() as u64;
        ((r % 1_000_000) < u64::from(ppm)).then_some(r & (1 << 40) != 0)
    }

    fn count(&self, call: &'static str) {
        *self
            .injected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(call)
            .or_default() += 1;
    }

    /// Runs `op` under the plan: it may fail before `op` runs, or after it took effect.
    async fn around<T>(
        &self,
        call: &'static str,
        after: &'static str,
        op: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let delay = self.delay_us.load(Ordering::Relaxed);
        if delay > 0 {
            tokio::time::sleep(Duration::from_micros(u64::from(delay))).await;
        }
        match self.draw() {
            None => op.await,
            Some(false) => {
                self.count(call);
                Err(injected(call))
            }
            Some(true) => {
                let outcome = op.await;
                self.count(after);
                match outcome {
                    Ok(_) => Err(injected(call)),
                    Err(e) => Err(e),
                }
            }
        }
    }
}

fn injected(call: &str) -> Error {
    Error::retriable(std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        format!("injected fault in `{call}`"),
    ))
}

/// A store whose every call (but [`EventStore::wait_for_append`]) fails at random with a
/// retriable error, as a flaky connection would: before the call reaches the store, or after
/// it took effect (the reply was lost).
///
/// ```
/// use recount::testing::{FaultyStore, Faults};
/// use recount::{EventStore, InMemoryStore};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let faults = Faults::new(1.0);
/// let store = FaultyStore::new(InMemoryStore::new(), faults.clone());
/// assert!(store.load_checkpoint("x").await.unwrap_err().is_retriable());
/// faults.set_rate(0.0);
/// assert_eq!(store.load_checkpoint("x").await.unwrap(), None);
/// assert_eq!(faults.injected_into("load_checkpoint"), 1);
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct FaultyStore<S> {
    inner: S,
    faults: Arc<Faults>,
}

impl<S: EventStore> FaultyStore<S> {
    /// `inner` failing by the plan `faults`.
    pub fn new(inner: S, faults: Arc<Faults>) -> Self {
        FaultyStore { inner, faults }
    }

    /// The store underneath, which never fails on purpose.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The fault plan.
    pub fn faults(&self) -> &Arc<Faults> {
        &self.faults
    }
}

macro_rules! faulty {
    ($self:ident, $call:literal, $op:expr) => {
        $self
            .faults
            .around($call, concat!($call, ":after"), $op)
            .await
    };
}

#[async_trait]
impl<S: EventStore> EventStore for FaultyStore<S> {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult> {
        faulty!(self, "append", self.inner.append(stream, expected, events))
    }
    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>> {
        faulty!(
            self,
            "read_stream",
            self.inner.read_stream(stream, from_version, limit)
        )
    }
    async fn stream_version(&self, stream: &StreamId) -> Result<u64> {
        faulty!(self, "stream_version", self.inner.stream_version(stream))
    }
    async fn read_all(&self, after: Cursor, filter: &LogFilter, limit: usize) -> Result<LogBatch> {
        faulty!(self, "read_all", self.inner.read_all(after, filter, limit))
    }
    async fn delete_stream(&self, stream: &StreamId, expected: ExpectedVersion) -> Result<()> {
        faulty!(
            self,
            "delete_stream",
            self.inner.delete_stream(stream, expected)
        )
    }
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<()> {
        faulty!(self, "save_snapshot", self.inner.save_snapshot(snapshot))
    }
    async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>> {
        faulty!(self, "load_snapshot", self.inner.load_snapshot(stream))
    }
    async fn load_checkpoint(&self, name: &str) -> Result<Option<Cursor>> {
        faulty!(self, "load_checkpoint", self.inner.load_checkpoint(name))
    }
    async fn save_checkpoint(
        &self,
        name: &str,
        expected: Option<Cursor>,
        new: Cursor,
    ) -> Result<()> {
        faulty!(
            self,
            "save_checkpoint",
            self.inner.save_checkpoint(name, expected, new)
        )
    }
    async fn load_checkpoint_state(&self, name: &str) -> Result<Option<(Cursor, Option<String>)>> {
        faulty!(
            self,
            "load_checkpoint_state",
            self.inner.load_checkpoint_state(name)
        )
    }
    async fn save_checkpoint_state(
        &self,
        name: &str,
        expected: Option<Cursor>,
        new: Cursor,
        state: Option<String>,
    ) -> Result<()> {
        faulty!(
            self,
            "save_checkpoint_state",
            self.inner.save_checkpoint_state(name, expected, new, state)
        )
    }
    async fn count_after(&self, after: Cursor, filter: &LogFilter) -> Result<u64> {
        faulty!(self, "count_after", self.inner.count_after(after, filter))
    }
    async fn wait_for_append(&self, after: Cursor, timeout: Duration) {
        self.inner.wait_for_append(after, timeout).await
    }
}

/// A consumer whose `position` and `commit` fail at random with a retriable error, before
/// they run or after they took effect: for consumers that write outside the store the runner
/// is given (a read model's own transaction).
#[derive(Debug)]
pub struct FaultyConsumer<C> {
    inner: C,
    faults: Arc<Faults>,
}

impl<C: Consumer> FaultyConsumer<C> {
    /// `inner` failing by the plan `faults`.
    pub fn new(inner: C, faults: Arc<Faults>) -> Self {
        FaultyConsumer { inner, faults }
    }

    /// The consumer underneath.
    pub fn inner(&self) -> &C {
        &self.inner
    }
}

#[async_trait]
impl<C: Consumer> Consumer for FaultyConsumer<C> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn kind(&self) -> ConsumerKind {
        self.inner.kind()
    }
    fn version(&self) -> u32 {
        self.inner.version()
    }
    fn filter(&self) -> LogFilter {
        self.inner.filter()
    }
    fn checkpoint(&self, partition: Option<(u32, u32)>) -> String {
        self.inner.checkpoint(partition)
    }
    fn dead_letter_policy(&self) -> DeadLetterPolicy {
        self.inner.dead_letter_policy()
    }
    async fn position(&self, name: &str) -> Result<Option<Cursor>> {
        faulty!(self, "position", self.inner.position(name))
    }
    fn prepare(&self, events: &[RecordedEvent]) {
        self.inner.prepare(events)
    }
    async fn commit(&self, events: Vec<RecordedEvent>, checkpoint: CheckpointMove) -> Result<()> {
        faulty!(self, "commit", self.inner.commit(events, checkpoint))
    }
    async fn drop_storage(&self) -> Result<()> {
        self.inner.drop_storage().await
    }
}
