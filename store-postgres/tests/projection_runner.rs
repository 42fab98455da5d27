//! SQL read models on PostgreSQL: rows and checkpoint commit together; rebuild beside the
//! live version; one active runner.

mod common;

use async_trait::async_trait;
use recount::projection::{
    active_version, rebuild, CheckpointMove, Consumer, Runner, RunnerOptions,
};
use recount::{
    Cursor, Error, EventStore, ExpectedVersion, LogFilter, NewEvent, RecordedEvent, StreamId,
};
use recount_postgres::{PgEventStore, PgProjection, PgReadModel};
use sqlx::PgConnection;
use std::collections::BTreeMap;

/// Per-stream totals in table `totals_v{version}`; refuses payloads with `"poison": true`.
struct Totals {
    version: u32,
    heal: bool,
}

#[async_trait]
impl PgReadModel for Totals {
    async fn setup(&self, conn: &mut PgConnection) -> recount::Result<()> {
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS totals_v{} (stream text PRIMARY KEY, total bigint NOT NULL, events bigint NOT NULL)",
            self.version
        );
        sqlx::query(&sql)
            .execute(conn)
            .await
            .map(drop)
            .map_err(Error::store)
    }

    async fn apply(&self, conn: &mut PgConnection, e: &RecordedEvent) -> recount::Result<()> {
        let v: serde_json::Value = e.payload_as()?;
        if v["poison"] == serde_json::json!(true) && !self.heal {
            return Err(Error::invalid("event", "the read model refuses poison"));
        }
        let n = v["n"].as_i64().unwrap_or(0) * i64::from(self.version);
        let sql = format!(
            "INSERT INTO totals_v{} (stream, total, events) VALUES ($1, $2, 1)
             ON CONFLICT (stream) DO UPDATE SET total = totals_v{0}.total + $2, events = totals_v{0}.events + 1",
            self.version
        );
        sqlx::query(&sql)
            .bind(e.stream.as_str())
            .bind(n)
            .execute(conn)
            .await
            .map(drop)
            .map_err(Error::store)
    }

    async fn drop_tables(&self, conn: &mut PgConnection) -> recount::Result<()> {
        let sql = format!("DROP TABLE IF EXISTS totals_v{}", self.version);
        sqlx::query(&sql)
            .execute(conn)
            .await
            .map(drop)
            .map_err(Error::store)
    }
}

async fn read_totals(db: &common::TestDb, version: u32) -> Option<BTreeMap<String, (i64, i64)>> {
    let mut conn = db.connection().await;
    let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
        .bind(format!("totals_v{version}"))
        .fetch_one(&mut conn)
        .await
        .unwrap();
    exists?;
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(&format!(
        "SELECT stream, total, events FROM totals_v{version}"
    ))
    .fetch_all(&mut conn)
    .await
    .unwrap();
    Some(rows.into_iter().map(|(s, t, n)| (s, (t, n))).collect())
}

async fn straight_replay(store: &PgEventStore, factor: i64) -> BTreeMap<String, (i64, i64)> {
    let mut out = BTreeMap::new();
    let mut after = Cursor::START;
    loop {
        let batch = store
            .read_all(after, &LogFilter::all(), 1000)
            .await
            .unwrap();
        if batch.events.is_empty() && batch.last_seen == after {
            return out;
        }
        for e in &batch.events {
            let v: serde_json::Value = e.payload_as().unwrap();
            let entry = out.entry(e.stream.to_string()).or_insert((0, 0));
            entry.0 += v["n"].as_i64().unwrap() * factor;
            entry.1 += 1;
        }
        after = batch.last_seen;
    }
}

