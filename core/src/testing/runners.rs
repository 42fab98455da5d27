//! The runner suite: one consumer of each kind (a read model, a side effect, a process
//! manager) over the same log, driven by [`Runner`]s on any store, with one check of
//! "every event exactly once" that fits all three. [`runner_tests!`](crate::runner_tests)
//! stamps the tests out for a store, as [`conformance_tests!`](crate::conformance_tests) does.

use super::faults::{Faults, FaultyConsumer, FaultyStore};
use crate::projection::{
    Consumer, DeadLetterPolicy, Effects, InMemoryProjection, Process, ProcessManager, ReadModel,
    Runner, RunnerOptions, SideEffect, Steps, Supervised, Supervisor,
};
use crate::{
    BoxError, Cursor, EventStore, ExpectedVersion, LogFilter, NewEvent, RecordedEvent, StreamId,
};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// What the read model saw: how often each event, each stream's versions in order.
#[derive(Debug, Clone, Default, PartialEq)]
struct Seen {
    times: BTreeMap<Uuid, u32>,
    versions: BTreeMap<String, Vec<u64>>,
}

impl ReadModel for Seen {
    fn apply(&mut self, e: &RecordedEvent) -> crate::Result<()> {
        *self.times.entry(e.id).or_default() += 1;
        self.versions
            .entry(e.stream.to_string())
            .or_default()
            .push(e.version);
        Ok(())
    }
}

/// Event ids a consumer refuses, and how many attempts each refused event got.
#[derive(Debug, Clone, Default)]
struct Refusals {
    ids: Arc<Mutex<HashSet<Uuid>>>,
    attempts: Arc<Mutex<HashMap<Uuid, u32>>>,
}

impl Refusals {
    fn refuses(&self, id: Uuid) -> bool {
        let refused = self.ids.lock().unwrap().contains(&id);
        if refused {
            *self.attempts.lock().unwrap().entry(id).or_default() += 1;
        }
        refused
    }
}

/// An idempotent receiver: records each event id once, however often it is delivered.
#[derive(Debug, Clone, Default)]
struct Receiver {
    name: String,
    received: Arc<Mutex<HashMap<Uuid, u32>>>,
    refuse: Refusals,
}

#[async_trait]
impl SideEffect for Receiver {
    fn name(&self) -> &str {
        &self.name
    }
    fn filter(&self) -> LogFilter {
        LogFilter::all().category("probe")
    }
    async fn handle(&self, event: &RecordedEvent) -> Result<(), BoxError> {
        if self.refuse.refuses(event.id) {
            return Err("the receiver refuses this event".into());
        }
        *self.received.lock().unwrap().entry(event.id).or_default() += 1;
        Ok(())
    }
}

/// A process manager: for each probe event it sends one command, an append to
/// `echo-<probe stream>` whose event id is the step's command id (the store recognises it when
/// sent again). Its state is each stream's last version seen; a version out of order (a state
/// that does not belong to its position) is recorded as a violation.
#[derive(Clone)]
struct Echo {
    name: String,
    store: Arc<dyn EventStore>,
    refuse: Refusals,
    violations: Arc<Mutex<Vec<String>>>,
}

#[async_trait]
impl ProcessManager for Echo {
    type State = BTreeMap<String, u64>;
    fn name(&self) -> &str {
        &self.name
    }
    fn filter(&self) -> LogFilter {
        LogFilter::all().category("probe")
    }
    async fn handle(
        &self,
        state: &mut Self::State,
        event: &RecordedEvent,
        steps: &mut Steps,
    ) -> Result<(), BoxError> {
        if self.refuse.refuses(event.id) {
            return Err("the saga refuses this event".into());
        }
        let last = state.entry(event.stream.to_string()).or_default();
        if event.version != *last + 1 {
            self.violations.lock().unwrap().push(format!(
                "{}: {} v{} after v{last}",
                self.name, event.stream, event.version
            ));
        }
        *last = event.version;
        let ctx = steps.next_step();
        let id = ctx.command_id.ok_or("a step has a command id")?;
        let echo = StreamId::new("echo", &format!("{}.{}", self.name, event.stream))?;
        let e = NewEvent::new("echo.sent", &serde_json::json!({ "of": event.id }))?.with_id(id);
        self.store
            .append(&echo, ExpectedVersion::Any, vec![e])
            .await?;
        Ok(())
    }
}

