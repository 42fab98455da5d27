//! Projections, rebuilds, side effects and process managers on the in-memory store.

mod common;

use async_trait::async_trait;
use common::Counter;
use recount::projection::{
    active_version, rebuild, CheckpointMove, Consumer, DeadLetterPolicy, Effects,
    InMemoryProjection, Process, ProcessManager, ReadModel, RunState, Runner, RunnerOptions,
    SideEffect, Steps,
};
use recount::{
    BoxError, Cursor, Error, EventQuery, EventStore, ExpectedVersion, InMemoryStore, LogFilter,
    NewEvent, RecordedEvent, Repository, StreamId,
};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

/// Counts each event id it sees, and keeps each stream's versions in the order handled.
#[derive(Debug, Clone, Default, PartialEq)]
struct Tally {
    seen: BTreeMap<Uuid, u32>,
    versions: BTreeMap<String, Vec<u64>>,
    total: u64,
}

/// Event ids the read model refuses (ids are unique, so tests running at once do not meet).
static REFUSE: Mutex<Vec<Uuid>> = Mutex::new(Vec::new());

impl ReadModel for Tally {
    fn apply(&mut self, e: &RecordedEvent) -> recount::Result<()> {
        if REFUSE.lock().unwrap().contains(&e.id) {
            return Err(Error::invalid("event", "the read model refuses this event"));
        }
        *self.seen.entry(e.id).or_default() += 1;
        self.versions
            .entry(e.stream.to_string())
            .or_default()
            .push(e.version);
        self.total += e.payload_as::<serde_json::Value>()?["n"]
            .as_u64()
            .unwrap_or(0);
        Ok(())
    }
}

fn ev(n: u64) -> NewEvent {
    NewEvent::new("tally.added", &serde_json::json!({ "n": n })).unwrap()
}

async fn write(store: &InMemoryStore, streams: u64, per_stream: u64) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for round in 0..per_stream {
        for s in 0..streams {
            let e = ev(round * streams + s);
            ids.push(e.id);
            let sid = StreamId::new("tally", &s.to_string()).unwrap();
            store
                .append(&sid, ExpectedVersion::Any, vec![e])
                .await
                .unwrap();
        }
    }
    ids
}

fn straight_replay(events: &[RecordedEvent]) -> Tally {
    let mut t = Tally::default();
    for e in events {
        t.apply(e).unwrap();
    }
    t
}

async fn log(store: &InMemoryStore) -> Vec<RecordedEvent> {
    store
        .read_all(Cursor::START, &LogFilter::all(), usize::MAX)
        .await
        .unwrap()
        .events
}

#[tokio::test]
async fn a_failing_batch_keeps_nothing_and_the_runner_stops_at_the_poison_event() {
    let store = InMemoryStore::new();
    write(&store, 5, 20).await;
    let projection = InMemoryProjection::<Tally>::new("tally");
    let options = RunnerOptions {
        batch_size: 30,
        max_attempts: 2,
        retry_backoff: (Duration::from_millis(1), Duration::from_millis(2)),
        ..Default::default()
    };
    let runner = Runner::with_options(store.clone(), projection.clone(), options);
    assert_eq!(runner.catch_up().await.unwrap(), 100);
    // New events; the model refuses one in the middle of the next batch.
    let more = write(&store, 5, 6).await;
    REFUSE.lock().unwrap().push(more[10]);
    // A batch holding the refused event commits nothing of it, checkpoint included.
    let (model, checkpoint) = (projection.read(|t| t.clone()), projection.checkpoint());
    let all = log(&store).await;
    let batch: Vec<_> = all[100..].to_vec();
    let end = batch.last().unwrap().cursor;
    let failed = projection
        .commit(
            batch,
            CheckpointMove {
                name: runner.checkpoint_name().to_owned(),
                expected: checkpoint,
                new: end,
            },
        )
        .await;
    assert!(
        matches!(failed, Err(Error::InvalidInput { .. })),
        "{failed:?}"
    );
    assert_eq!(projection.read(|t| t.clone()), model, "no row was kept");
    assert_eq!(
        projection.checkpoint(),
        checkpoint,
        "the checkpoint did not move"
    );
    // The runner retries, finds the event that fails, and stops there (a projection's
    // default policy): the events before it are in, nothing after it.
    let err = runner.catch_up().await.unwrap_err();
    match &err {
        Error::ConsumerStopped {
            event_id, source, ..
        } => {
            assert_eq!(*event_id, Some(more[10]));
            assert!(matches!(**source, Error::InvalidInput { .. }), "{source:?}");
        }
        other => panic!("expected a stop, got {other:?}"),
    }
    assert_eq!(
        projection.read(|t| t.clone()),
        straight_replay(&all[..110]),
        "everything before the poison event, nothing after it"
    );
    assert_eq!(projection.checkpoint(), Some(all[109].cursor));
    let status = runner.status();
    assert_eq!(status.state, RunState::Stopped);
    assert!(status.last_error.unwrap().contains("refuses"));
    assert!(
        status.failures >= 4,
        "two attempts at the batch, two at the event"
    );
    // The fault is fixed; a restarted runner resumes from the checkpoint.
    REFUSE.lock().unwrap().retain(|id| *id != more[10]);
    let restarted = Runner::new(store.clone(), projection.clone());
    assert_eq!(restarted.catch_up().await.unwrap(), 20);
    assert_eq!(
        projection.read(|t| t.clone()),
        straight_replay(&log(&store).await)
    );
}

