//! SQL read models on SQLite: rows and checkpoint commit together; rebuild beside the live one.

use recount::projection::{
    active_version, rebuild, CheckpointMove, Consumer, Runner, RunnerOptions,
};
use recount::{
    Cursor, Error, EventStore, ExpectedVersion, LogFilter, NewEvent, RecordedEvent, StreamId,
};
use recount_sqlite::rusqlite::{OptionalExtension, Transaction};
use recount_sqlite::{SqliteEventStore, SqliteProjection, SqliteReadModel};
use std::collections::BTreeMap;

/// Per-stream totals in table `totals_v{version}`; refuses payloads with `"poison": true`.
struct Totals {
    version: u32,
}

impl Totals {
    fn table(&self) -> String {
        format!("totals_v{}", self.version)
    }
}

impl SqliteReadModel for Totals {
    fn setup(&self, tx: &Transaction<'_>) -> recount::Result<()> {
        let sql = format!("CREATE TABLE IF NOT EXISTS {} (stream TEXT PRIMARY KEY, total INTEGER NOT NULL, events INTEGER NOT NULL)", self.table());
        tx.execute_batch(&sql).map_err(Error::store)
    }

    fn apply(&self, tx: &Transaction<'_>, e: &RecordedEvent) -> recount::Result<()> {
        let v: serde_json::Value = e.payload_as()?;
        if v["poison"] == serde_json::json!(true) {
            return Err(Error::invalid("event", "the read model refuses poison"));
        }
        let n = v["n"].as_i64().unwrap_or(0) * i64::from(self.version);
        let sql = format!(
            "INSERT INTO {} (stream, total, events) VALUES (?1, ?2, 1) ON CONFLICT (stream) DO UPDATE SET total = total + ?2, events = events + 1",
            self.table()
        );
        tx.prepare_cached(&sql)
            .and_then(|mut s| s.execute((e.stream.as_str(), n)))
            .map_err(Error::store)?;
        Ok(())
    }

    fn drop_tables(&self, tx: &Transaction<'_>) -> recount::Result<()> {
        tx.execute_batch(&format!("DROP TABLE IF EXISTS {}", self.table()))
            .map_err(Error::store)
    }
}

fn read_totals(path: &std::path::Path, table: &str) -> Option<BTreeMap<String, (i64, i64)>> {
    let conn = recount_sqlite::rusqlite::Connection::open(path).unwrap();
    let exists: Option<String> = conn
        .query_row(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [table],
            |r| r.get(0),
        )
        .optional()
        .unwrap();
    exists?;
    let mut stmt = conn
        .prepare(&format!("SELECT stream, total, events FROM {table}"))
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, (r.get(1)?, r.get(2)?))))
        .unwrap();
    Some(rows.map(Result::unwrap).collect())
}

/// What the model holds after a straight replay of the whole log.
async fn straight_replay(store: &SqliteEventStore, factor: i64) -> BTreeMap<String, (i64, i64)> {
    let mut out = BTreeMap::new();
    let events = store
        .read_all(Cursor::START, &LogFilter::all(), usize::MAX)
        .await
        .unwrap()
        .events;
    for e in events {
        let v: serde_json::Value = e.payload_as().unwrap();
        let entry = out.entry(e.stream.to_string()).or_insert((0, 0));
        entry.0 += v["n"].as_i64().unwrap() * factor;
        entry.1 += 1;
    }
    out
}