/// One consumer of each kind and what they recorded.
#[derive(Debug, Clone)]
struct Probes<S> {
    store: S,
    receiver: Receiver,
    echo: Echo,
}

impl std::fmt::Debug for Echo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Echo").finish_non_exhaustive()
    }
}

type ModelRunner<T> = Arc<Runner<T, FaultyConsumer<InMemoryProjection<Seen>>>>;
type EffectsRunner<T> = Arc<Runner<T, Effects<T, Receiver>>>;
type EchoRunner<T> = Arc<Runner<T, Process<T, Echo>>>;

fn model() -> InMemoryProjection<Seen> {
    InMemoryProjection::new("seen").with_filter(LogFilter::all().category("probe"))
}

/// Three runners as one list for a [`Supervisor`].
fn supervised<T: EventStore>(
    (m, e, p): &(ModelRunner<T>, EffectsRunner<T>, EchoRunner<T>),
) -> Vec<Arc<dyn Supervised>> {
    vec![
        m.clone() as Arc<dyn Supervised>,
        e.clone() as Arc<dyn Supervised>,
        p.clone() as Arc<dyn Supervised>,
    ]
}

impl<S: EventStore + Clone> Probes<S> {
    fn new(store: &S) -> Self {
        Probes {
            store: store.clone(),
            receiver: Receiver {
                name: "receiver".into(),
                ..Receiver::default()
            },
            echo: Echo {
                name: "echo".into(),
                store: Arc::new(store.clone()),
                refuse: Refusals::default(),
                violations: Arc::default(),
            },
        }
    }

    /// Appends one event to each of `streams` streams, `rounds` times; returns their ids.
    async fn write(&self, streams: u64, rounds: u64) -> Vec<Uuid> {
        let mut ids = Vec::new();
        for _ in 0..rounds {
            for s in 0..streams {
                let e = NewEvent::new("probe.noted", &serde_json::json!({ "s": s })).unwrap();
                ids.push(e.id);
                let stream = StreamId::new("probe", &s.to_string()).unwrap();
                // Re-sent with the same id while the store is away (store contract, item 4).
                let mut backoff =
                    crate::Backoff::new(Duration::from_millis(5), Duration::from_millis(200));
                loop {
                    match self
                        .store
                        .append(&stream, ExpectedVersion::Any, vec![e.clone()])
                        .await
                    {
                        Ok(_) => break,
                        Err(err) if err.is_retriable() && backoff.attempts() < 100 => {
                            tokio::time::sleep(backoff.next_pause()).await
                        }
                        Err(err) => panic!("append failed: {err}"),
                    }
                }
            }
        }
        ids
    }

    /// The three runners over `store` (possibly a faulty view of `self.store`), the read
    /// model's commits failing by `faults`.
    fn runners<T: EventStore + Clone>(
        &self,
        store: &T,
        model: &InMemoryProjection<Seen>,
        options: &RunnerOptions,
        faults: Arc<Faults>,
    ) -> (ModelRunner<T>, EffectsRunner<T>, EchoRunner<T>) {
        let model = FaultyConsumer::new(model.clone(), faults);
        let effects = Effects::new(store.clone(), self.receiver.clone());
        let process = Process::new(store.clone(), self.echo.clone());
        (
            Arc::new(Runner::with_options(store.clone(), model, options.clone())),
            Arc::new(Runner::with_options(
                store.clone(),
                effects,
                options.clone(),
            )),
            Arc::new(Runner::with_options(
                store.clone(),
                process,
                options.clone(),
            )),
        )
    }

    /// Echo events of the saga in the log, per probe event they answer.
    async fn echoes(&self) -> HashMap<Uuid, u32> {
        self.echoes_of(&self.echo.name).await
    }

    /// Echo events of the saga named `name`, per probe event they answer.
    async fn echoes_of(&self, name: &str) -> HashMap<Uuid, u32> {
        let mut out = HashMap::new();
        let prefix = format!("echo-{name}.");
        for e in super::conformance::whole_log(&self.store).await {
            if e.event_type == "echo.sent" && e.stream.as_str().starts_with(&prefix) {
                let of = e.payload_as::<serde_json::Value>().unwrap()["of"]
                    .as_str()
                    .and_then(|s| s.parse::<Uuid>().ok())
                    .expect("an echo names its event");
                *out.entry(of).or_default() += 1;
            }
        }
        out
    }

