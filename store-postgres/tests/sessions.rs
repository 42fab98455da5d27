//! The store's sessions: JIT off, so a generic plan of a read on a large log is never
//! compiled (issue 24, item 3), and reads stay right under forced generic plans.

mod common;

use recount::{Cursor, EventStore, ExpectedVersion, LogFilter, NewEvent, StreamId};
use recount_postgres::{PgEventStore, PgOptions};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection};

/// Settings that make a JIT-capable session compile every plan, and every prepared
/// statement use its generic plan from the first run.
const EAGER: [(&str, &str); 4] = [
    ("plan_cache_mode", "force_generic_plan"),
    ("jit_above_cost", "0"),
    ("jit_inline_above_cost", "0"),
    ("jit_optimize_above_cost", "0"),
];

/// `DATABASE_URL` with its database replaced by `name`.
fn url_of(name: &str) -> String {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL is set");
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let host = rest.split(['/', '?']).next().unwrap_or(rest);
    let query = rest
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    format!("{scheme}://{host}/{name}{query}")
}

async fn show(conn: &mut PgConnection, setting: &str) -> String {
    sqlx::query_scalar(&format!("SHOW {setting}"))
        .fetch_one(conn)
        .await
        .unwrap()
}

/// Whether the plan of a read of the log on `conn` was JIT-compiled.
async fn jit_compiled(conn: &mut PgConnection) -> bool {
    let plan: Vec<String> = sqlx::query_scalar(
        "EXPLAIN ANALYZE SELECT count(*) FROM recount.events WHERE stream_version > 0",
    )
    .fetch_all(conn)
    .await
    .unwrap();
    plan.iter()
        .any(|line| line.trim_start().starts_with("JIT:"))
}

#[test]
fn store_connections_run_without_jit() {
    common::run("store_connections_run_without_jit", |db| async move {
        let store = PgEventStore::connect_with(&url_of(&db.name), PgOptions::default())
            .await
            .unwrap();
        let mut conn = store.pool().acquire().await.unwrap();
        assert_eq!(show(&mut conn, "jit").await, "off");
        drop(conn);
        store.pool().close().await;
        // A pool built with the store's session options (as the tests' own stores are).
        let mut conn = db.store.pool().acquire().await.unwrap();
        assert_eq!(show(&mut conn, "jit").await, "off");
    });
}

#[test]
fn read_all_follows_the_whole_log_under_forced_generic_plans_without_jit() {
    common::run(
        "read_all_follows_the_whole_log_under_forced_generic_plans_without_jit",
        |db| async move {
            let eager: PgConnectOptions = db.options.clone().options(EAGER);
            let pool = PgPoolOptions::new()
                .max_connections(2)
                .connect_with(PgEventStore::session_options(eager.clone()))
                .await
                .unwrap();
            let store = PgEventStore::from_pool(pool, PgOptions::default()).unwrap();
            let mut written = Vec::new();
            for i in 0..60u64 {
                let s = StreamId::new("generic", &(i % 7).to_string()).unwrap();
                let e = NewEvent::new("generic.e", &serde_json::json!({ "i": i })).unwrap();
                written.push(e.id);
                store
                    .append(&s, ExpectedVersion::Any, vec![e])
                    .await
                    .unwrap();
            }
            // Pages of 4: the statement runs 15 times and more, with its generic plan.
            let (mut after, mut seen) = (Cursor::START, Vec::new());
            loop {
                let batch = store.read_all(after, &LogFilter::all(), 4).await.unwrap();
                let Some(last) = batch.events.last() else {
                    break;
                };
                after = last.cursor;
                seen.extend(batch.events.iter().map(|e| e.id));
            }
            assert_eq!(seen, written, "every event once, in log order");
            let filter = LogFilter::all().category("generic");
            let filtered = store.read_all(Cursor::START, &filter, 100).await.unwrap();
            assert_eq!(filtered.events.len(), 60);

            let mut conn = store.pool().acquire().await.unwrap();
            assert_eq!(
                show(&mut conn, "plan_cache_mode").await,
                "force_generic_plan"
            );
            assert_eq!(show(&mut conn, "jit").await, "off");
            assert!(
                !jit_compiled(&mut conn).await,
                "the store's session never JIT-compiles"
            );
            // The same settings without the store's session options do compile (where the
            // server can): the test above would catch JIT coming back.
            let mut plain = PgConnection::connect_with(&eager).await.unwrap();
            let available: bool = sqlx::query_scalar("SELECT pg_jit_available()")
                .fetch_one(&mut plain)
                .await
                .unwrap();
            assert_eq!(jit_compiled(&mut plain).await, available);
            let _ = plain.close().await;
        },
    );
}
