//! A projection that follows its active version: a switch made elsewhere stops the old
//! version's runner (lease released) and starts the new one's, which builds from the start,
//! with no restart of the process.

use recount::projection::{
    switch_active_version, ActiveVersion, InMemoryProjection, Lease, ReadModel, Runner,
    RunnerOptions, Supervised, Supervisor,
};
use recount::{EventStore, ExpectedVersion, InMemoryStore, NewEvent, RecordedEvent, StreamId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Default)]
struct Count(u64);

impl ReadModel for Count {
    fn apply(&mut self, _: &RecordedEvent) -> recount::Result<()> {
        self.0 += 1;
        Ok(())
    }
}

async fn append(store: &InMemoryStore, n: u64) {
    let s = StreamId::new("thing", &uuid::Uuid::now_v7().to_string()).unwrap();
    let events = (0..n)
        .map(|i| NewEvent::new("thing.happened", &serde_json::json!({ "i": i })).unwrap())
        .collect();
    store
        .append(&s, ExpectedVersion::NoStream, events)
        .await
        .unwrap();
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_stops_the_old_version_and_runs_the_new_one() {
    let store = InMemoryStore::new();
    append(&store, 5).await;
    // Every version's projection, kept to look at.
    let built: Arc<Mutex<HashMap<u32, InMemoryProjection<Count>>>> = Arc::default();
    let made = built.clone();
    let runner_store = store.clone();
    let slot = ActiveVersion::new(store.clone(), "count", move |v| {
        let p = InMemoryProjection::<Count>::new("count").with_version(v);
        made.lock().unwrap().insert(v, p.clone());
        let options = RunnerOptions {
            idle_wait: (Duration::from_millis(5), Duration::from_millis(20)),
            ..RunnerOptions::default()
        };
        Ok(Arc::new(Runner::with_options(runner_store.clone(), p, options)) as Arc<dyn Supervised>)
    })
    .await
    .unwrap()
    .check_every(Duration::from_millis(20));
    let slot = Arc::new(slot);
    assert_eq!(slot.version(), 1);
    let supervisor = Supervisor::start(vec![slot.clone() as Arc<dyn Supervised>]);
    let count = |v: u32| built.lock().unwrap().get(&v).map_or(0, |p| p.read(|c| c.0));
    until("v1 has the first 5", || count(1) == 5).await;
    let v1_lease = slot.status().checkpoint_name;
    assert!(Lease::holder_of(&store, &v1_lease).await.unwrap().is_some());

    // A rebuild elsewhere switched readers to version 2.
    switch_active_version(&store, "count", None, 2)
        .await
        .unwrap();
    until("the slot follows the switch", || slot.version() == 2).await;
    assert!(
        ActiveVersion::wait_until_stopped(&store, &v1_lease, Duration::from_secs(5))
            .await
            .unwrap(),
        "v1's runner stopped and released its lease"
    );
    append(&store, 3).await;
    until("v2 built everything", || count(2) == 8).await;
    assert_eq!(count(1), 5, "v1 no longer runs");
    assert_eq!(slot.status().version, 2);
    assert_ne!(slot.status().checkpoint_name, v1_lease);
    supervisor.shutdown().await;
    assert!(Lease::holder_of(&store, &slot.status().checkpoint_name)
        .await
        .unwrap()
        .is_none());
}
