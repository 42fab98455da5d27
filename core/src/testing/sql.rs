//! The SQL read-model suite: one [`SqlReadModel`] on any [`SqlStore`], checked for what
//! [`crate::sql`] promises (rows and checkpoint commit together, values read back as written
//! on every engine, rebuild beside and drop). [`sql_tests!`](crate::sql_tests) stamps it out.

use crate::projection::{rebuild, CheckpointMove, Consumer, Runner, RunnerOptions};
use crate::sql::{
    execute_rows, placeholders, read, SqlEngine, SqlProjection, SqlReadModel, SqlStore, SqlTx,
    SqlValue,
};
use crate::{Cursor, Error, EventStore, ExpectedVersion, LogFilter, NewEvent, RecordedEvent};
use crate::{Result, StreamId};
use std::collections::BTreeMap;

/// Per stream: events seen and the sum of their versions, summed per batch and written with
/// one multi-row upsert. Refuses events of type `poison` (after writing the batch's rows, so
/// a refusal must roll them back).
struct Totals {
    table: String,
}

impl Totals {
    fn new(version: u32) -> Self {
        Totals {
            table: format!("suite_totals_v{version}"),
        }
    }
}

impl SqlReadModel for Totals {
    fn setup(&self, tx: &mut dyn SqlTx) -> Result<()> {
        tx.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {} (stream TEXT PRIMARY KEY, seen BIGINT NOT NULL, \
             versions BIGINT NOT NULL)",
            self.table
        ))
    }

    fn apply_batch(&self, tx: &mut dyn SqlTx, events: &[RecordedEvent]) -> Result<()> {
        let mut sums = BTreeMap::<&str, (i64, i64)>::new();
        for e in events {
            let s = sums.entry(e.stream.as_str()).or_default();
            s.0 += 1;
            s.1 += e.version as i64;
        }
        let rows: Vec<Vec<SqlValue<'_>>> = sums
            .iter()
            .map(|(stream, (n, v))| vec![(*stream).into(), (*n).into(), (*v).into()])
            .collect();
        let t = &self.table;
        execute_rows(tx, 3, &rows, |k| {
            format!(
                "INSERT INTO {t} (stream, seen, versions) VALUES {} ON CONFLICT (stream) DO UPDATE \
                 SET seen = {t}.seen + excluded.seen, versions = {t}.versions + excluded.versions",
                placeholders(k, 3)
            )
        })?;
        if events.iter().any(|e| e.event_type == "poison") {
            return Err(Error::invalid("event", "the suite's model refuses poison"));
        }
        Ok(())
    }

    fn drop_tables(&self, tx: &mut dyn SqlTx) -> Result<()> {
        tx.execute_batch(&format!("DROP TABLE IF EXISTS {}", self.table))
    }
}

async fn append(store: &impl EventStore, stream: &str, events: u64, event_type: &str) -> Cursor {
    let s = StreamId::new("suite", stream).unwrap();
    let batch = (0..events)
        .map(|_| NewEvent::new(event_type, &serde_json::json!({})).unwrap())
        .collect();
    store
        .append(&s, ExpectedVersion::Any, batch)
        .await
        .expect("append")
        .cursor
}

/// The model's rows (none when its table is not there: a refused first batch rolls back the
/// setup too).
async fn totals<S: SqlStore>(store: &S, table: &str) -> BTreeMap<String, (i64, i64)> {
    if !exists(store, table).await {
        return BTreeMap::new();
    }
    let sql = format!("SELECT stream, seen, versions FROM {table} ORDER BY stream");
    let rows = crate::sql::query(store, sql, Vec::new())
        .await
        .expect("the totals read back");
    rows.iter()
        .map(|r| {
            (
                r.get::<String>(0).unwrap(),
                (r.get::<i64>(1).unwrap(), r.get::<i64>(2).unwrap()),
            )
        })
        .collect()
}

fn projection<S: SqlStore + Clone>(store: &S, version: u32) -> SqlProjection<S, Totals> {
    SqlProjection::new(store.clone(), "suite-totals", Totals::new(version)).with_version(version)
}

async fn exists<S: SqlStore>(store: &S, table: &str) -> bool {
    let table = table.to_owned();
    read(store, move |tx| tx.table_exists(&table))
        .await
        .expect("table_exists")
}

