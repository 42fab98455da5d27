//! The scenarios every broker runs.

use super::*;
use async_trait::async_trait;
use recount::projection::{Runner, RunnerOptions};
use recount::Cursor;
use recount_relay::inbox::SqliteInbox;
use recount_relay::Relay;
use recount_sqlite::SqliteEventStore;
use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

pub const CHILD_ENV: &str = "RECOUNT_RELAY_TEST_CHILD";
pub const CHILD_BROKER_ENV: &str = "RECOUNT_RELAY_TEST_BROKER";
pub const RELAY: &str = "notes-out";

type Expected = Vec<(String, Uuid)>;

fn per_topic(events: impl IntoIterator<Item = (String, Uuid)>) -> BTreeMap<String, Vec<Uuid>> {
    let mut m: BTreeMap<String, Vec<Uuid>> = BTreeMap::new();
    for (topic, id) in events {
        m.entry(topic).or_default().push(id);
    }
    m
}

/// Exactly once: the broker holds every expected event once, in log order per topic, and
/// nothing else. At least once: after dropping repeats, the same.
pub fn check_published(broker: &dyn Broker, expected: &Expected, got: &[IntegrationEvent]) {
    let known: HashSet<Uuid> = expected.iter().map(|(_, id)| *id).collect();
    for e in got {
        assert!(
            known.contains(&e.id),
            "{}: the broker holds {} `{}`, which was never mapped",
            broker.name(),
            e.id,
            e.name
        );
    }
    let mut seen = HashSet::new();
    let firsts: Vec<(String, Uuid)> = got
        .iter()
        .filter(|e| seen.insert(e.id))
        .map(|e| (e.topic().to_owned(), e.id))
        .collect();
    if broker.exactly_once() {
        assert_eq!(
            firsts.len(),
            got.len(),
            "{}: {} events published twice",
            broker.name(),
            got.len() - firsts.len()
        );
    }
    let (want, have) = (per_topic(expected.clone()), per_topic(firsts));
    for (topic, ids) in &want {
        let got_ids = have.get(topic).cloned().unwrap_or_default();
        let missing = ids.iter().filter(|i| !got_ids.contains(i)).count();
        assert_eq!(
            missing,
            0,
            "{}: {missing} `{topic}` events missing",
            broker.name()
        );
        assert_eq!(
            &got_ids,
            ids,
            "{}: `{topic}` events out of log order",
            broker.name()
        );
    }
}

async fn store_at(dir: &std::path::Path) -> SqliteEventStore {
    SqliteEventStore::open(dir.join("events.db")).await.unwrap()
}

async fn append_many(store: &SqliteEventStore, from: u64, n: u64, expected: &mut Expected) {
    for i in from..from + n {
        if let Some(id) = append_one(store, i).await {
            let topic = if i % 5 == 0 { "user" } else { "note" };
            expected.push((topic.to_owned(), id));
        }
    }
}

/// A relay publishes the mapped events once, in log order, and nothing else; run again from
/// a lost checkpoint (a crash between the broker's ack and the checkpoint), it publishes
/// nothing twice (exactly-once sinks) or nothing missing (at-least-once sinks).
pub async fn relay_publishes_mapped_events_in_log_order(broker: &dyn Broker) {
    broker.prepare().await;
    let dir = tempfile::tempdir().unwrap();
    let store = store_at(dir.path()).await;
    let mut expected = Vec::new();
    append_many(&store, 0, 60, &mut expected).await;
    let relay = Relay::new(RELAY, store.clone(), mapping(), broker.sink(RELAY).await);
    let options = RunnerOptions {
        batch_size: 7,
        ..Default::default()
    };
    let runner = Runner::with_options(store.clone(), relay, options);
    assert!(runner.catch_up().await.unwrap() > 0);
    check_published(broker, &expected, &broker.published().await);

    let name = runner.checkpoint_name().to_owned();
    let at = store.load_checkpoint(&name).await.unwrap();
    store
        .save_checkpoint(&name, at, Cursor::START)
        .await
        .unwrap();
    append_many(&store, 60, 20, &mut expected).await;
    let again = Relay::new(RELAY, store.clone(), mapping(), broker.sink(RELAY).await);
    Runner::new(store.clone(), again).catch_up().await.unwrap();
    let got = broker.published().await;
    check_published(broker, &expected, &got);
    if !broker.exactly_once() {
        assert!(
            got.len() > expected.len(),
            "the replay after a lost checkpoint published again (at least once)"
        );
    }
    broker.cleanup().await;
}

/// The child process: runs the relay on the shared SQLite file until it is killed.
pub async fn relay_child(dir: &str, broker: &dyn Broker) {
    let store = store_at(std::path::Path::new(dir)).await;
    let relay = Relay::new(RELAY, store.clone(), mapping(), broker.sink(RELAY).await);
    let options = RunnerOptions {
        batch_size: 5,
        lease_ttl: Duration::from_millis(600),
        idle_wait: (Duration::from_millis(2), Duration::from_millis(20)),
        ..Default::default()
    };
    println!();
    println!("relay-ready");
    Runner::with_options(store, relay, options)
        .run(std::future::pending())
        .await
        .unwrap();
}

