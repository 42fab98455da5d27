//! Snapshot rows are not trusted (store contract, item 9: a snapshot is a cache): a row
//! damaged by hand, at a negative version or beyond its stream, never overflows or misleads
//! the repository; the aggregate is replayed and commands keep working.

use recount::{aggregate, Aggregate, CommandContext, EventStore, Repository};
use recount_sqlite::rusqlite::Connection;
use recount_sqlite::SqliteEventStore;

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Tally {
    total: u64,
}

#[aggregate(category = "tally", error = std::convert::Infallible, snapshot_every = 1000)]
impl Tally {
    /// The total went up.
    #[event]
    fn added(&mut self, by: u64) {
        self.total += by;
    }
}

#[tokio::test]
async fn snapshot_rows_at_impossible_versions_are_ignored_and_the_stream_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let store = SqliteEventStore::open(&path).await.unwrap();
    let repo = Repository::<Tally, _>::new(store.clone());
    let raw = Connection::open(&path).unwrap();
    // -1 is what `u64::MAX as i64` stored before snapshot versions were checked.
    for (n, version) in [-1_i64, i64::MAX, 3, 0].into_iter().enumerate() {
        let id = format!("t{n}");
        let ctx = CommandContext::new();
        for by in [1, 2] {
            repo.execute(&id, &ctx, |_| Ok(vec![TallyEvent::Added { by }]))
                .await
                .unwrap();
        }
        raw.execute(
            "INSERT INTO snapshots (stream_id, version, tag, state) VALUES (?1, ?2, ?3, ?4)",
            (
                format!("tally-{id}"),
                version,
                Tally::snapshot_tag(),
                r#"{"total":1000}"#,
            ),
        )
        .unwrap();
        let loaded = repo.load(&id).await.unwrap();
        assert_eq!(
            (loaded.state.total, loaded.version),
            (3, 2),
            "the snapshot row at version {version} was ignored"
        );
        let done = repo
            .execute(&id, &ctx, |_| Ok(vec![TallyEvent::Added { by: 4 }]))
            .await
            .unwrap_or_else(|e| panic!("execute over a snapshot row at {version}: {e}"));
        assert_eq!((done.state.total, done.version), (7, 3));
        let stored = store.load_snapshot(&loaded_stream(&id)).await;
        if version < 0 {
            assert!(
                stored.is_err(),
                "a negative stored version is an error, not a wrapped number"
            );
        }
    }
}

fn loaded_stream(id: &str) -> recount::StreamId {
    recount::StreamId::new("tally", id).unwrap()
}
