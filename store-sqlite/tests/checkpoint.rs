//! The WAL checkpoint never stalls appends and keeps the WAL bounded (issue 24, item 1).
//!
//! No test here measures time: a checkpoint that waited for a reader with the store's busy
//! timeout (set to an hour below) would hold the write lock that long, and the appends would
//! never finish; the only clocks are guards that turn such a hang into a failure.

use recount::{Cursor, EventStore, ExpectedVersion, LogFilter, NewEvent, StreamId};
use recount_sqlite::rusqlite::Connection;
use recount_sqlite::{SqliteEventStore, SqliteOptions};
use std::path::Path;
use std::time::Duration;

/// How long a test may run before a hang counts as a failure.
const HANG: Duration = Duration::from_secs(120);

fn event(n: u64) -> NewEvent {
    let pad = "x".repeat(200);
    NewEvent::new("wal.e", &serde_json::json!({ "n": n, "pad": pad })).unwrap()
}

fn wal_len(path: &Path) -> u64 {
    std::fs::metadata(path.with_extension("db-wal"))
        .map(|m| m.len())
        .unwrap_or(0)
}

/// A store whose checkpoint must empty the WAL past 256 KiB, and whose busy timeout is long
/// enough that anything waiting on it looks like a hang.
async fn open(path: &Path) -> SqliteEventStore {
    let opts = SqliteOptions {
        wal_limit_bytes: 256 << 10,
        busy_timeout: Duration::from_secs(3600),
        ..SqliteOptions::default()
    };
    SqliteEventStore::open_with(path, opts).await.unwrap()
}

async fn append_batches(store: &SqliteEventStore, writer: u64, batches: u64) {
    let s = StreamId::new("wal", &writer.to_string()).unwrap();
    for i in 0..batches {
        let batch = (0..20).map(|k| event(i * 20 + k)).collect();
        store.append(&s, ExpectedVersion::Any, batch).await.unwrap();
    }
}

/// Waits until the WAL file is back under `limit`: once nothing is committed, the checkpoint
/// thread truncates it.
async fn until_wal_under(path: &Path, limit: u64) {
    while wal_len(path) > limit {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn appends_never_wait_for_a_reader_that_pins_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let store = open(&path).await;
    append_batches(&store, 0, 5).await;
    // A reader in the middle of a long read transaction: no checkpoint can copy the WAL past
    // its snapshot or start the WAL over until it ends.
    let pin = Connection::open(&path).unwrap();
    pin.execute_batch("BEGIN").unwrap();
    let seen: i64 = pin
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(seen, 100);
    let writers = (0..4).map(|w| {
        let store = store.clone();
        tokio::spawn(async move { append_batches(&store, w + 1, 100).await })
    });
    tokio::time::timeout(HANG, futures_join(writers.collect()))
        .await
        .expect("appends completed while a reader pinned the WAL");
    let pinned = store.stats();
    assert!(
        wal_len(&path) > 4 * (256 << 10),
        "the WAL grew past the limit while pinned: {} bytes",
        wal_len(&path)
    );
    assert_eq!(pinned.wal_restarts, 0, "the pin held the WAL back");
    pin.execute_batch("COMMIT").unwrap();
    drop(pin);
    tokio::time::timeout(HANG, until_wal_under(&path, 256 << 10))
        .await
        .expect("the WAL was emptied once the reader ended");
    assert!(store.stats().wal_restarts > 0);
    let log = store
        .read_all(Cursor::START, &LogFilter::all(), 10_000)
        .await
        .unwrap();
    assert!(log.events.len() >= 8_100);
}

async fn futures_join(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_wal_is_emptied_again_and_again_under_sustained_appends_and_reads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let store = open(&path).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Followers that never pause for long, as live projections would.
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (store, stop) = (store.clone(), stop.clone());
            tokio::spawn(async move {
                let mut after = Cursor::START;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let batch = store.read_all(after, &LogFilter::all(), 200).await.unwrap();
                    after = batch.events.last().map_or(after, |e| e.cursor);
                }
            })
        })
        .collect();
    let writers = (0..4).map(|w| {
        let store = store.clone();
        tokio::spawn(async move { append_batches(&store, w, 250).await })
    });
    tokio::time::timeout(HANG, futures_join(writers.collect()))
        .await
        .expect("appends completed");
    let during = store.stats();
    assert!(
        during.wal_restarts > 0,
        "the WAL was started over while appends and reads went on: {during:?}"
    );
    // The followers keep reading while the WAL is brought back under the limit.
    tokio::time::timeout(HANG, until_wal_under(&path, 256 << 10))
        .await
        .expect("the WAL was brought back under the limit while followers read");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    futures_join(readers).await;
    let stats = store.stats();
    // 20,000 events of ~250 bytes went through a WAL started over past 256 KiB.
    assert!(stats.largest_wal_bytes > 256 << 10, "{stats:?}");
    assert!(stats.longest_commit_us > 0, "{stats:?}");
}