/// Re-runs `test` as a child process with `CHILD_ENV = role`, waits for its `ready` line and
/// hands back its later lines.
fn spawn_child(
    test: &str,
    role: &str,
    broker: &dyn Broker,
    ready: &str,
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, role)
        .env(CHILD_BROKER_ENV, broker.to_env())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the child process");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        if line.unwrap().contains(ready) {
            break;
        }
    }
    // Keep draining so the child never blocks on a full pipe.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

/// The relay as a real process, SIGKILLed at random moments at least 5 times while events
/// are appended, then restarted: the broker ends with every mapped event (exactly once, or at
/// least once with none missing), in log order per topic, and no unmapped event.
pub async fn relay_survives_sigkill(test: &str, broker: &dyn Broker) {
    broker.prepare().await;
    let dir = tempfile::tempdir().unwrap();
    let store = store_at(dir.path()).await;
    let appending = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut expected = Vec::new();
            for round in 0..60 {
                append_many(&store, round * 10, 10, &mut expected).await;
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            expected
        })
    };
    let mut kills_mid_work = 0;
    let mut kills = 0;
    while !appending.is_finished() || kills < 5 {
        let (mut child, _) = spawn_child(test, dir.path().to_str().unwrap(), broker, "relay-ready");
        let wait = rand::random::<u64>() % 400 + 100;
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let before = broker.published().await.len();
        child.kill().expect("SIGKILL the relay");
        child.wait().unwrap();
        kills += 1;
        let last = store
            .read_all(Cursor::START, &Default::default(), usize::MAX)
            .await
            .unwrap();
        let mapped = last
            .events
            .iter()
            .filter(|e| e.event_type != "note.drafted")
            .count();
        if before < mapped {
            kills_mid_work += 1;
        }
    }
    let expected = appending.await.unwrap();
    let (mut child, _) = spawn_child(test, dir.path().to_str().unwrap(), broker, "relay-ready");
    let caught_up = eventually(60, || async {
        let got = broker.published().await;
        let ids: HashSet<Uuid> = got.iter().map(|e| e.id).collect();
        ids.len() >= expected.len()
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    println!(
        "{}: {kills} kills, {kills_mid_work} with events still to publish, {} events mapped",
        broker.name(),
        expected.len()
    );
    assert!(caught_up, "the restarted relay published everything");
    assert!(kills >= 5, "the relay was killed {kills} times");
    assert!(
        kills_mid_work >= 1,
        "at least one kill hit the relay with events still to publish"
    );
    check_published(broker, &expected, &broker.published().await);
    broker.cleanup().await;
}

async fn published_events(
    broker: &dyn Broker,
    n: u64,
) -> (Vec<IntegrationEvent>, tempfile::TempDir) {
    broker.prepare().await;
    let dir = tempfile::tempdir().unwrap();
    let store = store_at(dir.path()).await;
    let mut expected = Vec::new();
    append_many(&store, 0, n, &mut expected).await;
    let relay = Relay::new(RELAY, store.clone(), mapping(), broker.sink(RELAY).await);
    Runner::new(store, relay).catch_up().await.unwrap();
    let got = broker.published().await;
    assert_eq!(got.len(), expected.len());
    (got, dir)
}

/// A handler that fails twice for one message receives it again, and every event is
/// handled once in effect; a handler that always fails for another dead-letters it, and
/// the consumer carries on with the rest.
pub async fn consumer_retries_then_dead_letters(broker: &dyn Broker) {
    let (events, dir) = published_events(broker, 30).await;
    let (flaky, poison) = (events[3].id, events[9].id);
    let recorder = Arc::new(Recorder {
        name: unique("recorder"),
        rules: [(flaky, Rule::FailTimes(2)), (poison, Rule::AlwaysFail)].into(),
        ..Default::default()
    });
    let inbox = SqliteInbox::open(dir.path().join("inbox.db"), Shared(recorder.clone())).unwrap();
    let stop = CancellationToken::new();
    let task = {
        let (inbox, stop) = (Arc::new(inbox.clone()), stop.clone());
        async move { broker.consume("a", inbox, stop).await }
    };
    let wanted: HashSet<Uuid> = events
        .iter()
        .map(|e| e.id)
        .filter(|id| *id != poison)
        .collect();
    let check = async {
        eventually(60, || async {
            let counts = inbox.read(handled_counts).await.unwrap();
            wanted.iter().all(|id| counts.contains_key(id))
                && broker.dead_letters().await.contains(&poison)
        })
        .await
    };
    let (result, done) = tokio::join!(task, async {
        let done = check.await;
        stop.cancel();
        done
    });
    result.unwrap();
    assert!(
        done,
        "every event but the poison one was handled, and the poison one dead-lettered"
    );
    let counts = inbox.read(handled_counts).await.unwrap();
    assert!(
        counts.values().all(|n| *n == 1),
        "each event handled once: {counts:?}"
    );
    assert!(
        !counts.contains_key(&poison),
        "the poison event was never handled"
    );
    assert_eq!(
        recorder.attempts(flaky),
        3,
        "the flaky event came three times: two failures, then done"
    );
    assert_eq!(
        recorder.attempts(poison),
        5,
        "the poison event was tried max_deliveries (5) times"
    );
    assert_eq!(
        broker.dead_letters().await,
        vec![poison],
        "only the poison event is dead-lettered"
    );
    broker.cleanup().await;
}

/// A handler writing to PostgreSQL that, in the child, never returns from one event (the
/// process is killed there).
#[derive(Debug)]
pub struct PgRecorder {
    pub name: String,
    pub block_on: Option<Uuid>,
}

#[async_trait]
impl recount_relay::inbox::PgHandler for PgRecorder {
    fn name(&self) -> &str {
        &self.name
    }
    async fn handle(
        &self,
        tx: &mut sqlx::PgConnection,
        e: &IntegrationEvent,
    ) -> Result<(), BoxError> {
        sqlx::query("INSERT INTO relay_test_handled (handler, event_id) VALUES ($1, $2)")
            .bind(&self.name)
            .bind(e.id)
            .execute(&mut *tx)
            .await?;
        if self.block_on == Some(e.id) {
            println!("entered {}", e.id);
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}

async fn pg() -> sqlx::PgPool {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let pool = sqlx::PgPool::connect(&url)
        .await
        .expect("PostgreSQL on DATABASE_URL");
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(7247106577)")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE IF NOT EXISTS relay_test_handled (handler text NOT NULL, event_id uuid NOT NULL)")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    pool
}

/// The child consumer: `role` is `consumer:<handler>:<event to die in>`.
pub async fn consumer_child(role: &str, broker: &dyn Broker) {
    let mut parts = role.split(':').skip(1);
    let (name, victim) = (
        parts.next().unwrap(),
        parts.next().unwrap().parse().unwrap(),
    );
    let handler = PgRecorder {
        name: name.to_owned(),
        block_on: Some(victim),
    };
    let inbox = recount_relay::inbox::PgInbox::new(pg().await, handler)
        .await
        .unwrap();
    println!();
    println!("consumer-ready");
    broker
        .consume("a", Arc::new(inbox), CancellationToken::new())
        .await
        .unwrap();
}

/// A consumer (a real process) SIGKILLed inside its handler loses nothing: another member
/// of the group finishes that message and the rest, each handled once in effect (PostgreSQL
/// inbox: the killed handler's transaction never committed).
pub async fn consumer_killed_mid_message_loses_nothing(test: &str, broker: &dyn Broker) {
    let (events, _dir) = published_events(broker, 30).await;
    let victim = events[6].id;
    let pool = pg().await;
    let name = unique("pgrec");
    let (mut child, lines) = spawn_child(
        test,
        &format!("consumer:{name}:{victim}"),
        broker,
        "consumer-ready",
    );
    let entered = lines
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_default();
    assert_eq!(
        entered,
        format!("entered {victim}"),
        "the child reached the handler of the victim"
    );
    child.kill().expect("SIGKILL the consumer");
    child.wait().unwrap();

    let inbox = recount_relay::inbox::PgInbox::new(
        pool.clone(),
        PgRecorder {
            name: name.clone(),
            block_on: None,
        },
    )
    .await
    .unwrap();
    assert!(
        !inbox.processed(victim).await.unwrap(),
        "the killed handler committed nothing"
    );
    let stop = CancellationToken::new();
    let counts = || async {
        let rows: Vec<(Uuid, i64)> = sqlx::query_as(
            "SELECT event_id, count(*) FROM relay_test_handled WHERE handler = $1 GROUP BY event_id",
        )
        .bind(&name)
        .fetch_all(&pool)
        .await
        .unwrap();
        rows.into_iter().collect::<HashMap<Uuid, i64>>()
    };
    let run = broker.consume("b", Arc::new(inbox), stop.clone());
    let (result, done) = tokio::join!(run, async {
        let done = eventually(60, || async { counts().await.len() == events.len() }).await;
        stop.cancel();
        done
    });
    result.unwrap();
    assert!(done, "every event was handled after the kill");
    let counts = counts().await;
    assert!(
        counts.values().all(|n| *n == 1),
        "each event handled once in effect: {counts:?}"
    );
    assert!(
        counts.contains_key(&victim),
        "the message the killed consumer held was finished by another"
    );
    broker.cleanup().await;
}
