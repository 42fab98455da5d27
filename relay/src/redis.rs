//! Redis Streams: a sink that publishes exactly once in effect, and a consumer group.
//!
//! The sink keeps one stream per topic, `<prefix>:<topic>` (`story` of `story.published`),
//! with fields `id`, `type` (the public name), `payload` and `metadata` (version,
//! correlation, causation, source, cursor, time as JSON). One transaction per batch adds every
//! entry **and** sets the relay's position key `<prefix>:relay:<relay>` — `MULTI`/`EXEC`, so
//! the entries and the position are stored together or not at all — and it does so only if
//! the key still holds the position this sink last saw: the sink `WATCH`es the key, reads it,
//! and `EXEC` applies nothing if anyone changed it since (a compare-and-set that fences a
//! relay that lost its lease). The watch for the next batch is set, and the key read, in the
//! same round trip as the `EXEC`, so a batch costs one round trip, as a plain pipeline does. On start the sink reads the key and the relay
//! resumes after it. Durability is Redis's: with persistence off, a Redis restart loses the
//! streams and the key together.

use crate::inbox::{deliver, Inbox, Retries, Verdict};
use crate::sink::Sink;
use crate::wire;
use async_trait::async_trait;
use recount::integration::IntegrationEvent;
use recount::{Cursor, Result};
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamAutoClaimOptions, StreamId, StreamReadOptions, StreamReadReply};
use redis::AsyncCommands;
use std::sync::Mutex;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Where a Redis relay publishes.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// Server URL, e.g. `redis://127.0.0.1:6379`.
    pub url: String,
    /// Key prefix: streams are `<prefix>:<topic>`, the position `<prefix>:relay:<relay>`.
    pub prefix: String,
    /// The relay's name (its position key).
    pub relay: String,
}

impl RedisConfig {
    /// The stream key of a topic.
    pub fn stream(&self, topic: &str) -> String {
        format!("{}:{topic}", self.prefix)
    }

    /// The relay's position key.
    pub fn position_key(&self) -> String {
        format!("{}:relay:{}", self.prefix, self.relay)
    }
}

/// The fields of `e`'s stream entry, as the sink writes them: `id`, `type` (the public name),
/// `payload`, and `metadata` (version, correlation and causation ids, source, source version,
/// cursor and time, as JSON). A publisher that writes the same entries by hand writes these.
///
/// `id` and `metadata` are made here; the name and payload are borrowed from `e`.
pub fn entry_fields(e: &IntegrationEvent) -> EntryFields<'_> {
    EntryFields {
        id: e.id.to_string(),
        metadata: wire::meta_json(e),
        event: e,
    }
}

/// The fields of one stream entry ([`entry_fields`]); [`EntryFields::pairs`] gives them to
/// `XADD`.
#[derive(Debug)]
pub struct EntryFields<'a> {
    id: String,
    metadata: String,
    event: &'a IntegrationEvent,
}

impl EntryFields<'_> {
    /// `(field, value)` in order: `id`, `type`, `payload`, `metadata`.
    pub fn pairs(&self) -> [(&'static str, &str); 4] {
        [
            ("id", self.id.as_str()),
            ("type", self.event.name.as_str()),
            ("payload", self.event.payload.as_str()),
            ("metadata", self.metadata.as_str()),
        ]
    }
}

/// The sink's connection, and the position key's value as read right after this sink's last
/// `EXEC` under a fresh `WATCH` (`None`: no watch in place). With a watch in place, the next
/// batch needs no round trip of its own to check the key: if anyone changed it since, its
/// `EXEC` applies nothing.
#[derive(Debug)]
struct Watching {
    conn: MultiplexedConnection,
    watched: Option<Option<String>>,
}

/// A [`Sink`] to Redis Streams. See the [module docs](self).
#[derive(Debug)]
pub struct RedisSink {
    /// The sink's own connection: `WATCH` is a connection's state, so nothing else may send
    /// on it between the `WATCH` and the `EXEC` (the lock keeps one batch at a time).
    conn: tokio::sync::Mutex<Watching>,
    config: RedisConfig,
    /// The position key's value as last seen (`None`: read it).
    position: Mutex<Option<Option<Cursor>>>,
}

