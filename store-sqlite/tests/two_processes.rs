//! Two processes appending with `Exact` to one stream of one file: `BEGIN IMMEDIATE` and the
//! busy timeout serialize them, and the version check inside the transaction makes exactly
//! one of two racing appends win (store contract, item 2; issue item 5).

use recount::{Error, EventStore, ExpectedVersion, NewEvent, StreamId};
use recount_sqlite::SqliteEventStore;
use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};

const CHILD_ENV: &str = "RECOUNT_SQLITE_TWO_PROCESS_CHILD";
const CHILD_NAME_ENV: &str = "RECOUNT_SQLITE_TWO_PROCESS_NAME";
/// The version the two processes write the stream up to.
const TARGET: u64 = 300;

fn shared() -> StreamId {
    StreamId::new("shared", "1").unwrap()
}

/// The child: read the version, append one event expecting it, report `won <version>` or
/// `lost <expected> <actual>`; any other outcome fails the process.
async fn child(path: &str, name: &str) {
    let store = SqliteEventStore::open(path)
        .await
        .expect("child opens the store");
    let s = shared();
    let mut out = std::io::stdout().lock();
    // The test harness has printed `test <name> ... ` without a line break.
    writeln!(out).unwrap();
    loop {
        let v = store.stream_version(&s).await.unwrap();
        if v >= TARGET {
            return;
        }
        let e = NewEvent::new(
            "shared.wrote",
            &serde_json::json!({ "by": name, "expected": v }),
        )
        .unwrap();
        match store.append(&s, ExpectedVersion::Exact(v), vec![e]).await {
            Ok(r) => writeln!(out, "won {}", r.version).unwrap(),
            Err(Error::Conflict { actual, .. }) => {
                assert!(actual > v, "a loser sees a newer version");
                writeln!(out, "lost {v} {actual}").unwrap();
            }
            Err(e) => panic!("{name}: an append failed with something other than a conflict: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_exact_appends_write_each_version_once() {
    if let (Ok(path), Ok(name)) = (std::env::var(CHILD_ENV), std::env::var(CHILD_NAME_ENV)) {
        return child(&path, &name).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    // Create and migrate the file first, so the children race on appends, not on setup.
    drop(SqliteEventStore::open(&path).await.unwrap());
    let children: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|name| {
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "two_processes_exact_appends_write_each_version_once",
                    "--exact",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_ENV, &path)
                .env(CHILD_NAME_ENV, name)
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawn a writer process")
        })
        .collect();
    let mut won: HashMap<u64, usize> = HashMap::new();
    let mut losses = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a writer process failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        for line in String::from_utf8(out.stdout).unwrap().lines() {
            if let Some(v) = line.strip_prefix("won ") {
                *won.entry(v.parse().unwrap()).or_default() += 1;
            } else if line.starts_with("lost ") {
                losses += 1;
            }
        }
    }
    assert!(
        won.values().all(|n| *n == 1),
        "a version was won twice: {won:?}"
    );
    let mut versions: Vec<u64> = won.keys().copied().collect();
    versions.sort_unstable();
    assert_eq!(
        versions,
        (1..=TARGET).collect::<Vec<_>>(),
        "every version won exactly once"
    );
    assert!(losses > 0, "the two processes raced (some append lost)");

    let store = SqliteEventStore::open(&path).await.unwrap();
    let events = store.read_stream(&shared(), 1, usize::MAX).await.unwrap();
    assert_eq!(
        events.iter().map(|e| e.version).collect::<Vec<_>>(),
        (1..=TARGET).collect::<Vec<_>>()
    );
    for e in &events {
        let p: serde_json::Value = serde_json::from_str(&e.payload).unwrap();
        assert_eq!(
            p["expected"].as_u64().unwrap() + 1,
            e.version,
            "each event was appended at the version it expected"
        );
    }
}
