//! Redis Streams: the relay publishes each mapped event exactly once in effect, across
//! SIGKILLs and lost checkpoints; the consumer group retries, dead-letters and hands every
//! event to an inbox once in effect.
#![cfg(all(feature = "redis", feature = "sqlite", feature = "postgres"))]

mod common;

use async_trait::async_trait;
use common::scenarios::{self, CHILD_BROKER_ENV, CHILD_ENV};
use common::Broker;
use recount::integration::IntegrationEvent;
use recount_relay::inbox::{Inbox, Retries};
use recount_relay::redis::{RedisConfig, RedisConsumer, RedisConsumerConfig, RedisSink};
use recount_relay::Sink;
use redis::AsyncCommands;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const URL: &str = "redis://127.0.0.1:6379";

struct Redis {
    prefix: String,
}

impl Redis {
    fn new() -> Self {
        Redis {
            prefix: common::unique("t"),
        }
    }
    fn from_env() -> Self {
        Redis {
            prefix: std::env::var(CHILD_BROKER_ENV).unwrap(),
        }
    }
    fn config(&self, relay: &str) -> RedisConfig {
        RedisConfig {
            url: URL.into(),
            prefix: self.prefix.clone(),
            relay: relay.into(),
        }
    }
    async fn conn(&self) -> redis::aio::MultiplexedConnection {
        let client = redis::Client::open(URL).unwrap();
        client.get_multiplexed_async_connection().await.unwrap()
    }
    async fn entries(&self, key: &str) -> Vec<HashMap<String, String>> {
        let mut conn = self.conn().await;
        let reply: redis::streams::StreamRangeReply = conn.xrange_all(key).await.unwrap();
        reply
            .ids
            .iter()
            .map(|e| {
                e.map
                    .keys()
                    .map(|k| (k.clone(), e.get::<String>(k).unwrap()))
                    .collect()
            })
            .collect()
    }
    fn dead_letter_key(&self) -> String {
        format!("{}:deadletter", self.prefix)
    }
}

#[async_trait]
impl Broker for Redis {
    fn name(&self) -> &'static str {
        "redis"
    }
    fn exactly_once(&self) -> bool {
        true
    }
    fn to_env(&self) -> String {
        self.prefix.clone()
    }
    async fn sink(&self, relay: &str) -> Arc<dyn Sink> {
        Arc::new(RedisSink::connect(self.config(relay)).await.unwrap())
    }
    async fn published(&self) -> Vec<IntegrationEvent> {
        let mut out = Vec::new();
        for topic in ["note", "user"] {
            for f in self.entries(&self.config("-").stream(topic)).await {
                let mut e: serde_json::Value = serde_json::from_str(&f["metadata"]).unwrap();
                e["id"] = f["id"].clone().into();
                e["name"] = f["type"].clone().into();
                e["payload"] = f["payload"].clone().into();
                out.push(serde_json::from_value(e).unwrap());
            }
        }
        out
    }
    async fn consume(
        &self,
        member: &str,
        inbox: Arc<dyn Inbox>,
        stop: CancellationToken,
    ) -> recount::Result<()> {
        // One consumer per topic stream, both members of the group `readers`.
        let mut tasks = Vec::new();
        for topic in ["note", "user"] {
            let consumer = RedisConsumer::connect(RedisConsumerConfig {
                url: URL.into(),
                stream: self.config("-").stream(topic),
                group: "readers".into(),
                consumer: member.into(),
                claim_idle: Duration::from_millis(300),
                retries: Retries {
                    max_deliveries: 5,
                    delay: Duration::from_millis(100),
                },
                dead_letter_stream: self.dead_letter_key(),
            })
            .await?;
            let (inbox, stop) = (inbox.clone(), stop.clone());
            tasks.push(tokio::spawn(
                async move { consumer.run(&*inbox, stop).await },
            ));
        }
        for t in tasks {
            t.await.expect("consumer task")?;
        }
        Ok(())
    }
    async fn cleanup(&self) {
        let mut conn = self.conn().await;
        let keys: Vec<String> = conn
            .keys(format!("{}:*", self.prefix))
            .await
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: redis::RedisResult<()> = conn.del(keys).await;
        }
    }
    async fn dead_letters(&self) -> Vec<Uuid> {
        let entries = self.entries(&self.dead_letter_key()).await;
        entries.iter().map(|f| f["id"].parse().unwrap()).collect()
    }
}

