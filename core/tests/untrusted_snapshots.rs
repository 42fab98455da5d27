//! Stored snapshots are not trusted: whatever version a store hands back, the repository
//! neither overflows nor believes a snapshot that does not fit the stream (store contract,
//! item 9: a snapshot is a cache).

mod common;

use async_trait::async_trait;
use common::SnapCounter;
use recount::{
    Aggregate, AppendResult, CommandContext, Cursor, EventStore, ExpectedVersion, InMemoryStore,
    LogBatch, LogFilter, NewEvent, RecordedEvent, Repository, Snapshot, StreamId,
};

/// A store whose `load_snapshot` returns a snapshot at a version of the test's choosing, as a
/// damaged or third-party store might; everything else is the in-memory store.
#[derive(Clone)]
struct Forged {
    inner: InMemoryStore,
    version: u64,
    state: String,
}

#[async_trait]
impl EventStore for Forged {
    async fn append(
        &self,
        s: &StreamId,
        e: ExpectedVersion,
        ev: Vec<NewEvent>,
    ) -> recount::Result<AppendResult> {
        self.inner.append(s, e, ev).await
    }
    async fn read_stream(
        &self,
        s: &StreamId,
        f: u64,
        l: usize,
    ) -> recount::Result<Vec<RecordedEvent>> {
        self.inner.read_stream(s, f, l).await
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
    async fn save_snapshot(&self, _: Snapshot) -> recount::Result<()> {
        Ok(())
    }
    async fn load_snapshot(&self, s: &StreamId) -> recount::Result<Option<Snapshot>> {
        Ok(Some(Snapshot {
            stream: s.clone(),
            version: self.version,
            tag: SnapCounter::snapshot_tag().to_owned(),
            state: self.state.clone(),
        }))
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
async fn snapshots_at_impossible_versions_are_ignored_without_overflow_and_commands_still_run() {
    // A marked state shows whether the snapshot was used.
    let marked = r#"{"value":1000,"adds":0}"#.to_owned();
    for version in [u64::MAX, u64::MAX - 1, i64::MAX as u64, 4, 0] {
        let store = Forged {
            inner: InMemoryStore::new(),
            version,
            state: marked.clone(),
        };
        let repo = Repository::<SnapCounter, _>::new(store.clone());
        let ctx = CommandContext::new();
        for _ in 0..3 {
            repo.execute("c", &ctx, |c| c.add(2))
                .await
                .unwrap_or_else(|e| panic!("execute over a snapshot at {version}: {e}"));
        }
        let loaded = repo.load("c").await.unwrap();
        assert_eq!(
            (loaded.state.0.value, loaded.version),
            (6, 3),
            "the snapshot at version {version} was ignored and the stream replayed"
        );
    }
}

#[tokio::test]
async fn a_snapshot_that_fits_is_still_used() {
    let inner = InMemoryStore::new();
    let repo = Repository::<SnapCounter, _>::new(inner.clone());
    for _ in 0..3 {
        repo.execute("c", &CommandContext::new(), |c| c.add(2))
            .await
            .unwrap();
    }
    let store = Forged {
        inner,
        version: 2,
        state: r#"{"value":1000,"adds":2}"#.to_owned(),
    };
    let loaded = Repository::<SnapCounter, _>::new(store)
        .load("c")
        .await
        .unwrap();
    assert_eq!(
        (loaded.state.0.value, loaded.version),
        (1002, 3),
        "the snapshot at 2 plus event 3"
    );
}
