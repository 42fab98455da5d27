//! The repository: conflict retry, snapshots, metadata, idempotency, corrupt rows.

mod common;

use async_trait::async_trait;
use common::{Counter, CounterError, CounterEvent, SnapCounter};
use recount::{
    AppendResult, CommandContext, CommandError, Cursor, Error, EventStore, ExpectedVersion,
    InMemoryStore, LogBatch, LogFilter, NewEvent, RecordedEvent, Repository, Snapshot, StreamId,
};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

fn stream(id: &str) -> StreamId {
    StreamId::new("counter", id).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_tasks_executing_200_increments_each_write_1600_contiguous_events() {
    let store = InMemoryStore::new();
    let repo = Repository::<Counter, _>::new(store.clone()).with_max_conflict_retries(100_000);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let repo = repo.clone();
            tokio::spawn(async move {
                for _ in 0..200 {
                    repo.execute("shared", &CommandContext::new(), |c| c.add(1))
                        .await
                        .unwrap();
                    // Let other tasks interleave between a load and an append.
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let events = store
        .read_stream(&stream("shared"), 1, usize::MAX)
        .await
        .unwrap();
    assert_eq!(events.len(), 1600);
    assert_eq!(
        events.iter().map(|e| e.version).collect::<Vec<_>>(),
        (1..=1600).collect::<Vec<_>>()
    );
    assert_eq!(repo.load("shared").await.unwrap().state.value, 1600);
    let stats = repo.stats();
    assert!(stats.conflict_retries > 0, "the race happened: {stats:?}");
    assert_eq!(stats.appends, 1600);
    assert_eq!(stats.commands, 1600);
}

/// A store that lets another writer in before each of our first `interferences` appends
/// (one event of 100), and records where each stream read starts and when.
#[derive(Clone)]
struct Interloper {
    store: InMemoryStore,
    interferences: Arc<AtomicU32>,
    reads: Arc<std::sync::Mutex<Vec<(u64, tokio::time::Instant)>>>,
}

impl Interloper {
    fn new(interferences: u32) -> Self {
        Interloper {
            store: InMemoryStore::new(),
            interferences: Arc::new(AtomicU32::new(interferences)),
            reads: Arc::default(),
        }
    }
}

#[async_trait]
impl EventStore for Interloper {
    async fn append(
        &self,
        s: &StreamId,
        e: ExpectedVersion,
        ev: Vec<NewEvent>,
    ) -> recount::Result<AppendResult> {
        let interfere = self
            .interferences
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if interfere {
            let other = NewEvent::new("counter.added", &serde_json::json!({"by": 100})).unwrap();
            self.store
                .append(s, ExpectedVersion::Any, vec![other])
                .await?;
        }
        self.store.append(s, e, ev).await
    }
    async fn read_stream(
        &self,
        s: &StreamId,
        f: u64,
        l: usize,
    ) -> recount::Result<Vec<RecordedEvent>> {
        let at = tokio::time::Instant::now();
        self.reads.lock().unwrap().push((f, at));
        self.store.read_stream(s, f, l).await
    }
    async fn stream_version(&self, s: &StreamId) -> recount::Result<u64> {
        self.store.stream_version(s).await
    }
    async fn read_all(&self, a: Cursor, f: &LogFilter, l: usize) -> recount::Result<LogBatch> {
        self.store.read_all(a, f, l).await
    }
    async fn delete_stream(&self, s: &StreamId, e: ExpectedVersion) -> recount::Result<()> {
        self.store.delete_stream(s, e).await
    }
    async fn save_snapshot(&self, s: Snapshot) -> recount::Result<()> {
        self.store.save_snapshot(s).await
    }
    async fn load_snapshot(&self, s: &StreamId) -> recount::Result<Option<Snapshot>> {
        self.store.load_snapshot(s).await
    }
    async fn load_checkpoint(&self, n: &str) -> recount::Result<Option<Cursor>> {
        self.store.load_checkpoint(n).await
    }
    async fn save_checkpoint(&self, n: &str, e: Option<Cursor>, c: Cursor) -> recount::Result<()> {
        self.store.save_checkpoint(n, e, c).await
    }
    async fn load_checkpoint_state(
        &self,
        n: &str,
    ) -> recount::Result<Option<(Cursor, Option<String>)>> {
        self.store.load_checkpoint_state(n).await
    }
    async fn save_checkpoint_state(
        &self,
        n: &str,
        e: Option<Cursor>,
        c: Cursor,
        state: Option<String>,
    ) -> recount::Result<()> {
        self.store.save_checkpoint_state(n, e, c, state).await
    }
}
#[tokio::test]
async fn conflicts_past_the_bound_are_returned() {
    let repo =
        Repository::<Counter, _>::new(Interloper::new(u32::MAX)).with_max_conflict_retries(3);
    let err = repo
        .execute("c", &CommandContext::new(), |c| c.add(1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, CommandError::Store(Error::Conflict { .. })),
        "{err:?}"
    );
    assert_eq!(repo.stats().conflict_retries, 3);
    let loaded = repo.load("c").await.unwrap();
    assert_eq!(
        loaded.state.value, 400,
        "only the interloper's four events were written"
    );
}

#[tokio::test]
async fn a_stream_longer_than_a_replay_page_loads_in_pages_to_the_last_event() {
    let store = Interloper::new(0);
    for _ in 0..9 {
        let batch: Vec<NewEvent> = (0..1000)
            .map(|_| NewEvent::new("counter.added", &serde_json::json!({"by": 1})).unwrap())
            .collect();
        store
            .append(&stream("long"), ExpectedVersion::Any, batch)
            .await
            .unwrap();
    }
    let repo = Repository::<Counter, _>::new(store.clone());
    let loaded = repo.load("long").await.unwrap();
    assert_eq!((loaded.version, loaded.state.value), (9000, 9000));
    let froms: Vec<u64> = store.reads.lock().unwrap().iter().map(|r| r.0).collect();
    assert!(froms.len() > 1, "more than one page: {froms:?}");
    assert_eq!(froms[0], 1);
    assert!(froms.windows(2).all(|w| w[0] < w[1]), "{froms:?}");
}

#[tokio::test(start_paused = true)]
async fn a_retry_reads_only_the_events_that_won_and_later_retries_back_off() {
    let store = Interloper::new(0);
    let seed: Vec<NewEvent> = (0..50)
        .map(|_| NewEvent::new("counter.added", &serde_json::json!({"by": 1})).unwrap())
        .collect();
    store
        .append(&stream("c"), ExpectedVersion::NoStream, seed)
        .await
        .unwrap();
    store.interferences.store(3, Ordering::SeqCst);
    let repo = Repository::<Counter, _>::new(store.clone())
        .with_conflict_backoff(Duration::from_millis(2), Duration::from_millis(50));
    let done = repo
        .execute("c", &CommandContext::new(), |c| c.add(1))
        .await
        .unwrap();
    assert_eq!(done.version, 54, "50 seeded, 3 that won, then ours");
    assert_eq!(done.state.value, 50 + 300 + 1);
    assert_eq!(repo.stats().conflict_retries, 3);
    let reads = store.reads.lock().unwrap().clone();
    // The whole stream once; after each conflict only from the version decided on (the
    // event there, which proves the stream still reaches it, and the ones after).
    let froms: Vec<u64> = reads.iter().map(|(from, _)| *from).collect();
    assert_eq!(froms, [1, 50, 51, 52]);
    // (Paused time: only the repository's sleeps move the clock.) The first retry at once,
    // then pauses from the upper half of 2 ms, then of 4 ms.
    let gaps: Vec<Duration> = reads.windows(2).map(|w| w[1].1 - w[0].1).collect();
    assert_eq!(gaps[0], Duration::ZERO, "{gaps:?}");
    assert!(
        gaps[1] >= Duration::from_millis(1) && gaps[1] <= Duration::from_millis(2),
        "{gaps:?}"
    );
    assert!(
        gaps[2] >= Duration::from_millis(2) && gaps[2] <= Duration::from_millis(4),
        "{gaps:?}"
    );
}

#[tokio::test]
async fn rejections_keep_the_aggregates_error_type_and_write_nothing() {
    let store = InMemoryStore::new();
    let repo = Repository::<Counter, _>::new(store.clone());
    let err = repo
        .execute("c", &CommandContext::new(), |c| c.add(2_000_000))
        .await
        .unwrap_err();
    assert!(
        matches!(err, CommandError::Rejected(CounterError::Capped(1_000_000))),
        "{err:?}"
    );
    assert!(store.is_empty());
    let none = repo
        .execute("c", &CommandContext::new(), |_| Ok(vec![]))
        .await
        .unwrap();
    assert_eq!((none.version, none.cursor), (0, None));
}

#[tokio::test]
async fn every_event_carries_the_commands_correlation_causation_and_user() {
    let store = InMemoryStore::new();
    let repo = Repository::<Counter, _>::new(store.clone());
    let (corr, cause) = (Uuid::now_v7(), Uuid::now_v7());
    let ctx = CommandContext::new()
        .with_user("ada")
        .with_correlation_id(corr)
        .with_causation_id(cause);
    let done = repo
        .execute("m", &ctx, |_| {
            Ok(vec![CounterEvent::Added { by: 1 }, CounterEvent::Reset])
        })
        .await
        .unwrap();
    let events = store.read_stream(&stream("m"), 1, 10).await.unwrap();
    assert_eq!(
        events.iter().map(|e| e.id).collect::<Vec<_>>(),
        done.event_ids
    );
    for e in &events {
        let m = e.metadata().unwrap();
        assert_eq!(
            (m.correlation_id, m.causation_id, m.user_id.as_deref()),
            (Some(corr), Some(cause), Some("ada"))
        );
    }
    // Without a correlation id, one is drawn per command and shared by its events.
    repo.execute("m", &CommandContext::new(), |_| {
        Ok(vec![CounterEvent::Reset, CounterEvent::Reset])
    })
    .await
    .unwrap();
    let more = store.read_stream(&stream("m"), 3, 10).await.unwrap();
    let c: Vec<_> = more
        .iter()
        .map(|e| e.metadata().unwrap().correlation_id)
        .collect();
    assert!(c[0].is_some() && c[0] == c[1] && c[0] != Some(corr));
}

#[tokio::test]
async fn a_command_id_makes_a_repeated_command_write_once() {
    let store = InMemoryStore::new();
    let repo = Repository::<Counter, _>::new(store.clone());
    let ctx = CommandContext::new().with_command_id(Uuid::now_v7());
    let first = repo.execute("i", &ctx, |c| c.add(5)).await.unwrap();
    let again = repo.execute("i", &ctx, |c| c.add(5)).await.unwrap();
    assert_eq!(
        first.event_ids, again.event_ids,
        "ids derive from the command id"
    );
    assert_eq!(store.len(), 1, "the repeated command wrote nothing");
    assert_eq!(
        (again.state.value, again.version),
        (5, 1),
        "the stored state is returned"
    );
}

/// A store whose first `fail_next` appends commit but then report a retriable failure, as a
/// dropped connection after COMMIT would; `hide` drops one stream version from reads, as a
/// row deleted by hand would.
#[derive(Clone)]
struct LostReply {
    inner: InMemoryStore,
    fail_next: Arc<AtomicU32>,
    hide: Option<u64>,
}

#[async_trait]
impl EventStore for LostReply {
    async fn append(
        &self,
        s: &StreamId,
        e: ExpectedVersion,
        ev: Vec<NewEvent>,
    ) -> recount::Result<AppendResult> {
        let result = self.inner.append(s, e, ev).await?;
        let take = self
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if take.is_ok() {
            return Err(Error::retriable(std::io::Error::other(
                "connection reset after commit",
            )));
        }
        Ok(result)
    }
    async fn read_stream(
        &self,
        s: &StreamId,
        f: u64,
        l: usize,
    ) -> recount::Result<Vec<RecordedEvent>> {
        let mut events = self.inner.read_stream(s, f, l).await?;
        events.retain(|e| Some(e.version) != self.hide);
        Ok(events)
    }
    async fn stream_version(&self, s: &StreamId) -> recount::Result<u64> {
        self.inner.stream_version(s).await
    }
    async fn read_all(&self, a: Cursor, f: &LogFilter, l: usize) -> recount::Result<LogBatch> {
        self.inner.read_all(a, f, l).await
    }
    async fn delete_stream(&self, s: &StreamId, e: ExpectedVersion) -> recount::Result<()> {
        self.inner.delete_stream(s, e).await
    }
    async fn save_snapshot(&self, _s: Snapshot) -> recount::Result<()> {
        Err(Error::store(std::io::Error::other(
            "snapshot table is read-only",
        )))
    }
    async fn load_snapshot(&self, s: &StreamId) -> recount::Result<Option<Snapshot>> {
        self.inner.load_snapshot(s).await
    }
    async fn load_checkpoint(&self, n: &str) -> recount::Result<Option<Cursor>> {
        self.inner.load_checkpoint(n).await
    }
    async fn save_checkpoint(&self, n: &str, e: Option<Cursor>, c: Cursor) -> recount::Result<()> {
        self.inner.save_checkpoint(n, e, c).await
    }
    async fn load_checkpoint_state(
        &self,
        n: &str,
    ) -> recount::Result<Option<(Cursor, Option<String>)>> {
        self.inner.load_checkpoint_state(n).await
    }
    async fn save_checkpoint_state(
        &self,
        n: &str,
        e: Option<Cursor>,
        c: Cursor,
        state: Option<String>,
    ) -> recount::Result<()> {
        self.inner.save_checkpoint_state(n, e, c, state).await
    }
}

#[tokio::test]
async fn an_append_with_unknown_outcome_is_resent_with_the_same_ids_and_written_once() {
    let inner = InMemoryStore::new();
    let store = LostReply {
        inner: inner.clone(),
        fail_next: Arc::new(AtomicU32::new(1)),
        hide: None,
    };
    let repo = Repository::<Counter, _>::new(store);
    let done = repo
        .execute("u", &CommandContext::new(), |c| c.add(7))
        .await
        .unwrap();
    assert_eq!((done.version, done.state.value), (1, 7));
    assert_eq!(inner.len(), 1, "the event was written exactly once");
    assert_eq!(repo.stats().unknown_outcome_retries, 1);
    assert_eq!(
        repo.stats().conflict_retries,
        0,
        "the command was not decided again"
    );
}

#[tokio::test]
async fn unknown_outcomes_are_resent_up_to_the_bound_with_a_growing_pause_then_returned() {
    let inner = InMemoryStore::new();
    let store = LostReply {
        inner: inner.clone(),
        fail_next: Arc::new(AtomicU32::new(10)),
        hide: None,
    };
    let repo = Repository::<Counter, _>::new(store).with_max_unknown_outcome_retries(3);
    let started = std::time::Instant::now();
    let err = repo
        .execute("u", &CommandContext::new(), |c| c.add(7))
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert!(
        matches!(&err, CommandError::Store(e) if e.is_retriable()),
        "{err:?}"
    );
    assert_eq!(
        repo.stats().unknown_outcome_retries,
        3,
        "three re-sends, then the error"
    );
    assert_eq!(inner.len(), 1, "every re-send was recognised by its ids");
    // 20, 40 and 80 ms: the pause doubles from 20 ms.
    assert!(
        waited >= std::time::Duration::from_millis(130),
        "paused {waited:?} in all"
    );
}

/// Store contract, item 1, checked on every replay: a version missing from the middle of a
/// stream is a corrupt stream, never a state silently built without it.
#[tokio::test]
async fn a_replayed_stream_with_a_version_missing_is_corrupt() {
    let inner = InMemoryStore::new();
    let plain = Repository::<Counter, _>::new(inner.clone());
    for _ in 0..3 {
        plain
            .execute("gap", &CommandContext::new(), |c| c.add(1))
            .await
            .unwrap();
    }
    let store = LostReply {
        inner,
        fail_next: Arc::new(AtomicU32::new(0)),
        hide: Some(2),
    };
    let repo = Repository::<Counter, _>::new(store);
    let err = repo.load("gap").await.unwrap_err();
    assert!(
        matches!(&err, Error::Corrupt { reason, .. } if reason.contains("version 2 is missing")),
        "{err:?}"
    );
}

/// A hand-written aggregate may say `snapshot_every() == Some(0)`: that means never, not a
/// division by zero.
#[tokio::test]
async fn snapshot_every_zero_saves_no_snapshot() {
    #[derive(Debug, Default)]
    struct Zero(common::Counter);
    impl recount::Aggregate for Zero {
        const CATEGORY: &'static str = "counter";
        type Event = CounterEvent;
        type Error = CounterError;
        fn apply(&mut self, event: CounterEvent) {
            recount::Aggregate::apply(&mut self.0, event)
        }
        fn snapshot_every() -> Option<u64> {
            Some(0)
        }
        fn encode_snapshot(&self) -> Option<Result<String, serde_json::Error>> {
            Some(Ok("{}".to_owned()))
        }
    }
    let store = InMemoryStore::new();
    let repo = Repository::<Zero, _>::new(store.clone());
    let done = repo
        .execute("z", &CommandContext::new(), |z| z.0.add(2))
        .await
        .unwrap();
    assert_eq!(done.version, 1);
    assert_eq!(repo.stats().snapshots_saved, 0);
    assert_eq!(store.load_snapshot(&stream("z")).await.unwrap(), None);
}

#[tokio::test]
async fn a_failed_snapshot_save_never_fails_the_command() {
    let inner = InMemoryStore::new();
    let store = LostReply {
        inner: inner.clone(),
        fail_next: Arc::new(AtomicU32::new(0)),
        hide: None,
    };
    let repo = Repository::<SnapCounter, _>::new(store);
    for _ in 0..10 {
        repo.execute("s", &CommandContext::new(), |c| c.add(1))
            .await
            .unwrap();
    }
    assert_eq!(repo.stats().snapshot_failures, 1);
    assert_eq!(repo.load("s").await.unwrap().state.0.value, 10);
}

#[tokio::test]
async fn load_from_snapshot_plus_tail_equals_full_replay() {
    let store = InMemoryStore::new();
    let repo = Repository::<SnapCounter, _>::new(store.clone());
    for i in 1..=25 {
        repo.execute("t", &CommandContext::new(), |c| c.add(i))
            .await
            .unwrap();
    }
    let snapshot = store
        .load_snapshot(&stream("t"))
        .await
        .unwrap()
        .expect("a snapshot was saved");
    assert_eq!((snapshot.version, snapshot.tag.as_str()), (20, "v2"));
    assert_eq!(repo.stats().snapshots_saved, 2);
    let loaded = repo.load("t").await.unwrap();
    let all = store
        .read_stream(&stream("t"), 1, usize::MAX)
        .await
        .unwrap();
    let replayed =
        <Counter as recount::Aggregate>::replayed(all.iter().map(|e| e.decode().unwrap()));
    assert_eq!(loaded.state.0, replayed);
    assert_eq!(loaded.version, 25);
    // And the snapshot is really what load starts from: a marked snapshot shows through.
    let marked = SnapCounter(Counter {
        value: 1_000,
        adds: 20,
    });
    store
        .save_snapshot(Snapshot {
            state: serde_json::to_string(&marked).unwrap(),
            ..snapshot
        })
        .await
        .unwrap();
    assert_eq!(
        repo.load("t").await.unwrap().state.0.value,
        1_000 + 21 + 22 + 23 + 24 + 25
    );
}

#[tokio::test]
async fn a_snapshot_of_another_schema_or_undecodable_is_ignored_and_replay_rebuilds() {
    let store = InMemoryStore::new();
    let repo = Repository::<SnapCounter, _>::new(store.clone());
    for _ in 0..5 {
        repo.execute("o", &CommandContext::new(), |c| c.add(2))
            .await
            .unwrap();
    }
    let old = Snapshot {
        stream: stream("o"),
        version: 5,
        tag: "v1".into(),
        state: r#"{"value": 999}"#.into(),
    };
    store.save_snapshot(old).await.unwrap();
    let loaded = repo.load("o").await.unwrap();
    assert_eq!(
        (loaded.state.0.value, loaded.version),
        (10, 5),
        "the v1 snapshot was ignored"
    );
    let broken = Snapshot {
        stream: stream("o"),
        version: 5,
        tag: "v2".into(),
        state: "{not json".into(),
    };
    store.save_snapshot(broken).await.unwrap();
    assert_eq!(
        repo.load("o").await.unwrap().state.0.value,
        10,
        "an undecodable snapshot is ignored"
    );
}

#[tokio::test]
async fn a_stored_payload_that_does_not_decode_is_corrupt_naming_the_event() {
    let store = InMemoryStore::new();
    let s = stream("bad");
    let good = NewEvent::new("counter.added", &serde_json::json!({"by": 1})).unwrap();
    let bad = NewEvent::new("counter.added", &serde_json::json!({"by": "lots"})).unwrap();
    let bad_id = bad.id;
    store
        .append(&s, ExpectedVersion::NoStream, vec![good, bad])
        .await
        .unwrap();
    let repo = Repository::<Counter, _>::new(store.clone());
    match repo.load("bad").await {
        Err(Error::Corrupt {
            event_id,
            stream,
            event_type,
            reason,
        }) => {
            assert_eq!(
                (event_id, stream.as_str(), event_type.as_str()),
                (bad_id, "counter-bad", "counter.added")
            );
            assert!(reason.contains("payload"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let unknown = StreamId::new("counter", "unk").unwrap();
    let e = NewEvent::new("counter.exploded", &serde_json::json!({})).unwrap();
    store
        .append(&unknown, ExpectedVersion::NoStream, vec![e])
        .await
        .unwrap();
    let err = repo.load("unk").await.unwrap_err();
    assert!(
        matches!(err, Error::UnknownEventType { ref event_type, .. } if event_type == "counter.exploded"),
        "{err:?}"
    );
    // Commands on a corrupt stream fail with the same typed error, never a panic.
    let err = repo
        .execute("bad", &CommandContext::new(), |c| c.add(1))
        .await
        .unwrap_err();
    assert!(matches!(err, CommandError::Store(Error::Corrupt { .. })));
}

#[tokio::test]
async fn a_repeated_command_id_is_done_even_when_deciding_again_would_refuse() {
    let store = InMemoryStore::new();
    let repo = Repository::<Counter, _>::new(store.clone());
    // A command that only makes sense once: it refuses when the counter is not zero.
    let once = |c: &Counter| {
        if c.value == 0 {
            c.add(5)
        } else {
            Err(CounterError::Capped(0))
        }
    };
    let ctx = CommandContext::new().with_command_id(Uuid::now_v7());
    let first = repo.execute("once", &ctx, once).await.unwrap();
    let again = repo.execute("once", &ctx, once).await.unwrap();
    assert_eq!(
        again.event_ids, first.event_ids,
        "the repeat reports the events written the first time"
    );
    assert_eq!(again.cursor, first.cursor);
    assert_eq!((again.version, again.state.value), (1, 5));
    assert_eq!(store.len(), 1);
    // Another command id is a new command, and is refused.
    let other = CommandContext::new().with_command_id(Uuid::now_v7());
    assert!(matches!(
        repo.execute("once", &other, once).await,
        Err(CommandError::Rejected(_))
    ));
}