/// Records which runner committed which events.
#[derive(Clone)]
struct Tagged {
    inner: InMemoryProjection<Tally>,
    tag: &'static str,
    by: Arc<Mutex<Vec<(&'static str, usize)>>>,
    slow: Duration,
}

#[async_trait]
impl Consumer for Tagged {
    fn name(&self) -> &str {
        self.inner.name()
    }
    async fn position(&self, name: &str) -> recount::Result<Option<Cursor>> {
        self.inner.position(name).await
    }
    async fn commit(
        &self,
        events: Vec<RecordedEvent>,
        checkpoint: CheckpointMove,
    ) -> recount::Result<()> {
        // A slow handler: a runner aborted here has applied nothing.
        tokio::time::sleep(self.slow).await;
        let n = events.len();
        self.inner.commit(events, checkpoint).await?;
        if n > 0 {
            self.by.lock().unwrap().push((self.tag, n));
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_two_runners_one_handles_events_and_the_other_takes_over_when_it_dies() {
    let store = InMemoryStore::new();
    write(&store, 4, 25).await;
    let model = InMemoryProjection::<Tally>::new("exclusive");
    let by = Arc::new(Mutex::new(Vec::new()));
    let options = RunnerOptions {
        batch_size: 10,
        lease_ttl: Duration::from_millis(400),
        ..Default::default()
    };
    let runner = |tag, slow| {
        let p = Tagged {
            inner: model.clone(),
            tag,
            by: by.clone(),
            slow,
        };
        Arc::new(Runner::with_options(store.clone(), p, options.clone()))
    };
    let (a, b) = (
        runner("a", Duration::from_millis(30)),
        runner("b", Duration::from_millis(1)),
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let task_a = tokio::spawn({
        let (a, rx) = (a.clone(), stop_rx.clone());
        async move { a.run(stopped(rx)).await }
    });
    // A takes the lease first; B starts once A is committing.
    wait_until(|| a.status().batches > 0).await;
    let task_b = tokio::spawn({
        let (b, rx) = (b.clone(), stop_rx.clone());
        async move { b.run(stopped(rx)).await }
    });
    wait_until(|| a.status().batches >= 4).await;
    assert_eq!(
        b.status().events,
        0,
        "while A holds the lease B handles nothing"
    );
    // Kill A in the middle of a batch (its commits take 30 ms each).
    tokio::time::sleep(Duration::from_millis(10)).await;
    task_a.abort();
    let a_done = a.status().events;
    assert!(a_done < 100, "A was stopped before the end");
    // More events arrive while B takes over.
    let late = write(&store, 4, 5).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while model.read(|t| t.seen.len()) < 120 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop_tx.send(true).unwrap();
    task_b.await.unwrap().unwrap();
    assert!(b.status().events > 0, "B took over");
    let seen = model.read(|t| t.seen.clone());
    assert_eq!(seen.len(), 120, "nothing skipped");
    assert!(seen.values().all(|n| *n == 1), "nothing handled twice");
    assert!(late.iter().all(|id| seen.contains_key(id)));
    let by = by.lock().unwrap().clone();
    let first_b = by.iter().position(|(t, _)| *t == "b").unwrap();
    assert!(
        by[first_b..].iter().all(|(t, _)| *t == "b"),
        "A never committed after B took over: {by:?}"
    );
    assert_eq!(a_done + b.status().events, 120);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rebuild_builds_v2_beside_v1_while_appends_continue_then_switches() {
    let store = InMemoryStore::new();
    write(&store, 10, 300).await;
    let v1 = InMemoryProjection::<Tally>::new("tally");
    Runner::new(store.clone(), v1.clone())
        .catch_up()
        .await
        .unwrap();
    let v1_total = v1.read(|t| t.total);
    // The writer starts once the rebuild has begun, so appends really continue during it.
    let started = Arc::new(tokio::sync::Notify::new());
    let writer = tokio::spawn({
        let (store, started) = (store.clone(), started.clone());
        async move {
            started.notified().await;
            write(&store, 3, 100).await
        }
    });
    // v2 counts differently (only one category, a different output), rebuilt from the start.
    let v2 = InMemoryProjection::<Tally>::new("tally")
        .with_version(2)
        .with_filter(LogFilter::all().category("tally"));
    let mut reports = Vec::new();
    let done = rebuild(&store, v2.clone(), Some(&v1), 10, |p| {
        started.notify_one();
        reports.push(p)
    })
    .await
    .unwrap();
    let appended = writer.await.unwrap();
    assert!(
        done > 3000,
        "the rebuild replayed the log and events appended meanwhile: {done}"
    );
    assert!(reports.len() > 10, "progress was reported per batch");
    assert!(reports.windows(2).all(|w| w[0].done <= w[1].done));
    assert_eq!(reports.last().unwrap().remaining, 0);
    assert!(reports.iter().all(|p| p.per_sec > 0.0));
    assert_eq!(
        active_version(&store, "tally").await.unwrap(),
        Some(2),
        "readers switched to v2"
    );
    assert_eq!(v1.read(|t| t.seen.len()), 0, "v1 was dropped");
    assert!(v1_total > 0);
    // The live v2 runner goes on after the switch; v2 then holds every event, including
    // those appended during the rebuild.
    Runner::new(store.clone(), v2.clone())
        .catch_up()
        .await
        .unwrap();
    assert!(appended
        .iter()
        .all(|id| v2.read(|t| t.seen.contains_key(id))));
    assert_eq!(v2.read(|t| t.clone()), straight_replay(&log(&store).await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_projection_partitioned_over_4_workers_handles_each_event_once_in_stream_order() {
    let store = InMemoryStore::new();
    let ids = write(&store, 40, 25).await;
    let models: Vec<_> = (0..4)
        .map(|_| InMemoryProjection::<Tally>::new("parts"))
        .collect();
    let workers: Vec<_> = models
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let options = RunnerOptions {
                batch_size: 37,
                partition: Some((i as u32, 4)),
                ..Default::default()
            };
            let runner = Runner::with_options(store.clone(), m.clone(), options);
            tokio::spawn(async move { runner.catch_up().await.unwrap() })
        })
        .collect();
    let mut counts = Vec::new();
    for w in workers {
        counts.push(w.await.unwrap());
    }
    assert!(
        counts.iter().all(|c| *c > 0),
        "every worker had work: {counts:?}"
    );
    let mut seen: HashMap<Uuid, u32> = HashMap::new();
    let mut streams = HashSet::new();
    for m in &models {
        for (id, n) in m.read(|t| t.seen.clone()) {
            *seen.entry(id).or_default() += n;
        }
        for (stream, versions) in m.read(|t| t.versions.clone()) {
            assert!(
                streams.insert(stream.clone()),
                "stream {stream} went to one worker only"
            );
            assert_eq!(
                versions,
                (1..=25).collect::<Vec<_>>(),
                "stream order in {stream}"
            );
        }
    }
    assert_eq!(seen.len(), ids.len());
    assert!(seen.values().all(|n| *n == 1), "exactly once in total");
}

#[tokio::test]
async fn a_caller_can_wait_until_a_projection_passed_its_append() {
    let store = InMemoryStore::new();
    let model = InMemoryProjection::<Tally>::new("ryw");
    let runner = Arc::new(Runner::new(store.clone(), model.clone()));
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let live = tokio::spawn({
        let runner = runner.clone();
        async move {
            runner
                .run(async move {
                    let _ = stop_rx.wait_for(|s| *s).await;
                })
                .await
        }
    });
    let s = StreamId::new("tally", "ryw").unwrap();
    let appended = store
        .append(&s, ExpectedVersion::Any, vec![ev(7)])
        .await
        .unwrap();
    assert!(
        runner
            .wait_for(appended.cursor, Duration::from_secs(10))
            .await
    );
    assert_eq!(model.read(|t| t.total), 7, "the read model shows the write");
    stop_tx.send(true).unwrap();
    live.await.unwrap().unwrap();
}

/// Fails for the event ids in `failing`; records what it handled.
#[derive(Clone, Default)]
struct Mailer {
    failing: Arc<Mutex<HashSet<Uuid>>>,
    sent: Arc<Mutex<Vec<Uuid>>>,
    attempts: Arc<Mutex<HashMap<Uuid, u32>>>,
}

#[async_trait]
impl SideEffect for Mailer {
    fn name(&self) -> &str {
        "mailer"
    }
    fn filter(&self) -> LogFilter {
        LogFilter::all().category("tally")
    }
    async fn handle(&self, event: &RecordedEvent) -> Result<(), BoxError> {
        *self.attempts.lock().unwrap().entry(event.id).or_default() += 1;
        if self.failing.lock().unwrap().contains(&event.id) {
            return Err("smtp server said no".into());
        }
        self.sent.lock().unwrap().push(event.id);
        Ok(())
    }
}

fn effects(
    store: &InMemoryStore,
    mailer: &Mailer,
    attempts: u32,
    policy: DeadLetterPolicy,
) -> Runner<InMemoryStore, Effects<InMemoryStore, Mailer>> {
    let options = RunnerOptions {
        max_attempts: attempts,
        retry_backoff: (Duration::from_millis(1), Duration::from_millis(1)),
        dead_letters: Some(policy),
        ..Default::default()
    };
    Runner::with_options(
        store.clone(),
        Effects::new(store.clone(), mailer.clone()),
        options,
    )
}

#[tokio::test]
async fn a_failing_side_effect_is_parked_after_its_attempts_and_retried_later() {
    let store = InMemoryStore::new();
    let ids = write(&store, 3, 4).await;
    let mailer = Mailer::default();
    mailer.failing.lock().unwrap().insert(ids[4]);
    let runner = effects(&store, &mailer, 3, DeadLetterPolicy::Skip);
    assert_eq!(runner.catch_up().await.unwrap(), 11);
    assert_eq!(
        mailer.sent.lock().unwrap().len(),
        11,
        "the rest were handled"
    );
    let parked = runner.parked().await.unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!((parked[0].event_id, parked[0].attempts), (ids[4], 3));
    assert!(parked[0].error.contains("smtp"));
    assert_eq!(
        runner.retry_parked().await.unwrap(),
        0,
        "still failing: stays parked"
    );
    mailer.failing.lock().unwrap().clear();
    assert_eq!(runner.retry_parked().await.unwrap(), 1);
    assert!(runner.parked().await.unwrap().is_empty());
    assert!(mailer.sent.lock().unwrap().contains(&ids[4]));
    assert_eq!(
        runner.catch_up().await.unwrap(),
        0,
        "the checkpoint had moved past everything"
    );
}

#[tokio::test]
async fn a_replay_hands_over_again_only_the_chosen_events_up_to_the_checkpoint() {
    let store = InMemoryStore::new();
    let ids = write(&store, 3, 4).await;
    let noted = StreamId::new("tally", "0").unwrap();
    let note = NewEvent::new("tally.noted", &serde_json::json!({})).unwrap();
    let note_id = note.id;
    store
        .append(&noted, ExpectedVersion::Any, vec![note])
        .await
        .unwrap();
    let mailer = Mailer::default();
    let runner = effects(&store, &mailer, 3, DeadLetterPolicy::Skip);
    assert_eq!(runner.catch_up().await.unwrap(), 13);
    let checkpoint = runner.status().checkpoint;
    let later = write(&store, 1, 2).await; // after the checkpoint: the live runner's
    let log = log(&store).await;
    let from = log.iter().find(|e| e.id == ids[5]).unwrap().cursor;

    mailer.sent.lock().unwrap().clear();
    let replayed = runner.replay(&EventQuery::after(from)).await.unwrap();
    let sent = mailer.sent.lock().unwrap().clone();
    let mut expected = ids[6..].to_vec();
    expected.push(note_id);
    assert_eq!(replayed, 7);
    assert_eq!(
        sent, expected,
        "after `from`, in log order, not past the checkpoint"
    );
    assert!(later.iter().all(|id| !sent.contains(id)));

    mailer.sent.lock().unwrap().clear();
    let only_notes = EventQuery::default().filter(LogFilter::all().event_type("tally.noted"));
    assert_eq!(runner.replay(&only_notes).await.unwrap(), 1);
    assert_eq!(*mailer.sent.lock().unwrap(), vec![note_id]);

    assert_eq!(
        store
            .load_checkpoint(runner.checkpoint_name())
            .await
            .unwrap(),
        checkpoint,
        "a replay leaves the checkpoint where it was"
    );
    assert_eq!(
        runner.catch_up().await.unwrap(),
        2,
        "the live events are still to do"
    );

    let tally = InMemoryProjection::<Tally>::new("tally");
    let projection = Runner::new(store.clone(), tally.clone());
    projection.catch_up().await.unwrap();
    let refused = projection.replay(&EventQuery::default()).await;
    assert!(
        matches!(refused, Err(Error::InvalidInput { .. })),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_sequenced_dead_letter_holds_back_later_events_of_its_stream_only() {
    let store = InMemoryStore::new();
    let ids = write(&store, 2, 3).await; // streams 0 and 1 alternate
    let mailer = Mailer::default();
    mailer.failing.lock().unwrap().insert(ids[0]); // stream tally-0, version 1
    let runner = effects(&store, &mailer, 2, DeadLetterPolicy::Sequenced);
    runner.catch_up().await.unwrap();
    let sent = mailer.sent.lock().unwrap().clone();
    assert_eq!(
        sent,
        vec![ids[1], ids[3], ids[5]],
        "only stream tally-1 went on"
    );
    assert_eq!(
        runner.parked().await.unwrap().len(),
        3,
        "tally-0's later events wait behind it"
    );
    mailer.failing.lock().unwrap().clear();
    assert_eq!(runner.retry_parked().await.unwrap(), 3);
    let sent = mailer.sent.lock().unwrap().clone();
    assert_eq!(
        &sent[3..],
        &[ids[0], ids[2], ids[4]],
        "retried in stream order"
    );
}

/// Orders reserve stock (counter `stock-…`) then charge (counter `wallet-…`); a charge
/// the wallet refuses releases the stock again.
struct Checkout {
    stock: Repository<Counter, InMemoryStore>,
    wallets: Repository<Counter, InMemoryStore>,
    crash_after_reserve: Arc<Mutex<bool>>,
}

#[async_trait]
impl ProcessManager for Checkout {
    type State = BTreeMap<String, String>;
    fn name(&self) -> &str {
        "checkout"
    }
    fn filter(&self) -> LogFilter {
        LogFilter::all().event_type("order.placed")
    }
    async fn handle(
        &self,
        state: &mut Self::State,
        event: &RecordedEvent,
        steps: &mut Steps,
    ) -> Result<(), BoxError> {
        let order: serde_json::Value = event.payload_as()?;
        let amount = order["amount"].as_u64().unwrap_or(0);
        self.stock
            .execute("widgets", &steps.next_step(), |c| c.add(1))
            .await?;
        if std::mem::take(&mut *self.crash_after_reserve.lock().unwrap()) {
            return Err("crashed after reserving".into());
        }
        let charge = steps.next_step();
        let charged = self.wallets.execute("ada", &charge, |c| {
            if amount > 100 {
                Err(common::CounterError::Capped(100))
            } else {
                c.add(amount)
            }
        });
        let outcome = match charged.await {
            Ok(_) => "paid",
            Err(recount::CommandError::Rejected(_)) => {
                // Compensation: release the reserved widget.
                self.stock
                    .execute("widgets", &steps.named("release"), |_| {
                        Ok(vec![common::CounterEvent::Reset])
                    })
                    .await?;
                "released"
            }
            Err(e) => return Err(e.into()),
        };
        state.insert(event.stream.to_string(), outcome.to_owned());
        Ok(())
    }
}

async fn place(store: &InMemoryStore, order: &str, amount: u64) -> (Uuid, Uuid) {
    let correlation = Uuid::now_v7();
    let meta = recount::Metadata {
        correlation_id: Some(correlation),
        ..Default::default()
    };
    let e = NewEvent::new("order.placed", &serde_json::json!({ "amount": amount }))
        .unwrap()
        .with_metadata(meta);
    let id = e.id;
    store
        .append(
            &StreamId::new("order", order).unwrap(),
            ExpectedVersion::NoStream,
            vec![e],
        )
        .await
        .unwrap();
    (id, correlation)
}

type Saga = Runner<InMemoryStore, Process<InMemoryStore, Checkout>>;

/// A saga runner; `crash`: the manager fails once after its first step, and the runner, with
/// one attempt and no dead letters, stops there as a crashed process would.
fn saga(store: &InMemoryStore, crash: bool) -> Saga {
    let options = RunnerOptions {
        max_attempts: 1,
        dead_letters: Some(DeadLetterPolicy::Stop),
        ..Default::default()
    };
    let process = Process::new(store.clone(), checkout(store, crash));
    Runner::with_options(store.clone(), process, options)
}

async fn saga_state(runner: &Saga) -> BTreeMap<String, String> {
    runner.consumer().state().await.unwrap().0
}

fn checkout(store: &InMemoryStore, crash: bool) -> Checkout {
    Checkout {
        stock: Repository::new(store.clone()),
        wallets: Repository::new(store.clone()),
        crash_after_reserve: Arc::new(Mutex::new(crash)),
    }
}

async fn caused_by(store: &InMemoryStore, cause: Uuid) -> Vec<RecordedEvent> {
    log(store)
        .await
        .into_iter()
        .filter(|e| e.metadata().unwrap().causation_id == Some(cause))
        .collect()
}

#[tokio::test]
async fn a_saga_runs_its_steps_with_correlation_and_causation_kept() {
    let store = InMemoryStore::new();
    let (order, correlation) = place(&store, "1", 40).await;
    let runner = saga(&store, false);
    assert_eq!(runner.catch_up().await.unwrap(), 1);
    let caused = caused_by(&store, order).await;
    assert_eq!(
        caused.iter().map(|e| e.stream.as_str()).collect::<Vec<_>>(),
        ["counter-widgets", "counter-ada"]
    );
    for e in &caused {
        assert_eq!(
            e.metadata().unwrap().correlation_id,
            Some(correlation),
            "correlation kept"
        );
    }
    assert_eq!(
        saga_state(&runner).await.get("order-1").map(String::as_str),
        Some("paid")
    );
}

#[tokio::test]
async fn a_failing_second_step_runs_the_compensation_and_leaves_consistent_state() {
    let store = InMemoryStore::new();
    let (order, correlation) = place(&store, "2", 500).await;
    let runner = saga(&store, false);
    runner.catch_up().await.unwrap();
    let caused = caused_by(&store, order).await;
    let kinds: Vec<_> = caused
        .iter()
        .map(|e| (e.stream.as_str(), e.event_type.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("counter-widgets", "counter.added"),
            ("counter-widgets", "counter.reset")
        ]
    );
    assert!(caused
        .iter()
        .all(|e| e.metadata().unwrap().correlation_id == Some(correlation)));
    let stock = Repository::<Counter, _>::new(store.clone())
        .load("widgets")
        .await
        .unwrap();
    assert_eq!(stock.state.value, 0, "the reservation was released");
    assert_eq!(
        Repository::<Counter, _>::new(store.clone())
            .load("ada")
            .await
            .unwrap()
            .version,
        0,
        "nothing charged"
    );
    assert_eq!(
        saga_state(&runner).await.get("order-2").map(String::as_str),
        Some("released")
    );
}

#[tokio::test]
async fn a_saga_restarted_mid_way_sends_no_command_twice() {
    let store = InMemoryStore::new();
    let (order, _) = place(&store, "3", 10).await;
    let crashing = saga(&store, true);
    crashing.catch_up().await.unwrap_err();
    assert_eq!(
        caused_by(&store, order).await.len(),
        1,
        "the first step ran before the crash"
    );
    let restarted = saga(&store, false);
    assert_eq!(restarted.catch_up().await.unwrap(), 1);
    let caused = caused_by(&store, order).await;
    assert_eq!(
        caused.len(),
        2,
        "the reserve step was not sent twice: {caused:#?}"
    );
    let stock = Repository::<Counter, _>::new(store.clone())
        .load("widgets")
        .await
        .unwrap();
    assert_eq!((stock.state.value, stock.version), (1, 1));
    assert_eq!(
        restarted.catch_up().await.unwrap(),
        0,
        "its position was saved with its state"
    );
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