fn r(e: impl std::fmt::Display) -> recount::Error {
    wire::retriable("redis", e)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn connect(url: &str) -> Result<MultiplexedConnection> {
    let client = redis::Client::open(url).map_err(recount::Error::store)?;
    client.get_multiplexed_async_connection().await.map_err(r)
}

impl RedisSink {
    /// Connects.
    pub async fn connect(config: RedisConfig) -> Result<Self> {
        Ok(RedisSink {
            conn: tokio::sync::Mutex::new(Watching {
                conn: connect(&config.url).await?,
                watched: None,
            }),
            config,
            position: Mutex::new(None),
        })
    }
}

#[async_trait]
impl Sink for RedisSink {
    fn broker(&self) -> &'static str {
        "redis"
    }

    async fn published_through(&self) -> Result<Option<Cursor>> {
        if let Some(p) = *lock(&self.position) {
            return Ok(p);
        }
        let mut conn = self.conn.lock().await;
        let stored: Option<String> = conn.conn.get(self.config.position_key()).await.map_err(r)?;
        let at = stored.map(|s| s.parse::<Cursor>()).transpose()?;
        *lock(&self.position) = Some(at);
        Ok(at)
    }

    async fn publish(&self, events: &[IntegrationEvent]) -> Result<()> {
        let Some(expected) = *lock(&self.position) else {
            return Err(r("position not loaded"));
        };
        let through = wire::through(expected, events);
        let key = self.config.position_key();
        let expected = expected.map(|c| c.to_string()).unwrap_or_default();
        let mut guard = self.conn.lock().await;
        let w = &mut *guard;
        let watched = w.watched.take();
        let conn = &mut w.conn;
        let outcome: redis::RedisResult<std::result::Result<Option<String>, String>> = async {
            let current = match watched {
                Some(value) => value,
                // No watch in place: `WATCH` and the read in one round trip.
                None => {
                    let (current,): (Option<String>,) = redis::pipe()
                        .cmd("WATCH")
                        .arg(&key)
                        .ignore()
                        .get(&key)
                        .query_async(conn)
                        .await?;
                    current
                }
            };
            if current.as_deref().unwrap_or("") != expected {
                let () = redis::cmd("UNWATCH").query_async(conn).await?;
                return Ok(Err(current.unwrap_or_default()));
            }
            // MULTI, the entries and the position, EXEC; then WATCH and read the key again
            // for the next batch, all in one round trip.
            let mut pipe = redis::pipe();
            pipe.cmd("MULTI").ignore();
            // Most batches hold one topic or a few: each stream key is made once.
            let mut keys: Vec<(&str, String)> = Vec::new();
            for e in events {
                let topic = e.topic();
                let at = match keys.iter().position(|(t, _)| *t == topic) {
                    Some(at) => at,
                    None => {
                        keys.push((topic, self.config.stream(topic)));
                        keys.len() - 1
                    }
                };
                pipe.xadd(&keys[at].1, "*", &entry_fields(e).pairs())
                    .ignore();
            }
            pipe.set(&key, through.map(|c| c.to_string()).unwrap_or_default())
                .ignore();
            pipe.cmd("EXEC");
            pipe.cmd("WATCH").arg(&key).ignore();
            pipe.get(&key);
            let (reply, after): (redis::Value, Option<String>) = pipe.query_async(conn).await?;
            // `EXEC` answers nil, having applied nothing, when the key changed after `WATCH`.
            Ok(match reply {
                redis::Value::Nil => Err("(changed while publishing)".to_owned()),
                _ => Ok(after),
            })
        }
        .await;
        let outcome = outcome.map(|o| {
            o.map(|after| {
                // The watch now in place is good for the next batch if the key holds what
                // this batch wrote.
                if after.as_deref() == through.map(|c| c.to_string()).as_deref() {
                    guard.watched = Some(after);
                }
            })
        });
        match outcome {
            Ok(Ok(())) => {
                *lock(&self.position) = Some(through);
                Ok(())
            }
            Ok(Err(current)) => {
                *lock(&self.position) = None;
                Err(r(format!(
                    "fenced: the position key holds `{current}`, not `{expected}`: another relay published"
                )))
            }
            Err(e) => {
                // Stored or not: read the position again before going on.
                *lock(&self.position) = None;
                Err(r(e))
            }
        }
    }
}

/// A member of a consumer group on one of a relay's streams.
#[derive(Debug, Clone)]
pub struct RedisConsumerConfig {
    /// Server URL.
    pub url: String,
    /// The stream key (`<prefix>:<topic>`).
    pub stream: String,
    /// The group: its members share the stream's entries.
    pub group: String,
    /// This member's name, unique in the group.
    pub consumer: String,
    /// How long an entry stays unacknowledged before any member claims it (`XAUTOCLAIM`):
    /// a member that died mid-entry, or a failed entry's retry delay.
    pub claim_idle: Duration,
    /// Retries and dead letters.
    pub retries: Retries,
    /// The stream that dead-lettered entries are copied to, with an `error` field.
    pub dead_letter_stream: String,
}