    /// Whether every consumer has handled each of `ids`.
    async fn all_handled(&self, models: &[InMemoryProjection<Seen>], ids: &[Uuid]) -> bool {
        let seen: usize = models.iter().map(|m| m.read(|m| m.times.len())).sum();
        let received = self.receiver.received.lock().unwrap().len();
        if seen < ids.len() || received < ids.len() {
            return false;
        }
        self.echoes().await.len() >= ids.len()
    }

    /// Every consumer handled each of `ids` exactly once in effect, each stream in order and
    /// in one model only.
    async fn check_exactly_once(&self, models: &[InMemoryProjection<Seen>], ids: &[Uuid]) {
        let mut times: BTreeMap<Uuid, u32> = BTreeMap::new();
        let mut streams = HashSet::new();
        for model in models {
            let seen = model.read(Seen::clone);
            for (id, n) in seen.times {
                *times.entry(id).or_default() += n;
            }
            for (stream, versions) in &seen.versions {
                assert!(
                    streams.insert(stream.clone()),
                    "{stream} went to one partition only"
                );
                let expected: Vec<u64> = (1..=versions.len() as u64).collect();
                assert_eq!(versions, &expected, "stream order in {stream}");
            }
        }
        assert_eq!(times.len(), ids.len(), "the read model saw every event");
        for id in ids {
            assert_eq!(times.get(id), Some(&1), "the read model applied {id} once");
        }
        let received = self.receiver.received.lock().unwrap().clone();
        for id in ids {
            assert!(received.contains_key(id), "the effect ran for {id}");
        }
        assert_eq!(received.len(), ids.len(), "no effect for anything else");
        let echoes = self.echoes().await;
        for id in ids {
            assert_eq!(
                echoes.get(id),
                Some(&1),
                "the saga's command for {id} was sent once"
            );
        }
        assert_eq!(echoes.len(), ids.len());
        let violations = self.echo.violations.lock().unwrap().clone();
        assert!(
            violations.is_empty(),
            "saga state matched its position: {violations:?}"
        );
    }
}

fn quick_options() -> RunnerOptions {
    RunnerOptions {
        batch_size: 7,
        lease_ttl: Duration::from_millis(600),
        idle_wait: (Duration::from_millis(2), Duration::from_millis(50)),
        retry_backoff: (Duration::from_millis(1), Duration::from_millis(20)),
        ..RunnerOptions::default()
    }
}