/// A runner feeds the model in batches; every stream's rows are exact and the checkpoint
/// sits at the last event.
pub async fn a_sql_read_model_and_its_checkpoint_commit_together<S: SqlStore + Clone>(store: S) {
    let mut last = Cursor::START;
    for round in 0..5 {
        for stream in ["a", "b", "c"] {
            last = append(&store, stream, 10 + round, "counted").await;
        }
    }
    let options = RunnerOptions {
        batch_size: 16,
        ..RunnerOptions::default()
    };
    let runner = Runner::with_options(store.clone(), projection(&store, 1), options);
    assert_eq!(runner.catch_up().await.unwrap(), 180);
    let n = 10 + 11 + 12 + 13 + 14;
    let versions = n * (n + 1) / 2;
    let expected: BTreeMap<String, (i64, i64)> = ["a", "b", "c"]
        .iter()
        .map(|s| (format!("suite-{s}"), (n, versions)))
        .collect();
    assert_eq!(totals(&store, "suite_totals_v1").await, expected);
    let name = crate::projection::checkpoint_name("suite-totals", 1, None);
    assert_eq!(store.load_checkpoint(&name).await.unwrap(), Some(last));
}

/// A batch the model refuses after writing rows leaves neither the rows nor a moved
/// checkpoint; a checkpoint moved by another runner refuses the commit before any row.
pub async fn a_refused_batch_or_a_moved_checkpoint_writes_nothing<S: SqlStore + Clone>(store: S) {
    append(&store, "a", 3, "counted").await;
    append(&store, "b", 1, "poison").await;
    let batch = store
        .read_all(Cursor::START, &LogFilter::all(), 100)
        .await
        .unwrap();
    let p = projection(&store, 1);
    let name = crate::projection::checkpoint_name("suite-totals", 1, None);
    let refused = p
        .commit(
            batch.events.clone(),
            CheckpointMove {
                name: name.clone(),
                expected: None,
                new: batch.events[3].cursor,
            },
        )
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("refuses poison"),
        "the model's own error comes back: {refused}"
    );
    assert_eq!(store.load_checkpoint(&name).await.unwrap(), None);
    let left = totals(&store, "suite_totals_v1").await;
    assert!(left.is_empty(), "a refused batch left rows: {left:?}");

    let counted = batch.events[..3].to_vec();
    store
        .save_checkpoint(&name, None, counted[0].cursor)
        .await
        .unwrap();
    let conflict = p
        .commit(
            counted.clone(),
            CheckpointMove {
                name: name.clone(),
                expected: None,
                new: counted[2].cursor,
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(conflict, Error::CheckpointConflict { .. }),
        "{conflict:?}"
    );
    assert!(totals(&store, "suite_totals_v1").await.is_empty());
    p.commit(
        counted.clone(),
        CheckpointMove {
            name: name.clone(),
            expected: Some(counted[0].cursor),
            new: counted[2].cursor,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        totals(&store, "suite_totals_v1").await,
        BTreeMap::from([("suite-a".to_owned(), (3, 6))])
    );
}

/// Integers, reals, text, bytes and `NULL` read back as written; placeholders bind by number
/// whatever their order; a statement's error names the engine's reason and writes nothing.
pub async fn values_of_every_type_read_back_as_written<S: SqlStore + Clone>(store: S) {
    let engine = store.sql_engine();
    // The one statement that differs: the bytes column's type.
    let blob = match engine {
        SqlEngine::Postgres => "BYTEA",
        _ => "BLOB",
    };
    let create = format!(
        "CREATE TABLE IF NOT EXISTS suite_values (k BIGINT PRIMARY KEY, r DOUBLE PRECISION, \
         t TEXT, n BIGINT, b {blob})"
    );
    store
        .commit_sql(
            CheckpointMove {
                name: "suite-values".into(),
                expected: None,
                new: Cursor::from_position(1),
            },
            Box::new(move |tx| {
                tx.execute_batch(&create)?;
                let changed = tx.execute(
                    "INSERT INTO suite_values (t, k, r, n, b) VALUES ($3, $1, $2, $4, $5)",
                    &[
                        SqlValue::Integer(-7),
                        SqlValue::Real(2.5),
                        SqlValue::from("it's $1 — ünïcode"),
                        SqlValue::Null,
                        SqlValue::from(&[0u8, 255, 1][..]),
                    ],
                )?;
                assert_eq!(changed, 1);
                let again = tx.execute(
                    "INSERT INTO suite_values (k, n) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    &[SqlValue::Integer(-7), SqlValue::Integer(1)],
                )?;
                assert_eq!(again, 0, "ON CONFLICT DO NOTHING changed a row");
                Ok(())
            }),
        )
        .await
        .unwrap();
    let rows = read(&store, |tx| {
        tx.query(
            "SELECT k, r, t, n, b FROM suite_values WHERE k = $1",
            &[SqlValue::Integer(-7)],
        )
    })
    .await
    .unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.get::<i64>(0).unwrap(), -7);
    assert_eq!(row.get::<f64>(1).unwrap(), 2.5);
    assert_eq!(row.get::<String>(2).unwrap(), "it's $1 — ünïcode");
    assert_eq!(row.get::<Option<i64>>(3).unwrap(), None);
    assert_eq!(row.get::<Vec<u8>>(4).unwrap(), vec![0, 255, 1]);
    assert!(row.get::<i64>(2).is_err(), "text read as an integer");

    assert!(exists(&store, "suite_values").await);
    assert!(!exists(&store, "suite_no_such_table").await);

    // A sum of integers: BIGINT on SQLite, NUMERIC on PostgreSQL, which is refused with the
    // cast to write; cast, it reads on both.
    let sum = read(&store, |tx| {
        tx.query("SELECT SUM(k) FROM suite_values", &[])
    })
    .await;
    match engine {
        SqlEngine::Postgres => {
            let e = sum.unwrap_err().to_string();
            assert!(e.contains("NUMERIC") && e.contains("cast"), "{e}");
        }
        _ => assert_eq!(sum.unwrap()[0].get::<i64>(0).unwrap(), -7),
    }
    let cast = read(&store, |tx| {
        tx.query_row("SELECT CAST(SUM(k) AS BIGINT) FROM suite_values", &[])
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(cast.get::<i64>(0).unwrap(), -7);

    // A bad statement: the engine's message, and the transaction's checkpoint move with it
    // is not kept.
    let bad = store
        .commit_sql(
            CheckpointMove {
                name: "suite-values".into(),
                expected: Some(Cursor::from_position(1)),
                new: Cursor::from_position(2),
            },
            Box::new(|tx| {
                tx.execute("INSERT INTO suite_values (k) VALUES ($1)", &[5i64.into()])?;
                tx.execute("INSERT INTO suite_values (no_such_column) VALUES (1)", &[])
                    .map(drop)
            }),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(bad.contains("no_such_column"), "{bad}");
    assert_eq!(
        store.load_checkpoint("suite-values").await.unwrap(),
        Some(Cursor::from_position(1))
    );
    let kept = read(&store, |tx| {
        tx.query("SELECT k FROM suite_values WHERE k = 5", &[])
    })
    .await
    .unwrap();
    assert!(
        kept.is_empty(),
        "the failed transaction's first row was kept"
    );
}

/// `rebuild` builds version 2 beside version 1 from the log, equal to it, and drops
/// version 1's table.
pub async fn a_rebuild_builds_beside_and_drops_the_old_version<S: SqlStore + Clone>(store: S) {
    for stream in ["a", "b"] {
        append(&store, stream, 40, "counted").await;
    }
    let v1 = projection(&store, 1);
    Runner::new(store.clone(), v1.clone())
        .catch_up()
        .await
        .unwrap();
    let before = totals(&store, "suite_totals_v1").await;
    assert_eq!(before.len(), 2);
    let n = rebuild(&store, projection(&store, 2), Some(&v1), 7, |_| {})
        .await
        .unwrap();
    assert_eq!(n, 80);
    assert_eq!(totals(&store, "suite_totals_v2").await, before);
    assert!(
        !exists(&store, "suite_totals_v1").await,
        "v1 was not dropped"
    );
}

/// Stamps out the SQL read-model suite ([`sql`](crate::testing::sql)) as `#[test]`
/// functions for a factory of [`SqlStore`] fixtures, like
/// [`conformance_tests!`](crate::conformance_tests).
#[macro_export]
macro_rules! sql_tests {
    ($factory:expr) => {
        $crate::sql_tests!(@each $factory;
            a_sql_read_model_and_its_checkpoint_commit_together,
            a_refused_batch_or_a_moved_checkpoint_writes_nothing,
            values_of_every_type_read_back_as_written,
            a_rebuild_builds_beside_and_drops_the_old_version,
        );
    };
    (@each $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::testing::run_conformance($factory, $crate::testing::sql::$name);
            }
        )*
    };
}