async fn write(store: &PgEventStore, streams: u64, rounds: u64) {
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

#[test]
fn a_sql_projection_failing_half_way_keeps_neither_rows_nor_checkpoint_and_resumes() {
    common::run("a_sql_projection_failing_half_way", |db| async move {
        let store = db.store.clone();
        write(&store, 4, 10).await;
        let options = RunnerOptions {
            batch_size: 25,
            ..Default::default()
        };
        let projection = PgProjection::new(
            store.clone(),
            "totals",
            Totals {
                version: 1,
                heal: false,
            },
        );
        let runner = Runner::with_options(store.clone(), projection, options.clone());
        let projection = runner.consumer();
        assert_eq!(runner.catch_up().await.unwrap(), 40);
        write(&store, 4, 2).await;
        let poison =
            NewEvent::new("acct.added", &serde_json::json!({ "n": 1, "poison": true })).unwrap();
        let poison_id = poison.id;
        store
            .append(
                &StreamId::new("acct", "0").unwrap(),
                ExpectedVersion::Any,
                vec![poison],
            )
            .await
            .unwrap();
        write(&store, 4, 2).await;
        let rows = read_totals(&db, 1).await.unwrap();
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
            read_totals(&db, 1).await.unwrap(),
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
        let fixed = PgProjection::new(
            store.clone(),
            "totals",
            Totals {
                version: 1,
                heal: true,
            },
        );
        let restarted = Runner::with_options(store.clone(), fixed, options);
        assert_eq!(restarted.catch_up().await.unwrap(), 9);
        assert_eq!(
            read_totals(&db, 1).await.unwrap(),
            straight_replay(&store, 1).await
        );
    });
}

#[test]
fn a_sql_rebuild_builds_v2_beside_v1_while_appends_continue_then_switches() {
    common::run("a_sql_rebuild_builds_v2_beside_v1", |db| async move {
        let store = db.store.clone();
        write(&store, 10, 30).await;
        let v1 = PgProjection::new(
            store.clone(),
            "totals",
            Totals {
                version: 1,
                heal: false,
            },
        );
        Runner::new(store.clone(), v1.clone())
            .catch_up()
            .await
            .unwrap();
        assert_eq!(
            read_totals(&db, 1).await.unwrap(),
            straight_replay(&store, 1).await
        );
        let started = std::sync::Arc::new(tokio::sync::Notify::new());
        let writer = tokio::spawn({
            let (store, started) = (store.clone(), started.clone());
            async move {
                started.notified().await;
                write(&store, 10, 3).await
            }
        });
        let v2 = PgProjection::new(
            store.clone(),
            "totals",
            Totals {
                version: 2,
                heal: false,
            },
        )
        .with_version(2);
        let mut last = None;
        let done = rebuild(&store, v2.clone(), Some(&v1), 10, |p| {
            started.notify_one();
            last = Some(p);
        })
        .await
        .unwrap();
        writer.await.unwrap();
        assert!(
            done > 300,
            "events appended during the rebuild were included: {done}"
        );
        assert_eq!(last.unwrap().remaining, 0);
        assert_eq!(active_version(&store, "totals").await.unwrap(), Some(2));
        assert!(
            read_totals(&db, 1).await.is_none(),
            "v1's table was dropped"
        );
        Runner::new(store.clone(), v2).catch_up().await.unwrap();
        assert_eq!(
            read_totals(&db, 2).await.unwrap(),
            straight_replay(&store, 2).await
        );
    });
}

/// Records which runner handled each event; a second insert of one event id fails.
struct Handled {
    runner: &'static str,
    slow: bool,
}

#[async_trait]
impl PgReadModel for Handled {
    async fn setup(&self, conn: &mut PgConnection) -> recount::Result<()> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS handled (event_id uuid PRIMARY KEY, runner text NOT NULL)",
        )
        .execute(conn)
        .await
        .map(drop)
        .map_err(Error::store)
    }

    async fn apply(&self, conn: &mut PgConnection, e: &RecordedEvent) -> recount::Result<()> {
        if self.slow {
            sqlx::query("SELECT pg_sleep(0.005)")
                .execute(&mut *conn)
                .await
                .map_err(Error::store)?;
        }
        sqlx::query("INSERT INTO handled (event_id, runner) VALUES ($1, $2)")
            .bind(e.id)
            .bind(self.runner)
            .execute(conn)
            .await
            .map(drop)
            .map_err(|err| Error::invalid("event", format!("event {} handled twice: {err}", e.id)))
    }

    async fn drop_tables(&self, conn: &mut PgConnection) -> recount::Result<()> {
        sqlx::query("DROP TABLE IF EXISTS handled")
            .execute(conn)
            .await
            .map(drop)
            .map_err(Error::store)
    }
}

async fn handled_by(db: &common::TestDb) -> BTreeMap<String, i64> {
    let mut conn = db.connection().await;
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT runner, count(*) FROM handled GROUP BY runner")
            .fetch_all(&mut conn)
            .await
            .unwrap_or_default();
    rows.into_iter().collect()
}

#[test]
fn of_two_runners_one_handles_events_and_the_other_takes_over_when_it_is_aborted_mid_batch() {
    common::run("of_two_runners_one_handles_events", |db| async move {
        use std::time::Duration;
        let store = db.store.clone();
        write(&store, 4, 25).await;
        let options = RunnerOptions {
            batch_size: 10,
            lease_ttl: Duration::from_millis(500),
            ..Default::default()
        };
        let runner = |name, slow| {
            let p = PgProjection::new(store.clone(), "handled", Handled { runner: name, slow });
            std::sync::Arc::new(Runner::with_options(store.clone(), p, options.clone()))
        };
        let (a, b) = (runner("a", true), runner("b", false));
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let until_stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let task_a = tokio::spawn({
            let (a, rx) = (a.clone(), stop_rx.clone());
            async move { a.run(until_stopped(rx)).await }
        });
        wait_until(|| a.status().batches >= 1).await;
        let task_b = tokio::spawn({
            let (b, rx) = (b.clone(), stop_rx.clone());
            async move { b.run(until_stopped(rx)).await }
        });
        wait_until(|| a.status().batches >= 4).await;
        assert_eq!(
            b.status().events,
            0,
            "while A holds the lease, B handles nothing"
        );
        assert_eq!(handled_by(&db).await.get("b"), None);
        // Each of A's batches takes ~50 ms inside its transaction: abort it in the middle.
        let batches = a.status().batches;
        wait_until(|| a.status().batches != batches).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        task_a.abort();
        let _ = task_a.await;
        let a_events = a.status().events;
        assert!(a_events < 100, "A was stopped before the end: {a_events}");
        write(&store, 4, 5).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while handled_by(&db).await.values().sum::<i64>() < 120
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop_tx.send(true).unwrap();
        task_b.await.unwrap().unwrap();
        let by = handled_by(&db).await;
        assert_eq!(
            by.values().sum::<i64>(),
            120,
            "nothing skipped, nothing twice: {by:?}"
        );
        assert_eq!(
            by.get("a").copied().unwrap_or(0),
            a_events as i64,
            "A's aborted batch left nothing"
        );
        assert_eq!(
            by.get("b").copied().unwrap_or(0),
            b.status().events as i64,
            "B took over the rest"
        );
        assert!(b.status().events > 0);
    });
}

/// Polls `done` until it holds; fails the test after 30 s rather than hang it.
async fn wait_until(mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for the runners"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}
