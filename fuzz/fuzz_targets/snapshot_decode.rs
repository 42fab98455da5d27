//! Stored snapshots are a cache the repository does not trust (store contract, item 9):
//! whatever version, tag and state text a store hands back, `load` answers, at the stream's
//! true version, and a snapshot that is refused leaves the replayed state.
#![no_main]

use arbitrary::Arbitrary;
use async_trait::async_trait;
use libfuzzer_sys::fuzz_target;
use recount::{
    aggregate, Aggregate, AppendResult, CommandContext, Cursor, EventStore, ExpectedVersion,
    InMemoryStore, LogBatch, LogFilter, NewEvent, RecordedEvent, Repository, Snapshot, StreamId,
};
use std::time::Duration;

#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Counter {
    total: u64,
    last: Option<String>,
}

#[aggregate(category = "counter", error = std::convert::Infallible, snapshot_every = 2)]
impl Counter {
    /// The counter went up.
    #[event]
    fn added(&mut self, by: u64, label: String) {
        self.total = self.total.wrapping_add(by);
        self.last = Some(label);
    }
}

/// The in-memory store, except that `load_snapshot` returns the fuzzer's snapshot.
#[derive(Clone)]
struct Forged {
    inner: InMemoryStore,
    snapshot: Option<(u64, String, String)>,
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
        Ok(self.snapshot.clone().map(|(version, tag, state)| Snapshot {
            stream: s.clone(),
            version,
            tag,
            state,
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
    async fn count_after(&self, a: Cursor, f: &LogFilter) -> recount::Result<u64> {
        self.inner.count_after(a, f).await
    }
    async fn wait_for_append(&self, a: Cursor, t: Duration) {
        self.inner.wait_for_append(a, t).await
    }
}

#[derive(Debug, Arbitrary)]
struct Input {
    /// How many events the stream holds (0 to 7).
    events: u8,
    version: u64,
    /// Use the aggregate's own tag (else `tag`).
    right_tag: bool,
    tag: String,
    state: String,
}

fuzz_target!(|input: Input| {
    // The snapshot's state text decodes or fails, typed, on its own.
    let decoded = Counter::decode_snapshot(&input.state).expect("snapshots are on");
    let events = u64::from(input.events % 8);
    let tag = if input.right_tag {
        Counter::snapshot_tag().to_owned()
    } else {
        input.tag.clone()
    };
    let store = Forged {
        inner: InMemoryStore::new(),
        snapshot: Some((input.version, tag.clone(), input.state.clone())),
    };
    let repo = Repository::<Counter, _>::new(store);
    let ctx = CommandContext::new();
    let mut replayed = Counter::default();
    futures::executor::block_on(async {
        for i in 0..events {
            let e = CounterEvent::Added {
                by: i,
                label: format!("n{i}"),
            };
            replayed.apply(e.clone());
            repo.execute("c", &ctx, |_| Ok(vec![e.clone()]))
                .await
                .expect("an append to the in-memory store");
        }
        let loaded = repo
            .load("c")
            .await
            .expect("a bad snapshot never fails a load");
        assert_eq!(loaded.version, events);
        let usable = tag == Counter::snapshot_tag()
            && input.version > 0
            && input.version <= events
            && decoded.is_ok();
        if !usable {
            assert_eq!(
                loaded.state, replayed,
                "a refused snapshot leaves the replayed state"
            );
        }
    });
});
