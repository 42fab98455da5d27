//! StoryChain scaled out on one PostgreSQL database, as real child processes: two `serve
//! --no-workers` API processes and two `worker` processes under a steady stream of API
//! requests from several tasks.
//!
//! - Takeover: one worker is killed with SIGKILL mid-run; the other takes its consumers over
//!   (each consumer's lease moves to it within two lease TTLs), nothing acknowledged is lost
//!   (every story the API created is in the catalogue) and nothing is doubled (no level or
//!   badge recorded twice, one notification per event and user), and every read model equals
//!   the one a single process builds from the same log.
//! - Partitions: with `--partition 0/2` and `--partition 1/2`, each partition of each process
//!   manager is held by one worker and the two workers hold different ones; both partitions
//!   run to the end of the log, and the read models again equal a single process's.
//!
//! Each test uses a database of its own. Without a PostgreSQL server the tests print one
//! line and pass, unless `CI` is set.

use recount::projection::{checkpoint_name, Lease, Runner};
use recount::{Cursor, EventStore, LogFilter, RecordedEvent};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use storychain::readmodel::{projection, ReadModels, PROJECTIONS};
use storychain::{Database, StoryChain};

/// A child process, killed with SIGKILL when dropped (a failed test leaves nothing behind).
struct Proc {
    child: Child,
    name: &'static str,
}

impl Proc {
    /// `storychain <args>` on `url`, its log drained on a thread of its own.
    fn spawn(
        name: &'static str,
        url: &str,
        args: &[&str],
    ) -> (Proc, std::sync::mpsc::Receiver<String>) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_storychain"))
            .args(args)
            .env("DATABASE_URL", url)
            // Five processes per test on one server: 8 connections each.
            .env("STORYCHAIN_DB_POOL", "8")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the child starts");
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        (Proc { child, name }, rx)
    }

    /// `serve --no-workers` on a free port; returns it with its base URL.
    fn serve(name: &'static str, url: &str) -> (Proc, String) {
        let (proc, log) = Self::spawn(
            name,
            url,
            &["serve", "--no-workers", "--addr", "127.0.0.1:0"],
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(line) = log.recv_timeout(Duration::from_millis(200)) {
                if line.contains("storychain serving") {
                    let at = line.find("127.0.0.1:").expect("the bound address");
                    let port: String = line[at + 10..]
                        .chars()
                        .take_while(char::is_ascii_digit)
                        .collect();
                    std::thread::spawn(move || log.iter().for_each(drop));
                    return (proc, format!("http://127.0.0.1:{port}"));
                }
            }
        }
        panic!("{name} never said it was serving");
    }

    /// `worker [--partition p]`, once it says it runs.
    fn worker(name: &'static str, url: &str, partition: Option<&str>) -> Proc {
        let mut args = vec!["worker"];
        if let Some(p) = partition {
            args.extend(["--partition", p]);
        }
        let (proc, log) = Self::spawn(name, url, &args);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(line) = log.recv_timeout(Duration::from_millis(200)) {
                if line.contains("storychain worker running") {
                    std::thread::spawn(move || log.iter().for_each(drop));
                    return proc;
                }
            }
        }
        panic!("{name} never said it was running");
    }

    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }

    /// SIGTERM; the exit status once it stopped.
    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "{} ignored SIGTERM", self.name);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the load acknowledged.
#[derive(Default)]
struct Acked {
    stories: Vec<String>,
    requests: u64,
}

