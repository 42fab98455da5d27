//! Two worker processes (real child processes of this test binary) run the same three
//! consumers (a read model, a process manager, a side effect) on one SQLite file and on one
//! PostgreSQL database. At any time one process works for each consumer: the read model
//! records which process applied each event, and the holders never interleave. SIGKILL the
//! holder and the other takes over within two lease TTLs; the end state is a single
//! process's: every event once in the read model, one saga command per event, every effect
//! done.

use async_trait::async_trait;
use recount::projection::{
    CheckpointMove, Consumer, Effects, Process, ProcessManager, Runner, RunnerOptions, SideEffect,
    Steps, Supervised, Supervisor,
};
use recount::{
    BoxError, Cursor, Error, EventStore, ExpectedVersion, LogFilter, NewEvent, RecordedEvent,
    StreamId,
};
use recount_postgres::PgEventStore;
use recount_sqlite::SqliteEventStore;
use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

const CHILD_STORE: &str = "RECOUNT_TWO_WORKERS_STORE";
const CHILD_EFFECTS: &str = "RECOUNT_TWO_WORKERS_EFFECTS";
const LEASE_TTL: Duration = Duration::from_millis(1500);
const EVENTS: usize = 600;

type Store = Arc<dyn EventStore>;

/// A read model kept as the state beside its checkpoint (one compare-and-set per batch, so
/// durable and atomic on any store): for each event, which process applied it.
struct Applied {
    store: Store,
    me: u32,
}

#[async_trait]
impl Consumer for Applied {
    fn name(&self) -> &str {
        "applied"
    }
    fn filter(&self) -> LogFilter {
        LogFilter::all().category("work")
    }
    async fn position(&self, name: &str) -> recount::Result<Option<Cursor>> {
        self.store.load_checkpoint(name).await
    }
    async fn commit(&self, events: Vec<RecordedEvent>, to: CheckpointMove) -> recount::Result<()> {
        let stored = self.store.load_checkpoint_state(&to.name).await?;
        if stored.as_ref().map(|s| s.0) != to.expected {
            return Err(Error::CheckpointConflict {
                name: to.name,
                expected: to.expected,
                actual: stored.map(|s| s.0),
            });
        }
        let mut by: Vec<(Uuid, u32)> = match stored.and_then(|s| s.1) {
            Some(text) => serde_json::from_str(&text).map_err(Error::store)?,
            None => Vec::new(),
        };
        by.extend(events.iter().map(|e| (e.id, self.me)));
        let text = serde_json::to_string(&by).map_err(Error::store)?;
        self.store
            .save_checkpoint_state(&to.name, to.expected, to.new, Some(text))
            .await
    }
}

/// A saga: one command per event, an append whose id is the step's command id.
struct Echo {
    store: Store,
}

#[async_trait]
impl ProcessManager for Echo {
    type State = u64;
    fn name(&self) -> &str {
        "echo"
    }
    fn filter(&self) -> LogFilter {
        LogFilter::all().category("work")
    }
    async fn handle(
        &self,
        handled: &mut u64,
        event: &RecordedEvent,
        steps: &mut Steps,
    ) -> Result<(), BoxError> {
        let id = steps
            .next_step()
            .command_id
            .ok_or("a step has a command id")?;
        let e = NewEvent::new("echo.sent", &serde_json::json!({ "of": event.id }))?.with_id(id);
        let stream = StreamId::new("echo", event.stream.as_str())?;
        self.store
            .append(&stream, ExpectedVersion::Any, vec![e])
            .await?;
        *handled += 1;
        Ok(())
    }
}

/// A side effect: appends the event id to a file (one line, `O_APPEND`), the receiver.
struct Journal {
    path: String,
}

#[async_trait]
impl SideEffect for Journal {
    fn name(&self) -> &str {
        "journal"
    }
    fn filter(&self) -> LogFilter {
        LogFilter::all().category("work")
    }
    async fn handle(&self, event: &RecordedEvent) -> Result<(), BoxError> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        file.write_all(format!("{}\n", event.id).as_bytes())?;
        Ok(())
    }
}