/// Polls `done` until it holds; fails after 60 s rather than hang.
async fn eventually<F: std::future::Future<Output = bool>>(
    what: &str,
    mut done: impl FnMut() -> F,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Retriable errors injected at random into every store call the runners make (reads,
/// commits, every lease call, the saga's commands) and into the read model's commits, before
/// or after they take effect, while events are appended: `run` never returns an error, and
/// every consumer ends with every event exactly once in effect.
pub async fn consumers_of_every_kind_survive_injected_store_faults<S: EventStore + Clone>(
    store: S,
) {
    let mut probes = Probes::new(&store);
    let models = [model()];
    let mut ids = probes.write(6, 10).await;
    let faults = Faults::new(0.15);
    let faulty = FaultyStore::new(store.clone(), faults.clone());
    // The saga's commands go through the faulty store too.
    probes.echo.store = Arc::new(faulty.clone());
    let runners = probes.runners(&faulty, &models[0], &quick_options(), faults.clone());
    let stop = CancellationToken::new();
    let tasks: Vec<_> = supervised(&runners)
        .into_iter()
        .map(|r| {
            let stop = stop.clone();
            tokio::spawn(async move { r.run_until(stop).await })
        })
        .collect();
    for _ in 0..4 {
        ids.extend(probes.write(6, 5).await);
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    eventually("every consumer handled every event", || {
        probes.all_handled(&models, &ids)
    })
    .await;
    let calls = [
        "read_all",
        "load_checkpoint",
        "save_checkpoint",
        "load_checkpoint_state",
        "save_checkpoint_state",
        "append",
        "commit",
    ];
    for call in calls {
        assert!(
            faults.injected_into(call) > 0,
            "faults were injected into `{call}`: {:?}",
            faults.injected()
        );
    }
    stop.cancel();
    for task in tasks {
        task.await
            .expect("a runner task")
            .expect("run never returns an error for a retriable fault");
    }
    faults.set_rate(0.0);
    for status in supervised(&runners).iter().map(|r| r.status()) {
        assert!(status.failures > 0, "the runner saw failures: {status:?}");
    }
    probes.check_exactly_once(&models, &ids).await;
}

/// Runs one consumer of each kind live on `store` while `chaos` is called `rounds` times
/// (every 50 ms or so, with events appended between calls): every runner recovers
/// unattended (`run` returns no error), and every event is handled exactly once in effect.
/// For a store's own fault tests, such as connections terminated by the server.
pub async fn consumers_of_every_kind_recover_from<S, F, Fut>(store: S, rounds: usize, mut chaos: F)
where
    S: EventStore + Clone,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let probes = Probes::new(&store);
    let models = [model()];
    let mut ids = probes.write(5, 4).await;
    let runners = probes.runners(&store, &models[0], &quick_options(), Faults::new(0.0));
    let stop = CancellationToken::new();
    let tasks: Vec<_> = supervised(&runners)
        .into_iter()
        .map(|r| {
            let stop = stop.clone();
            tokio::spawn(async move { r.run_until(stop).await })
        })
        .collect();
    for _ in 0..rounds {
        chaos().await;
        ids.extend(probes.write(5, 1).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eventually("every consumer handled every event", || {
        probes.all_handled(&models, &ids)
    })
    .await;
    stop.cancel();
    for task in tasks {
        task.await
            .expect("a runner task")
            .expect("run recovers by itself");
    }
    probes.check_exactly_once(&models, &ids).await;
}

/// Of two runners of the same consumer, one holds the lease and works while the other
/// waits; when the first dies in the middle of its work, the other takes over: every event
/// is handled exactly once in effect, for every kind.
pub async fn of_two_runners_of_every_kind_one_works_and_the_other_takes_over<
    S: EventStore + Clone,
>(
    store: S,
) {
    let probes = Probes::new(&store);
    let models = [model()];
    let mut ids = probes.write(4, 12).await;
    let options = quick_options();
    // No faults, but slow calls, so that A is stopped in the middle of its work.
    let slow = Faults::new(0.0);
    slow.set_delay(Duration::from_millis(2));
    let store = FaultyStore::new(store, slow.clone());
    let a_runners = probes.runners(&store, &models[0], &options, slow.clone());
    let b_runners = probes.runners(&store, &models[0], &options, slow);
    let a = Supervisor::start(supervised(&a_runners));
    eventually("A holds every lease", || async {
        a.statuses()
            .iter()
            .all(|s| s.lease_holder == Some(s.holder))
    })
    .await;
    let b = Supervisor::start(supervised(&b_runners));
    tokio::time::sleep(options.lease_ttl / 2).await;
    for s in b.statuses() {
        assert_eq!(
            s.events, 0,
            "while A holds the lease B handles nothing: {s:?}"
        );
        assert_ne!(s.lease_holder, Some(s.holder));
    }
    // More work arrives; A dies in the middle of it, leases held.
    let handled_by_a = |a: &Supervisor| a.statuses().iter().map(|s| s.events).sum::<u64>();
    let before = handled_by_a(&a);
    ids.extend(probes.write(4, 30).await);
    eventually("A is at work again", || async { handled_by_a(&a) > before }).await;
    a.abort().await;
    eventually("every consumer handled every event", || {
        probes.all_handled(&models, &ids)
    })
    .await;
    b.shutdown().await;
    for s in b.statuses() {
        assert!(s.events > 0, "B took over: {s:?}");
    }
    probes.check_exactly_once(&models, &ids).await;
}

/// Four runners per consumer, one per partition: each stream goes to one of them, each event
/// is handled once, in stream order.
pub async fn partitioned_runners_of_every_kind_handle_each_event_once<S: EventStore + Clone>(
    store: S,
) {
    let probes = Probes::new(&store);
    let ids = probes.write(16, 5).await;
    let models: Vec<_> = (0..4).map(|_| model()).collect();
    let mut runners = Vec::new();
    for (i, model) in models.iter().enumerate() {
        let options = RunnerOptions {
            partition: Some((i as u32, 4)),
            ..quick_options()
        };
        runners.extend(supervised(&probes.runners(
            &store,
            model,
            &options,
            Faults::new(0.0),
        )));
    }
    let supervisor = Supervisor::start(runners);
    eventually("every consumer handled every event", || {
        probes.all_handled(&models, &ids)
    })
    .await;
    supervisor.shutdown().await;
    for s in supervisor.statuses() {
        assert!(s.events > 0, "every partition had work: {s:?}");
    }
    probes.check_exactly_once(&models, &ids).await;
}

/// A poison event for a side effect and for a process manager is parked after its attempts;
/// under `Skip` the consumer moves on, under `Sequenced` it holds the event's stream (later
/// events of other streams go on); once the fault is fixed, retrying the parked events
/// completes them, each once.
pub async fn a_poison_event_is_parked_and_completed_by_a_retry<S: EventStore + Clone>(store: S) {
    let mut probes = Probes::new(&store);
    probes.write(3, 1).await;
    let poison = probes.write(3, 1).await[1];
    let later = probes.write(3, 1).await;
    let options = |policy| RunnerOptions {
        max_attempts: 3,
        dead_letters: Some(policy),
        ..quick_options()
    };
    for policy in [DeadLetterPolicy::Skip, DeadLetterPolicy::Sequenced] {
        probes.receiver.name = format!("receiver-{policy:?}").to_lowercase();
        probes.receiver.refuse = Refusals::default();
        probes.receiver.received = Arc::default();
        probes.receiver.refuse.ids.lock().unwrap().insert(poison);
        let effects = Effects::new(store.clone(), probes.receiver.clone());
        let runner = Runner::with_options(store.clone(), effects, options(policy));
        runner.catch_up().await.unwrap();
        let parked = runner.parked().await.unwrap();
        let attempts = probes.receiver.refuse.attempts.lock().unwrap()[&poison];
        assert!(attempts >= 3, "attempts before parking: {attempts}");
        let received = probes.receiver.received.lock().unwrap().clone();
        check_poison_outcome(policy, &parked, poison, &later, |id| {
            received.contains_key(id)
        });
        assert!(parked[0].error.contains("refuses"), "{:?}", parked[0].error);
        assert_eq!(runner.status().parked, parked.len() as u64);
        assert_eq!(
            runner.retry_parked().await.unwrap(),
            0,
            "still failing: stays parked"
        );
        probes.receiver.refuse.ids.lock().unwrap().clear();
        assert_eq!(runner.retry_parked().await.unwrap(), parked.len());
        assert!(runner.parked().await.unwrap().is_empty());
        assert_eq!(runner.status().parked, 0);
        let received = probes.receiver.received.lock().unwrap().clone();
        assert!(received.contains_key(&poison) && received.contains_key(&later[1]));
        assert_eq!(runner.catch_up().await.unwrap(), 0, "nothing left");
    }
    // The saga: the same under both policies; its default is sequenced.
    for policy in [DeadLetterPolicy::Skip, DeadLetterPolicy::Sequenced] {
        probes.echo.name = format!("echo-{policy:?}").to_lowercase();
        probes.echo.refuse = Refusals::default();
        probes.echo.refuse.ids.lock().unwrap().insert(poison);
        let process = Process::new(store.clone(), probes.echo.clone());
        let default = process.dead_letter_policy();
        let options = RunnerOptions {
            max_attempts: 3,
            dead_letters: (policy != default).then_some(policy),
            ..quick_options()
        };
        let runner = Runner::with_options(store.clone(), process, options);
        runner.catch_up().await.unwrap();
        let parked = runner.parked().await.unwrap();
        let attempts = probes.echo.refuse.attempts.lock().unwrap()[&poison];
        assert!(attempts >= 3, "attempts before parking: {attempts}");
        let echoes = probes.echoes_of(&probes.echo.name).await;
        check_poison_outcome(policy, &parked, poison, &later, |id| {
            echoes.contains_key(id)
        });
        probes.echo.refuse.ids.lock().unwrap().clear();
        assert_eq!(runner.retry_parked().await.unwrap(), parked.len());
        let echoes = probes.echoes_of(&probes.echo.name).await;
        assert_eq!(
            echoes.get(&poison),
            Some(&1),
            "completed once after the retry"
        );
        assert_eq!(echoes.get(&later[1]), Some(&1));
        assert_eq!(runner.catch_up().await.unwrap(), 0);
    }
    let violations = probes.echo.violations.lock().unwrap().clone();
    // Under `Skip` the retried event comes after its stream's later ones, by design; under
    // `Sequenced` the saga saw every stream in order.
    let out_of_order: Vec<_> = violations
        .iter()
        .filter(|v| !v.starts_with("echo-skip:"))
        .collect();
    assert!(out_of_order.is_empty(), "{violations:?}");
}

/// What a policy leaves after one poison event of stream 1 (`later`: one event per stream
/// after it): the poison event is parked and unhandled; under `Skip` its stream went on; under
/// `Sequenced` the stream's next event waits parked behind it; other streams went on.
fn check_poison_outcome(
    policy: DeadLetterPolicy,
    parked: &[crate::projection::DeadLetter],
    poison: Uuid,
    later: &[Uuid],
    handled: impl Fn(&Uuid) -> bool,
) {
    assert_eq!(
        parked.first().map(|l| l.event_id),
        Some(poison),
        "{parked:?}"
    );
    assert!(!handled(&poison));
    assert!(
        handled(&later[0]) && handled(&later[2]),
        "other streams went on"
    );
    if policy == DeadLetterPolicy::Skip {
        assert_eq!(parked.len(), 1, "{parked:?}");
        assert!(handled(&later[1]), "the consumer moved on");
    } else {
        assert_eq!(parked.len(), 2, "the stream's next event waits: {parked:?}");
        assert!(!handled(&later[1]), "held behind the poison event");
    }
}

/// A supervisor restarts a runner whose task panicked; it resumes from its checkpoint.
pub async fn a_supervisor_restarts_a_panicked_runner<S: EventStore + Clone>(store: S) {
    #[derive(Debug, Clone)]
    struct PanicsOnce(InMemoryProjection<Seen>, Arc<AtomicBool>);
    #[async_trait]
    impl Consumer for PanicsOnce {
        fn name(&self) -> &str {
            self.0.name()
        }
        fn filter(&self) -> LogFilter {
            self.0.filter()
        }
        async fn position(&self, name: &str) -> crate::Result<Option<Cursor>> {
            self.0.position(name).await
        }
        async fn commit(
            &self,
            events: Vec<RecordedEvent>,
            checkpoint: crate::projection::CheckpointMove,
        ) -> crate::Result<()> {
            if !events.is_empty() && !self.1.swap(true, Ordering::SeqCst) {
                panic!("a bug in the read model");
            }
            self.0.commit(events, checkpoint).await
        }
    }
    let probes = Probes::new(&store);
    let ids = probes.write(3, 4).await;
    let seen = model();
    let consumer = PanicsOnce(seen.clone(), Arc::default());
    let runner = Arc::new(Runner::with_options(
        store.clone(),
        consumer,
        quick_options(),
    ));
    let supervisor = Supervisor::start(vec![runner.clone() as Arc<dyn Supervised>]);
    eventually("the model saw every event", || async {
        seen.read(|m| m.times.len()) == ids.len()
    })
    .await;
    supervisor.shutdown().await;
    let status = runner.status();
    assert_eq!(status.restarts, 1, "{status:?}");
    assert!(seen.read(|m| m.times.values().all(|n| *n == 1)));
}

/// What the [`Ahead`] consumer saw: the batches prepared and committed, in order.
#[derive(Debug, Default)]
struct AheadLog {
    prepared: Vec<Vec<Uuid>>,
    /// Committed batches; a failed attempt is recorded as an empty batch.
    committed: Vec<Vec<Uuid>>,
    /// `prepare` was called while the first commit was still waiting.
    overlapped: bool,
}

/// A consumer whose first commit waits until the runner hands it the next batch to
/// prepare (proof that the two overlap), and whose second commit fails once.
struct Ahead<S> {
    name: String,
    store: S,
    filter: LogFilter,
    log: Arc<Mutex<AheadLog>>,
    /// Whether the first commit waits for `prepare` (up to 5 s).
    wait: bool,
}

#[async_trait]
impl<S: EventStore> Consumer for Ahead<S> {
    fn name(&self) -> &str {
        &self.name
    }
    fn filter(&self) -> LogFilter {
        self.filter.clone()
    }
    async fn position(&self, name: &str) -> crate::Result<Option<Cursor>> {
        self.store.load_checkpoint(name).await
    }
    fn prepare(&self, events: &[RecordedEvent]) {
        let mut log = self.log.lock().unwrap();
        log.prepared.push(events.iter().map(|e| e.id).collect());
    }
    async fn commit(
        &self,
        events: Vec<RecordedEvent>,
        to: crate::projection::CheckpointMove,
    ) -> crate::Result<()> {
        let attempt = self.log.lock().unwrap().committed.len();
        if attempt == 0 && self.wait {
            let deadline = Instant::now() + Duration::from_secs(5);
            while self.log.lock().unwrap().prepared.is_empty() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let mut log = self.log.lock().unwrap();
            log.overlapped = !log.prepared.is_empty();
        }
        if attempt == 1 {
            self.log.lock().unwrap().committed.push(Vec::new());
            return Err(crate::Error::retriable("the second commit fails once"));
        }
        self.store
            .save_checkpoint(&to.name, to.expected, to.new)
            .await?;
        let ids = events.iter().map(|e| e.id).collect();
        self.log.lock().unwrap().committed.push(ids);
        Ok(())
    }
}

/// After a full batch the runner reads the next one while the consumer commits, and hands
/// it to [`Consumer::prepare`] meanwhile; a batch read ahead of a commit that failed is
/// dropped, and the failed batch is handed again: every event is committed once, in log
/// order. With [`RunnerOptions::read_ahead`] off, nothing is prepared.
pub async fn the_runner_reads_ahead_while_a_batch_commits<S: EventStore + Clone>(store: S) {
    let category = format!("ahead{}", &Uuid::new_v4().simple().to_string()[..8]);
    for s in 0..5 {
        let stream = StreamId::new(&category, &format!("s{s}")).unwrap();
        let events = (0..10)
            .map(|i| NewEvent::new("ahead.happened", &serde_json::json!({ "i": i })).unwrap())
            .collect();
        store
            .append(&stream, ExpectedVersion::NoStream, events)
            .await
            .unwrap();
    }
    let filter = LogFilter::all().category(&category);
    let all: Vec<Uuid> = store
        .read_all(Cursor::START, &filter, 1000)
        .await
        .unwrap()
        .events
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(all.len(), 50);

    let run = |read_ahead: bool| {
        let log = Arc::new(Mutex::new(AheadLog::default()));
        // Boxed, as applications hold their consumers: the box forwards `prepare`.
        let consumer: Box<dyn Consumer> = Box::new(Ahead {
            name: format!("{category}-{read_ahead}"),
            store: store.clone(),
            filter: filter.clone(),
            log: log.clone(),
            wait: read_ahead,
        });
        let options = RunnerOptions {
            batch_size: 10,
            read_ahead,
            ..quick_options()
        };
        let runner = Runner::with_options(store.clone(), consumer, options);
        async move {
            assert_eq!(runner.catch_up().await.unwrap(), 50);
            std::mem::take(&mut *log.lock().unwrap())
        }
    };

    let log = run(true).await;
    assert!(
        log.overlapped,
        "the next batch was prepared during the first commit"
    );
    assert_eq!(
        log.committed[1],
        Vec::<Uuid>::new(),
        "the second commit failed"
    );
    let committed: Vec<Uuid> = log.committed.concat();
    assert_eq!(committed, all, "every event committed once, in log order");
    assert_eq!(
        log.committed[2],
        all[10..20],
        "the failed batch was handed again"
    );
    // Batch 2 during commit 1, batch 3 during the failed commit 2 (dropped), batch 3 again
    // during commit 2's retry, batches 4 and 5; after the last full batch, nothing more.
    let prepared: Vec<&[Uuid]> = log.prepared.iter().map(Vec::as_slice).collect();
    assert_eq!(
        prepared,
        [
            &all[10..20],
            &all[20..30],
            &all[20..30],
            &all[30..40],
            &all[40..50]
        ]
    );

    let log = run(false).await;
    assert!(
        log.prepared.is_empty(),
        "nothing is read ahead when it is off"
    );
    assert_eq!(log.committed.concat(), all);
}