/// Several tasks sending requests to the API processes in turn until `stop`: users register
/// and follow each other, write stories with chapters, and vote.
async fn load(bases: Vec<String>, stop: Arc<AtomicBool>, acked: Arc<Mutex<Acked>>) {
    let client = Client::new();
    let mut tasks = Vec::new();
    for t in 0..4 {
        let (client, bases, stop, acked) =
            (client.clone(), bases.clone(), stop.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            let mut users: Vec<(String, String)> = Vec::new();
            let mut stories: Vec<String> = Vec::new();
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let base = &bases[i % bases.len()];
                let post = |path: String, token: Option<String>, body: Value| {
                    let mut r = client.post(format!("{base}{path}")).json(&body);
                    if let Some(t) = token {
                        r = r.bearer_auth(t);
                    }
                    r.send()
                };
                let name = format!("u{t}x{i}");
                let r = post("/users".into(), None, json!({ "username": name, "display_name": name }))
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::CREATED);
                let v: Value = r.json().await.unwrap();
                let me = (v["user_id"].as_str().unwrap().to_owned(), v["token"].as_str().unwrap().to_owned());
                if let Some((followee, _)) = users.last() {
                    let r = post("/users/me/following".into(), Some(me.1.clone()), json!({ "user_id": followee }))
                        .await
                        .unwrap();
                    assert!(r.status().is_success(), "follow: {}", r.status());
                }
                let r = post(
                    "/stories".into(),
                    Some(me.1.clone()),
                    json!({ "title": format!("Story {t}.{i}"), "genre": "fantasy", "visibility": "public" }),
                )
                .await
                .unwrap();
                assert_eq!(r.status(), StatusCode::CREATED);
                let story = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
                let r = post(
                    format!("/stories/{story}/chapters"),
                    Some(me.1.clone()),
                    json!({ "title": "One", "content": "it begins here" }),
                )
                .await
                .unwrap();
                assert_eq!(r.status(), StatusCode::CREATED);
                for other in stories.iter().rev().take(3) {
                    let r = client
                        .put(format!("{base}/votes"))
                        .bearer_auth(&me.1)
                        .json(&json!({ "target": { "story_id": other }, "value": 1 }))
                        .send()
                        .await
                        .unwrap();
                    assert!(r.status().is_success(), "vote: {}", r.status());
                }
                stories.push(story.clone());
                users.push(me);
                let mut a = acked.lock().unwrap();
                a.stories.push(story);
                a.requests += 4 + stories.len().min(3) as u64;
                i += 1;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// Waits until every projection and process manager has handled the whole log and the log
/// stopped growing (managers write events of their own).
async fn settled(app: &StoryChain, checkpoints: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = None;
    loop {
        let head = app
            .store()
            .read_all(Cursor::START, &LogFilter::all(), usize::MAX)
            .await
            .unwrap()
            .last_seen;
        let mut behind = Vec::new();
        for name in checkpoints {
            let at = app.store().load_checkpoint(name).await.unwrap();
            if at.is_none_or(|at| at < head) {
                behind.push(name.clone());
            }
        }
        let lag: u64 = app
            .projection_status()
            .await
            .unwrap()
            .iter()
            .map(|s| s.lag)
            .sum();
        if lag == 0 && behind.is_empty() && last == Some(head) {
            return;
        }
        last = Some(head);
        assert!(
            Instant::now() < deadline,
            "never settled: projections lag {lag}, behind the head: {behind:?}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

async fn log(app: &StoryChain) -> Vec<RecordedEvent> {
    let mut out = Vec::new();
    let mut after = Cursor::START;
    loop {
        let batch = app
            .store()
            .read_all(after, &LogFilter::all(), 1000)
            .await
            .unwrap();
        if batch.events.is_empty() && batch.last_seen == after {
            return out;
        }
        after = batch.last_seen;
        out.extend(batch.events);
    }
}

/// Every read model as the workers built it equals a build by this process, from scratch,
/// of the same log (version 99, dropped after).
async fn models_equal_a_single_process_build(app: &StoryChain) {
    let models = ReadModels::open(app.store()).await.unwrap();
    for name in PROJECTIONS {
        let live = models.dump(name, 1).await.unwrap();
        assert!(!live.is_empty(), "{name} is empty");
        let fresh = projection(app.store(), name, 99).unwrap();
        Runner::new(app.store().clone(), fresh)
            .catch_up()
            .await
            .unwrap();
        let built = models.dump(name, 99).await.unwrap();
        assert_eq!(live.len(), built.len(), "{name}: rows");
        assert!(
            live == built,
            "{name}: the live model differs from a single process's build"
        );
        projection(app.store(), name, 99)
            .unwrap()
            .drop_storage()
            .await
            .unwrap();
    }
}

/// No level or badge recorded twice for a user: the awards manager's commands, re-run after
/// a takeover, were idempotent.
fn nothing_doubled(events: &[RecordedEvent]) -> BTreeMap<&'static str, usize> {
    let mut levels = BTreeSet::new();
    let mut badges = BTreeSet::new();
    let mut counts = BTreeMap::new();
    for e in events {
        let p: Value = serde_json::from_str(&e.payload).unwrap();
        match e.event_type.as_str() {
            "user.leveled_up" => {
                assert!(
                    levels.insert((e.stream.to_string(), p["level"].to_string())),
                    "level recorded twice: {e:?}"
                );
                *counts.entry("levels").or_default() += 1;
            }
            "user.badge_earned" => {
                assert!(
                    badges.insert((e.stream.to_string(), p["badge"].to_string())),
                    "badge recorded twice: {e:?}"
                );
                *counts.entry("badges").or_default() += 1;
            }
            _ => {}
        }
    }
    counts
}

/// The checkpoints of the process managers and webhook delivery, per partition.
fn manager_checkpoints(partitions: Option<u32>) -> Vec<String> {
    let names = [
        "process:pr-merge",
        "process:milestones",
        "process:awards",
        "effect:webhooks",
    ];
    match partitions {
        None => names.iter().map(|n| (*n).to_owned()).collect(),
        Some(n) => names
            .iter()
            .flat_map(|name| (0..n).map(move |i| format!("{name}:p{i}of{n}")))
            .collect(),
    }
}

/// A fresh database (`None`, after saying why, without a server), its URL, and the app on it.
async fn database(
    test: &str,
) -> Option<(recount_postgres::testing::TestDatabase, String, StoryChain)> {
    let server = recount_postgres::testing::server_or_skip(test)?;
    let db = recount_postgres::testing::TestDatabase::create(&server).await;
    let url = db.url();
    let app = StoryChain::open_database(&Database::Postgres(url.clone()))
        .await
        .unwrap();
    Some((db, url, app))
}

/// The tests of this file run one at a time: each starts five processes on the server.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_worker_is_replaced_and_nothing_is_lost_or_doubled() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some((db, url, app)) = database("scale_out takeover").await else {
        return;
    };
    let (api_a, base_a) = Proc::serve("api-a", &url);
    let (api_b, base_b) = Proc::serve("api-b", &url);
    // Worker A starts first and takes every lease; B waits beside it.
    let worker_a = Proc::worker("worker-a", &url, None);
    let leases = [
        "projection:catalogue:v1",
        "projection:profiles:v1",
        "projection:inbox:v1",
        "process:awards",
        "effect:webhooks",
    ];
    let held = |app: StoryChain| async move {
        let mut now = BTreeMap::new();
        for name in leases {
            now.insert(name, Lease::holder_of(app.store(), name).await.unwrap());
        }
        now
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while held(app.clone()).await.values().any(Option::is_none) {
        assert!(Instant::now() < deadline, "worker A never took its leases");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let worker_b = Proc::worker("worker-b", &url, None);

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Acked::default()));
    let driver = tokio::spawn(load(vec![base_a, base_b], stop.clone(), acked.clone()));
    tokio::time::sleep(Duration::from_secs(5)).await;

    let before = held(app.clone()).await;
    let a_holders: BTreeSet<u64> = before.values().flatten().copied().collect();
    worker_a.kill();
    let killed_at = Instant::now();
    // B holds every lease within two TTLs (5 s each) of the kill, while requests keep
    // coming.
    let taken_over = loop {
        let now = held(app.clone()).await;
        if now
            .values()
            .all(|h| h.is_some_and(|h| !a_holders.contains(&h)))
        {
            break killed_at.elapsed();
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(10),
            "worker B did not take over within two lease TTLs: before {before:?}, now {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    driver.await.unwrap();
    let (stories, requests) = {
        let a = acked.lock().unwrap();
        (a.stories.clone(), a.requests)
    };
    eprintln!(
        "takeover after {taken_over:?}; {requests} requests acknowledged, {} stories",
        stories.len()
    );
    assert!(
        stories.len() > 20,
        "the load ran: {} stories",
        stories.len()
    );

    let mut checkpoints = manager_checkpoints(None);
    checkpoints.extend(PROJECTIONS.iter().map(|p| checkpoint_name(p, 1, None)));
    settled(&app, &checkpoints).await;
    assert!(
        worker_b.terminate().success(),
        "the worker stops cleanly on SIGTERM"
    );
    assert!(api_a.terminate().success());
    assert!(api_b.terminate().success());
    // SIGTERM released the leases at once.
    for name in leases {
        assert_eq!(
            Lease::holder_of(app.store(), name).await.unwrap(),
            None,
            "{name}"
        );
    }

    // Nothing acknowledged lost: every story the API created is in the catalogue.
    let models = ReadModels::open(app.store()).await.unwrap();
    for story in &stories {
        assert!(
            models.story(story).await.unwrap().is_some(),
            "story {story} is missing"
        );
    }
    let events = log(&app).await;
    let awards = nothing_doubled(&events);
    assert!(
        awards.get("badges").copied().unwrap_or(0) > 0,
        "the awards manager ran: {awards:?}"
    );
    models_equal_a_single_process_build(&app).await;
    drop(app);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partitioned_workers_split_the_process_managers_and_build_what_one_process_builds() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some((db, url, app)) = database("scale_out partitions").await else {
        return;
    };
    let (api, base) = Proc::serve("api", &url);
    let zero = Proc::worker("worker-0of2", &url, Some("0/2"));
    let one = Proc::worker("worker-1of2", &url, Some("1/2"));

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Acked::default()));
    let driver = tokio::spawn(load(vec![base], stop.clone(), acked.clone()));
    tokio::time::sleep(Duration::from_secs(6)).await;
    stop.store(true, Ordering::Relaxed);
    driver.await.unwrap();
    let stories = acked.lock().unwrap().stories.clone();
    assert!(
        stories.len() > 10,
        "the load ran: {} stories",
        stories.len()
    );

    let mut checkpoints = manager_checkpoints(Some(2));
    checkpoints.extend(PROJECTIONS.iter().map(|p| checkpoint_name(p, 1, None)));
    settled(&app, &checkpoints).await;
    // Each partition of each manager is held by one worker, the two partitions by two.
    for name in ["process:awards", "process:milestones", "effect:webhooks"] {
        let p0 = Lease::holder_of(app.store(), &format!("{name}:p0of2"))
            .await
            .unwrap();
        let p1 = Lease::holder_of(app.store(), &format!("{name}:p1of2"))
            .await
            .unwrap();
        assert!(p0.is_some() && p1.is_some(), "{name}: {p0:?} {p1:?}");
        assert_ne!(p0, p1, "{name}: both partitions in one worker");
    }
    // Both partitions ran to the end of the log.
    let head = log(&app).await.last().unwrap().cursor;
    for name in manager_checkpoints(Some(2)) {
        let at = app.store().load_checkpoint(&name).await.unwrap();
        assert!(
            at.is_some_and(|at| at >= head),
            "{name} at {at:?}, the log at {head}"
        );
    }
    assert!(zero.terminate().success());
    assert!(one.terminate().success());
    assert!(api.terminate().success());
    let events = log(&app).await;
    nothing_doubled(&events);
    models_equal_a_single_process_build(&app).await;
    drop(app);
    db.drop().await;
}