async fn open(spec: &str) -> Store {
    match spec.split_once(':') {
        Some(("sqlite", path)) => Arc::new(SqliteEventStore::open(path).await.expect("open")),
        Some(("postgres", url)) => {
            let store = PgEventStore::connect(url).await.expect("connect");
            Arc::new(store)
        }
        _ => panic!("bad store spec {spec}"),
    }
}

/// The child: runs the three consumers until killed, printing its holder ids.
async fn child(spec: &str, effects: &str) {
    let store = open(spec).await;
    let options = RunnerOptions {
        lease_ttl: LEASE_TTL,
        batch_size: 20,
        ..RunnerOptions::default()
    };
    let me = std::process::id();
    let applied = Runner::with_options(
        store.clone(),
        Applied {
            store: store.clone(),
            me,
        },
        options.clone(),
    );
    let echo = Runner::with_options(
        store.clone(),
        Process::new(
            store.clone(),
            Echo {
                store: store.clone(),
            },
        ),
        options.clone(),
    );
    let journal = Runner::with_options(
        store.clone(),
        Effects::new(
            store.clone(),
            Journal {
                path: effects.to_owned(),
            },
        ),
        options,
    );
    let runners: Vec<Arc<dyn Supervised>> =
        vec![Arc::new(applied), Arc::new(echo), Arc::new(journal)];
    let supervisor = Supervisor::start(runners);
    let mut out = std::io::stdout().lock();
    writeln!(out).unwrap();
    for s in supervisor.statuses() {
        writeln!(out, "holder {} {}", s.checkpoint_name, s.holder).unwrap();
    }
    out.flush().unwrap();
    drop(out);
    // Run until killed (the parent SIGKILLs or kills every child at the end).
    std::future::pending::<()>().await;
}

fn spawn_child(spec: &str, effects: &str) -> (Child, BTreeMap<String, u64>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "worker_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
            "--ignored",
        ])
        .env(CHILD_STORE, spec)
        .env(CHILD_EFFECTS, effects)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn a worker process");
    let mut holders = BTreeMap::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while holders.len() < 3 {
        let line = lines
            .next()
            .expect("the worker reports its holders")
            .unwrap();
        if let Some(rest) = line.strip_prefix("holder ") {
            let (name, id) = rest.rsplit_once(' ').unwrap();
            holders.insert(name.to_owned(), id.parse().unwrap());
        }
    }
    (child, holders)
}

/// The entry point of a worker process (run only as a child of the test below).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a child process of two_workers_*"]
async fn worker_child() {
    let (Ok(spec), Ok(effects)) = (std::env::var(CHILD_STORE), std::env::var(CHILD_EFFECTS)) else {
        return;
    };
    child(&spec, &effects).await
}

async fn lease_holder(store: &Store, consumer: &str) -> Option<u64> {
    recount::projection::Lease::holder_of(store.as_ref(), consumer)
        .await
        .ok()
        .flatten()
}

async fn append_work(store: &Store, n: usize) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for i in 0..n {
        let e = NewEvent::new("work.done", &serde_json::json!({ "i": i })).unwrap();
        ids.push(e.id);
        let s = StreamId::new("work", &(i % 13).to_string()).unwrap();
        store
            .append(&s, ExpectedVersion::Any, vec![e])
            .await
            .unwrap();
    }
    ids
}

