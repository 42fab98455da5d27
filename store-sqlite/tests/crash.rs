//! A writer killed with SIGKILL loses nothing it reported as committed and leaves no partial
//! batch (store contract, item 3; WAL with `synchronous = NORMAL` survives a process crash).

use recount::{Cursor, EventStore, ExpectedVersion, LogFilter, NewEvent, StreamId};
use recount_sqlite::SqliteEventStore;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

const CHILD_ENV: &str = "RECOUNT_SQLITE_CRASH_CHILD";
const BATCH: u64 = 10;
const WRITERS: usize = 4;
/// Batches the parent waits to see reported before it kills the child.
const KILL_AFTER: usize = 150;

fn batch(writer: usize, number: u64) -> Vec<NewEvent> {
    (0..BATCH)
        .map(|k| {
            NewEvent::new(
                "crash.wrote",
                &serde_json::json!({ "writer": writer, "batch": number, "k": k }),
            )
            .unwrap()
        })
        .collect()
}

/// The child: `WRITERS` tasks append batches of 10 to their own streams, forever, printing
/// `committed <stream> <version>` once each append has returned.
async fn child(path: &str) -> ! {
    let store = SqliteEventStore::open(path)
        .await
        .expect("child opens the store");
    // The test harness has printed `test <name> ... ` without a line break.
    println!();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let s = StreamId::new("crash", &w.to_string()).unwrap();
                for number in 0.. {
                    let r = store
                        .append(&s, ExpectedVersion::Exact(number * BATCH), batch(w, number))
                        .await
                        .unwrap();
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "committed {s} {}", r.version).unwrap();
                    out.flush().unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    unreachable!("the child appends until it is killed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_writer_keeps_every_reported_batch_whole() {
    if let Ok(path) = std::env::var(CHILD_ENV) {
        child(&path).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let mut proc = Command::new(std::env::current_exe().unwrap())
        .args([
            "killed_writer_keeps_every_reported_batch_whole",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the writer process");
    let mut lines = BufReader::new(proc.stdout.take().unwrap()).lines();
    let mut reported: HashMap<String, u64> = HashMap::new();
    let mut seen = 0;
    let record = |line: &str, reported: &mut HashMap<String, u64>| {
        if let Some(rest) = line.strip_prefix("committed ") {
            let (stream, version) = rest.split_once(' ').unwrap();
            let v = reported.entry(stream.to_owned()).or_default();
            *v = (*v).max(version.parse().unwrap());
            return true;
        }
        false
    };
    while seen < KILL_AFTER {
        let line = lines
            .next()
            .expect("the child reports before it is killed")
            .unwrap();
        seen += usize::from(record(&line, &mut reported));
    }
    proc.kill().expect("SIGKILL the writer");
    proc.wait().unwrap();
    // Lines already written before the kill were committed too.
    for line in lines.map_while(Result::ok) {
        record(&line, &mut reported);
    }

    let store = SqliteEventStore::open(&path)
        .await
        .expect("reopen after the crash");
    for (stream, version) in &reported {
        let s = StreamId::parse(stream).unwrap();
        let stored = store.stream_version(&s).await.unwrap();
        assert!(
            stored >= *version,
            "{stream}: reported version {version} committed, found {stored}"
        );
    }
    let mut per_batch: HashMap<(u64, u64), u64> = HashMap::new();
    let mut streams = HashSet::new();
    let mut after = Cursor::START;
    loop {
        let page = store
            .read_all(after, &LogFilter::all(), 1000)
            .await
            .unwrap();
        if page.events.is_empty() {
            break;
        }
        after = page.last_seen;
        for e in page.events {
            let p: serde_json::Value = serde_json::from_str(&e.payload).unwrap();
            *per_batch
                .entry((p["writer"].as_u64().unwrap(), p["batch"].as_u64().unwrap()))
                .or_default() += 1;
            streams.insert(e.stream);
        }
    }
    assert!(
        per_batch.len() >= KILL_AFTER,
        "every reported batch is in the log"
    );
    for (b, n) in &per_batch {
        assert_eq!(*n, BATCH, "batch {b:?} is partial: {n} events");
    }
    for s in streams {
        let v = store.stream_version(&s).await.unwrap();
        assert_eq!(v % BATCH, 0, "{s} ends inside a batch at version {v}");
        assert_eq!(
            store.read_stream(&s, 1, usize::MAX).await.unwrap().len() as u64,
            v
        );
    }
}