fn up(test: &str) -> bool {
    common::broker_up(test, "Redis", 6379)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_relay_publishes_each_mapped_event_once_in_log_order_even_after_a_lost_checkpoint() {
    if up("redis_relay_publishes_each_mapped_event_once_in_log_order_even_after_a_lost_checkpoint")
    {
        scenarios::relay_publishes_mapped_events_in_log_order(&Redis::new()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_relay_sigkilled_five_times_publishes_every_mapped_event_exactly_once() {
    const TEST: &str = "redis_relay_sigkilled_five_times_publishes_every_mapped_event_exactly_once";
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        return scenarios::relay_child(&dir, &Redis::from_env()).await;
    }
    if up(TEST) {
        scenarios::relay_survives_sigkill(TEST, &Redis::new()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_consumer_retries_a_failing_message_and_dead_letters_a_poison_one() {
    if up("redis_consumer_retries_a_failing_message_and_dead_letters_a_poison_one") {
        scenarios::consumer_retries_then_dead_letters(&Redis::new()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_consumer_sigkilled_mid_message_loses_nothing_and_handles_each_event_once() {
    const TEST: &str =
        "redis_consumer_sigkilled_mid_message_loses_nothing_and_handles_each_event_once";
    if let Ok(role) = std::env::var(CHILD_ENV) {
        return scenarios::consumer_child(&role, &Redis::from_env()).await;
    }
    if up(TEST) && common::broker_up(TEST, "PostgreSQL", 5432) {
        scenarios::consumer_killed_mid_message_loses_nothing(TEST, &Redis::new()).await;
    }
}

fn integration_event(n: u64) -> IntegrationEvent {
    IntegrationEvent {
        id: Uuid::now_v7(),
        name: "thing.happened".into(),
        version: 1,
        payload: format!(r#"{{"n":{n}}}"#),
        correlation_id: None,
        causation_id: None,
        source: recount::StreamId::new("thing", "t1").unwrap(),
        source_version: n,
        cursor: recount::Cursor::from_position(n),
        occurred_at: chrono::Utc::now(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_sink_that_lost_its_place_is_fenced_and_adds_nothing() {
    if !up("redis_sink_that_lost_its_place_is_fenced_and_adds_nothing") {
        return;
    }
    let redis = Redis::new();
    let (a, b) = (
        RedisSink::connect(redis.config("fenced")).await.unwrap(),
        RedisSink::connect(redis.config("fenced")).await.unwrap(),
    );
    // Both see an empty position; B publishes first and moves it.
    assert_eq!(a.published_through().await.unwrap(), None);
    assert_eq!(b.published_through().await.unwrap(), None);
    b.publish(&[integration_event(1), integration_event(2)])
        .await
        .unwrap();
    let stream = redis.config("fenced").stream("thing");
    assert_eq!(redis.entries(&stream).await.len(), 2);
    // A still thinks nothing was published: its batch is refused whole.
    let err = a.publish(&[integration_event(3)]).await.unwrap_err();
    assert!(
        err.is_retriable() && err.to_string().contains("fenced"),
        "{err}"
    );
    assert_eq!(redis.entries(&stream).await.len(), 2, "nothing added");
    // Having read the position again, it resumes after B's batch.
    let at = a.published_through().await.unwrap();
    assert_eq!(at, Some(recount::Cursor::from_position(2)));
    a.publish(&[integration_event(3)]).await.unwrap();
    let ids: Vec<String> = redis
        .entries(&stream)
        .await
        .into_iter()
        .map(|f| f["payload"].clone())
        .collect();
    assert_eq!(ids, [r#"{"n":1}"#, r#"{"n":2}"#, r#"{"n":3}"#]);
    // B published before and keeps a watch on the key from then: A's batch since makes B's
    // next EXEC apply nothing.
    let err = b.publish(&[integration_event(4)]).await.unwrap_err();
    assert!(
        err.to_string().contains("fenced") || err.to_string().contains("changed"),
        "{err}"
    );
    assert_eq!(redis.entries(&stream).await.len(), 3, "nothing added");
    assert_eq!(
        b.published_through().await.unwrap(),
        Some(recount::Cursor::from_position(3))
    );
    b.publish(&[integration_event(4)]).await.unwrap();
    b.publish(&[integration_event(5)]).await.unwrap();
    assert_eq!(redis.entries(&stream).await.len(), 5);
    let mut conn = redis.conn().await;
    let _: () = conn
        .del(&[stream, redis.config("fenced").position_key()])
        .await
        .unwrap();
}