/// The scenario on one store: two workers, a SIGKILL of the holder, takeover, end state.
async fn two_workers(spec: &str, store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let effects = dir
        .path()
        .join("effects.log")
        .to_string_lossy()
        .into_owned();
    let consumers = ["projection:applied:v1", "process:echo", "effect:journal"];
    let (mut a, a_holders) = spawn_child(spec, &effects);
    let mut ids = append_work(&store, EVENTS / 3).await;
    // A takes every lease before B starts.
    let deadline = Instant::now() + Duration::from_secs(30);
    for c in consumers {
        while lease_holder(&store, c).await != Some(a_holders[c]) {
            assert!(Instant::now() < deadline, "A never took the lease of {c}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let (mut b, b_holders) = spawn_child(spec, &effects);
    ids.extend(append_work(&store, EVENTS / 3).await);
    for c in consumers {
        assert_eq!(
            lease_holder(&store, c).await,
            Some(a_holders[c]),
            "A still holds {c}"
        );
    }
    // SIGKILL A while it works; B takes every lease over within two TTLs.
    let killed_at = Instant::now();
    a.kill().expect("SIGKILL the holder");
    a.wait().unwrap();
    let mut takeover = Duration::ZERO;
    for c in consumers {
        while lease_holder(&store, c).await != Some(b_holders[c]) {
            assert!(
                killed_at.elapsed() < LEASE_TTL * 2 + Duration::from_millis(500),
                "B did not take {c} over within two lease TTLs"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        takeover = takeover.max(killed_at.elapsed());
    }
    eprintln!("{spec}: B took every lease over {takeover:?} after the SIGKILL (TTL {LEASE_TTL:?})");
    ids.extend(append_work(&store, EVENTS / 3).await);
    // Wait for the end state.
    let deadline = Instant::now() + Duration::from_secs(60);
    let applied = loop {
        let state = store
            .load_checkpoint_state("projection:applied:v1")
            .await
            .unwrap()
            .and_then(|s| s.1);
        let by: Vec<(Uuid, u32)> = state
            .map(|t| serde_json::from_str(&t).unwrap())
            .unwrap_or_default();
        let echoes = echoes(&store).await;
        let journal = std::fs::read_to_string(&effects).unwrap_or_default();
        let journaled: HashSet<&str> = journal.lines().collect();
        if by.len() >= ids.len() && echoes.len() >= ids.len() && journaled.len() >= ids.len() {
            break by;
        }
        assert!(
            Instant::now() < deadline,
            "the workers did not finish: {} of {}",
            by.len(),
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    b.kill().unwrap();
    b.wait().unwrap();
    // Exactly once in the read model, in log order, the holder switching once (A, then B).
    assert_eq!(
        applied.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        ids,
        "every event once, in order"
    );
    let switches = applied.windows(2).filter(|w| w[0].1 != w[1].1).count();
    assert!(
        switches <= 1,
        "the processes never interleaved: {switches} switches"
    );
    assert_eq!(applied.last().unwrap().1, b.id(), "B finished the work");
    let echoes = echoes(&store).await;
    assert!(
        ids.iter().all(|id| echoes.get(id) == Some(&1)),
        "one saga command per event"
    );
    assert_eq!(echoes.len(), ids.len());
    let journal = std::fs::read_to_string(&effects).unwrap();
    let journaled: HashSet<Uuid> = journal.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(
        journaled,
        ids.iter().copied().collect(),
        "every effect done"
    );
}

async fn echoes(store: &Store) -> BTreeMap<Uuid, u32> {
    let mut out = BTreeMap::new();
    let mut after = Cursor::START;
    loop {
        let batch = store
            .read_all(after, &LogFilter::all().category("echo"), 1000)
            .await
            .unwrap();
        if batch.events.is_empty() && batch.last_seen == after {
            return out;
        }
        for e in &batch.events {
            let p: serde_json::Value = e.payload_as().unwrap();
            *out.entry(p["of"].as_str().unwrap().parse().unwrap())
                .or_default() += 1;
        }
        after = batch.last_seen;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_on_one_sqlite_file_one_holds_each_lease_and_the_other_takes_over() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let store: Store = Arc::new(SqliteEventStore::open(&path).await.unwrap());
    two_workers(&format!("sqlite:{}", path.display()), store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_on_one_postgres_database_one_holds_each_lease_and_the_other_takes_over() {
    let Some(url) = recount_tests::fixtures::postgres_url_or_skip("two_workers on postgres") else {
        return;
    };
    let db = recount_tests::fixtures::TempDatabase::create(&url).await;
    let store: Store = Arc::new(db.store().await);
    two_workers(&format!("postgres:{}", db.url()), store).await;
    db.drop_database().await;
}