async fn write(store: &SqliteEventStore, streams: u64, rounds: u64) {
    for r in 0..rounds {
        for s in 0..streams {
            let sid = StreamId::new("acct", &s.to_string()).unwrap();
            let e = NewEvent::new("acct.added", &serde_json::json!({ "n": r + s })).unwrap();
            store
                .append(&sid, ExpectedVersion::Any, vec![e])
                .await
                .unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sql_projection_failing_half_way_keeps_neither_rows_nor_checkpoint_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let store = SqliteEventStore::open(&path).await.unwrap();
    write(&store, 4, 10).await;
    let projection = SqliteProjection::new(store.clone(), "totals", Totals { version: 1 });
    let options = RunnerOptions {
        batch_size: 25,
        ..Default::default()
    };
    let runner = Runner::with_options(store.clone(), projection.clone(), options.clone());
    assert_eq!(runner.catch_up().await.unwrap(), 40);
    // A batch whose middle event the model refuses.
    write(&store, 4, 2).await;
    let poison =
        NewEvent::new("acct.added", &serde_json::json!({ "n": 1, "poison": true })).unwrap();
    let poison_id = poison.id;
    let poisoned = StreamId::new("acct", "0").unwrap();
    store
        .append(&poisoned, ExpectedVersion::Any, vec![poison])
        .await
        .unwrap();
    write(&store, 4, 2).await;
    let rows = read_totals(&path, "totals_v1").unwrap();
    let checkpoint = store
        .load_checkpoint(runner.checkpoint_name())
        .await
        .unwrap();
    // One commit of the batch holding the poison event keeps nothing, checkpoint included.
    let batch = store
        .read_all(checkpoint.unwrap_or(Cursor::START), &LogFilter::all(), 25)
        .await
        .unwrap();
    let failed = projection
        .commit(
            batch.events,
            CheckpointMove {
                name: runner.checkpoint_name().to_owned(),
                expected: checkpoint,
                new: batch.last_seen,
            },
        )
        .await;
    assert!(
        matches!(failed, Err(Error::InvalidInput { .. })),
        "{failed:?}"
    );
    assert_eq!(
        read_totals(&path, "totals_v1").unwrap(),
        rows,
        "no row of the failed batch was kept"
    );
    assert_eq!(
        store
            .load_checkpoint(runner.checkpoint_name())
            .await
            .unwrap(),
        checkpoint,
        "checkpoint unchanged"
    );
    // The runner finds the failing event and stops there (a projection's default policy),
    // with the 8 events before it committed.
    let err = runner.catch_up().await.unwrap_err();
    assert!(
        matches!(err, Error::ConsumerStopped { event_id: Some(id), .. } if id == poison_id),
        "{err:?}"
    );
    // A fixed model (the next build) resumes from the checkpoint on restart.
    struct Fixed(Totals);
    impl SqliteReadModel for Fixed {
        fn setup(&self, tx: &Transaction<'_>) -> recount::Result<()> {
            self.0.setup(tx)
        }
        fn apply(&self, tx: &Transaction<'_>, e: &RecordedEvent) -> recount::Result<()> {
            let mut e = e.clone();
            e.payload = e.payload.replace(r#","poison":true"#, "");
            self.0.apply(tx, &e)
        }
        fn drop_tables(&self, tx: &Transaction<'_>) -> recount::Result<()> {
            self.0.drop_tables(tx)
        }
    }
    let fixed = SqliteProjection::new(store.clone(), "totals", Fixed(Totals { version: 1 }));
    let restarted = Runner::with_options(store.clone(), fixed, options);
    assert_eq!(restarted.catch_up().await.unwrap(), 9);
    assert_eq!(
        read_totals(&path, "totals_v1").unwrap(),
        straight_replay(&store, 1).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sql_rebuild_builds_v2_beside_v1_while_appends_continue_then_switches() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let store = SqliteEventStore::open(&path).await.unwrap();
    write(&store, 10, 100).await;
    let v1 = SqliteProjection::new(store.clone(), "totals", Totals { version: 1 });
    Runner::new(store.clone(), v1.clone())
        .catch_up()
        .await
        .unwrap();
    assert_eq!(
        read_totals(&path, "totals_v1").unwrap(),
        straight_replay(&store, 1).await
    );
    let started = std::sync::Arc::new(tokio::sync::Notify::new());
    let writer = tokio::spawn({
        let (store, started) = (store.clone(), started.clone());
        async move {
            started.notified().await;
            write(&store, 10, 5).await
        }
    });
    let v2 = SqliteProjection::new(store.clone(), "totals", Totals { version: 2 }).with_version(2);
    let mut last = None;
    let done = rebuild(&store, v2.clone(), Some(&v1), 20, |p| {
        started.notify_one();
        last = Some(p);
    })
    .await
    .unwrap();
    writer.await.unwrap();
    assert!(
        done > 1000,
        "events appended during the rebuild were included: {done}"
    );
    assert_eq!(last.unwrap().remaining, 0);
    assert_eq!(active_version(&store, "totals").await.unwrap(), Some(2));
    assert!(
        read_totals(&path, "totals_v1").is_none(),
        "v1's table was dropped"
    );
    Runner::new(store.clone(), v2).catch_up().await.unwrap();
    assert_eq!(
        read_totals(&path, "totals_v2").unwrap(),
        straight_replay(&store, 2).await,
        "v2 has every event, with its own output"
    );
}