/// Receives integration events from a consumer group and hands them to an [`Inbox`]: `XACK`
/// after the inbox committed; a failed entry stays pending and is claimed again
/// (`XAUTOCLAIM`) after [`RedisConsumerConfig::claim_idle`]; after
/// [`Retries::max_deliveries`] deliveries it is copied to the dead-letter stream and acked.
#[derive(Debug)]
pub struct RedisConsumer {
    conn: MultiplexedConnection,
    config: RedisConsumerConfig,
}

impl RedisConsumer {
    /// Connects and creates the group (from the stream's start) if missing.
    pub async fn connect(config: RedisConsumerConfig) -> Result<Self> {
        let mut conn = connect(&config.url).await?;
        let created: redis::RedisResult<()> = conn
            .xgroup_create_mkstream(&config.stream, &config.group, "0")
            .await;
        if let Err(e) = created {
            if e.code() != Some("BUSYGROUP") {
                return Err(r(e));
            }
        }
        Ok(RedisConsumer { conn, config })
    }

    /// Receives until `shutdown` is cancelled; returns on a connection failure.
    pub async fn run<I: Inbox + ?Sized>(
        &self,
        inbox: &I,
        shutdown: CancellationToken,
    ) -> Result<()> {
        while !shutdown.is_cancelled() {
            let claimed = self.claim().await?;
            for entry in claimed {
                self.handle(inbox, entry).await?;
            }
            let mut conn = self.conn.clone();
            let c = &self.config;
            let opts = StreamReadOptions::default()
                .group(&c.group, &c.consumer)
                .count(100)
                .block(200);
            let keys = [&c.stream];
            let read = conn.xread_options::<_, _, Option<StreamReadReply>>(&keys, &[">"], &opts);
            let reply = tokio::select! {
                reply = read => reply.map_err(r)?,
                () = shutdown.cancelled() => return Ok(()),
            };
            for key in reply.map(|r| r.keys).unwrap_or_default() {
                for entry in key.ids {
                    self.handle(inbox, entry).await?;
                }
            }
        }
        Ok(())
    }

    async fn claim(&self) -> Result<Vec<StreamId>> {
        let c = &self.config;
        let mut conn = self.conn.clone();
        let idle = c.claim_idle.as_millis() as usize;
        let reply: redis::streams::StreamAutoClaimReply = conn
            .xautoclaim_options(
                &c.stream,
                &c.group,
                &c.consumer,
                idle,
                "0-0",
                StreamAutoClaimOptions::default().count(100),
            )
            .await
            .map_err(r)?;
        Ok(reply.claimed)
    }

    async fn deliveries(&self, id: &str) -> Result<u64> {
        let c = &self.config;
        let mut conn = self.conn.clone();
        let pending: redis::streams::StreamPendingCountReply = conn
            .xpending_count(&c.stream, &c.group, id, id, 1)
            .await
            .map_err(r)?;
        Ok(pending.ids.first().map_or(1, |p| p.times_delivered as u64))
    }

    async fn handle<I: Inbox + ?Sized>(&self, inbox: &I, entry: StreamId) -> Result<()> {
        let field = |k: &str| entry.get::<String>(k).unwrap_or_default();
        let event = wire::from_fields(
            &field("id"),
            &field("type"),
            &field("payload"),
            &field("metadata"),
        );
        let delivery = self.deliveries(&entry.id).await?;
        let c = &self.config;
        let mut conn = self.conn.clone();
        match deliver(inbox, event, delivery, &c.retries).await {
            // Left pending: claimed again once idle for `claim_idle`.
            Verdict::Retry => Ok(()),
            Verdict::Ack => conn
                .xack(&c.stream, &c.group, &[&entry.id])
                .await
                .map_err(r),
            Verdict::DeadLetter(why) => {
                let fields = [
                    ("id", field("id")),
                    ("type", field("type")),
                    ("payload", field("payload")),
                    ("metadata", field("metadata")),
                    ("error", why),
                    ("group", c.group.clone()),
                ];
                let _: String = conn
                    .xadd(&c.dead_letter_stream, "*", &fields)
                    .await
                    .map_err(r)?;
                conn.xack(&c.stream, &c.group, &[&entry.id])
                    .await
                    .map_err(r)
            }
        }
    }
}
