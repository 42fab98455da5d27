//! What the broker tests share: a domain with mapped and unmapped events, a recording
//! handler, the broker abstraction the scenarios run on, and the crash and consumer
//! scenarios themselves (in `scenarios.rs`).
#![allow(dead_code, unreachable_pub, missing_docs)]

pub mod scenarios;

use async_trait::async_trait;
use recount::integration::{IntegrationEvent, IntegrationMap};
use recount::{BoxError, EventStore, ExpectedVersion, NewEvent, StreamId};
use recount_relay::inbox::{Inbox, SqliteHandler};
use recount_relay::Sink;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// `true` when `port` on 127.0.0.1 answers. Otherwise, under `CI` the test fails loudly; on
/// a developer's machine it prints `skipped: <test>: <why>` and the caller returns.
pub fn broker_up(test: &str, broker: &str, port: u16) -> bool {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    match std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(1)) {
        Ok(_) => true,
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("{test}: {broker} on 127.0.0.1:{port} is unreachable under CI: {e}")
        }
        Err(e) => {
            println!("skipped: {test}: {broker} on 127.0.0.1:{port} is unreachable: {e}");
            false
        }
    }
}

/// A name of this test's own (streams, keys, queues, exchanges).
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", &Uuid::new_v4().simple().to_string()[..12])
}

/// The domain's public contract: notes published and tagged leave the service, users
/// registered too; drafts never do.
pub fn mapping() -> IntegrationMap {
    IntegrationMap::new()
        .on("note.published", "note.published", 1, |e| {
            let p: serde_json::Value = e.payload_as()?;
            Ok(Some(json!({ "note": e.stream.id(), "n": p["n"] })))
        })
        .on("note.tagged", "note.tagged", 2, |e| {
            let p: serde_json::Value = e.payload_as()?;
            Ok(Some(json!({ "note": e.stream.id(), "n": p["n"] })))
        })
        .on("user.registered", "user.registered", 1, |e| {
            Ok(Some(json!({ "user": e.stream.id() })))
        })
}

/// Appends event number `n`: a draft (unmapped), a publish or a tag on one of 7 notes, or a
/// user registration. Returns its id when the mapping publishes it.
pub async fn append_one(store: &impl EventStore, n: u64) -> Option<Uuid> {
    let (stream, kind) = match n % 5 {
        0 => (
            StreamId::new("user", &format!("u{n}")).unwrap(),
            "user.registered",
        ),
        1 => (
            StreamId::new("note", &format!("n{}", n % 7)).unwrap(),
            "note.drafted",
        ),
        2 | 3 => (
            StreamId::new("note", &format!("n{}", n % 7)).unwrap(),
            "note.published",
        ),
        _ => (
            StreamId::new("note", &format!("n{}", n % 7)).unwrap(),
            "note.tagged",
        ),
    };
    let e = NewEvent::new(kind, &json!({ "n": n, "secret": "domain only" })).unwrap();
    let id = e.id;
    store
        .append(&stream, ExpectedVersion::Any, vec![e])
        .await
        .unwrap();
    (kind != "note.drafted").then_some(id)
}

/// A broker as the scenarios see it, with names of one test's own.
#[async_trait]
pub trait Broker: Send + Sync + 'static {
    /// `nats`, `redis` or `rabbitmq`.
    fn name(&self) -> &'static str;
    /// Exactly once in effect (else at least once).
    fn exactly_once(&self) -> bool;
    /// Environment for a child process to rebuild this broker with the same names.
    fn to_env(&self) -> String;
    /// A sink for a relay named `relay`.
    async fn sink(&self, relay: &str) -> Arc<dyn Sink>;
    /// Prepares receiving before anything is published (a queue bound to the exchange).
    async fn prepare(&self) {}
    /// Everything the broker holds from the relay, in broker order (per topic stream for
    /// Redis, concatenated).
    async fn published(&self) -> Vec<IntegrationEvent>;
    /// Runs consumer `member` of the test's group until `stop`.
    async fn consume(
        &self,
        member: &str,
        inbox: Arc<dyn Inbox>,
        stop: CancellationToken,
    ) -> recount::Result<()>;
    /// The ids of dead-lettered events.
    async fn dead_letters(&self) -> Vec<Uuid>;
    /// Deletes what the test made on the broker.
    async fn cleanup(&self) {}
}

/// What a [`Recorder`] does with one event.
#[derive(Debug, Clone, Copy)]
pub enum Rule {
    /// Fails this many times, then succeeds.
    FailTimes(u32),
    /// Always fails.
    AlwaysFail,
}

/// A handler writing one row per handled event into `handled`, failing as its rules say and
/// counting attempts.
#[derive(Debug, Default)]
pub struct Recorder {
    pub name: String,
    pub rules: HashMap<Uuid, Rule>,
    pub attempts: Mutex<HashMap<Uuid, u32>>,
}

impl Recorder {
    pub fn attempts(&self, id: Uuid) -> u32 {
        self.attempts.lock().unwrap().get(&id).copied().unwrap_or(0)
    }
}

/// A [`Recorder`] the test keeps a handle on.
#[derive(Debug, Clone)]
pub struct Shared(pub Arc<Recorder>);

impl SqliteHandler for Shared {
    fn name(&self) -> &str {
        &self.0.name
    }
    fn handle(&self, tx: &rusqlite::Transaction<'_>, e: &IntegrationEvent) -> Result<(), BoxError> {
        let this = &self.0;
        let attempt = {
            let mut a = this.attempts.lock().unwrap();
            let n = a.entry(e.id).or_default();
            *n += 1;
            *n
        };
        match this.rules.get(&e.id) {
            Some(Rule::AlwaysFail) => return Err("this event always fails".into()),
            Some(Rule::FailTimes(k)) if attempt <= *k => {
                return Err(format!("failure {attempt} of {k}").into())
            }
            _ => {}
        }
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS handled (event_id TEXT NOT NULL, name TEXT NOT NULL)",
        )?;
        tx.execute(
            "INSERT INTO handled (event_id, name) VALUES (?1, ?2)",
            (e.id.to_string(), &e.name),
        )?;
        Ok(())
    }
}

/// Rows of `handled` per event id.
pub fn handled_counts(conn: &rusqlite::Connection) -> rusqlite::Result<HashMap<Uuid, u32>> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS handled (event_id TEXT NOT NULL, name TEXT NOT NULL)",
    )?;
    let mut st = conn.prepare("SELECT event_id, count(*) FROM handled GROUP BY event_id")?;
    let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?)))?;
    let mut out = HashMap::new();
    for row in rows {
        let (id, n) = row?;
        out.insert(id.parse().unwrap(), n);
    }
    Ok(out)
}

/// Polls `check` every 50 ms until it holds or `secs` pass.
pub async fn eventually<F, Fut>(secs: u64, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < until {
        if check().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}
