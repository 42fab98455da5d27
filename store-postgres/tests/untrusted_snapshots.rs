//! Snapshot rows are not trusted (store contract, item 9: a snapshot is a cache): a row
//! damaged by hand, at a negative version or beyond its stream, never overflows or misleads
//! the repository; the aggregate is replayed and commands keep working.

mod common;

use recount::{aggregate, Aggregate, CommandContext, EventStore, Repository, StreamId};

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

#[test]
fn snapshot_rows_at_impossible_versions_are_ignored_and_the_stream_replayed() {
    common::run(
        "snapshot_rows_at_impossible_versions_are_ignored_and_the_stream_replayed",
        |db| async move {
            let repo = Repository::<Tally, _>::new(db.store.clone());
            let mut conn = db.connection().await;
            for (n, version) in [-1_i64, i64::MAX, 3, 0].into_iter().enumerate() {
                let id = format!("t{n}");
                let ctx = CommandContext::new();
                for by in [1, 2] {
                    repo.execute(&id, &ctx, |_| Ok(vec![TallyEvent::Added { by }]))
                        .await
                        .unwrap();
                }
                sqlx::query(
                    "INSERT INTO recount.snapshots (stream_id, version, tag, state) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(format!("tally-{id}"))
                .bind(version)
                .bind(Tally::snapshot_tag())
                .bind(r#"{"total":1000}"#)
                .execute(&mut conn)
                .await
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
                if version < 0 {
                    let stream = StreamId::new("tally", &id).unwrap();
                    assert!(
                        db.store.load_snapshot(&stream).await.is_err(),
                        "a negative stored version is an error, not a wrapped number"
                    );
                }
            }
        },
    );
}
