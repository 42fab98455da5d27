//! NATS JetStream: the relay publishes each mapped event exactly once in effect, across
//! SIGKILLs and lost checkpoints; the durable pull consumer retries, dead-letters and hands
//! every event to an inbox once in effect.
#![cfg(all(feature = "nats", feature = "sqlite", feature = "postgres"))]

mod common;

use async_trait::async_trait;
use common::scenarios::{self, CHILD_BROKER_ENV, CHILD_ENV};
use common::Broker;
use recount::integration::IntegrationEvent;
use recount_relay::inbox::{Inbox, Retries};
use recount_relay::nats::{NatsConfig, NatsConsumer, NatsConsumerConfig, NatsSink};
use recount_relay::Sink;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const URL: &str = "nats://127.0.0.1:4222";

struct Nats {
    stream: String,
}

impl Nats {
    fn new() -> Self {
        Nats {
            stream: common::unique("T"),
        }
    }
    fn from_env() -> Self {
        Nats {
            stream: std::env::var(CHILD_BROKER_ENV).unwrap(),
        }
    }
    fn prefix(&self) -> String {
        self.stream.to_lowercase()
    }
    async fn js(&self) -> async_nats::jetstream::Context {
        async_nats::jetstream::new(async_nats::connect(URL).await.unwrap())
    }
    async fn read_stream(&self, name: &str) -> Vec<async_nats::jetstream::message::StreamMessage> {
        let js = self.js().await;
        let Ok(mut stream) = js.get_stream(name).await else {
            return Vec::new();
        };
        let last = stream.info().await.unwrap().state.last_sequence;
        let mut out = Vec::new();
        for seq in 1..=last {
            out.push(stream.get_raw_message(seq).await.unwrap());
        }
        out
    }
}

#[async_trait]
impl Broker for Nats {
    fn name(&self) -> &'static str {
        "nats"
    }
    fn exactly_once(&self) -> bool {
        true
    }
    fn to_env(&self) -> String {
        self.stream.clone()
    }
    async fn sink(&self, _relay: &str) -> Arc<dyn Sink> {
        let config = NatsConfig {
            url: URL.into(),
            stream: self.stream.clone(),
            prefix: self.prefix(),
        };
        Arc::new(NatsSink::connect(config).await.unwrap())
    }
    async fn published(&self) -> Vec<IntegrationEvent> {
        let msgs = self.read_stream(&self.stream).await;
        msgs.iter()
            .map(|m| {
                let e: IntegrationEvent = serde_json::from_slice(&m.payload).unwrap();
                assert_eq!(
                    m.subject.as_str(),
                    format!("{}.{}", self.prefix(), e.name),
                    "subject"
                );
                assert_eq!(
                    m.headers
                        .get(async_nats::header::NATS_MESSAGE_ID)
                        .unwrap()
                        .as_str(),
                    e.id.to_string(),
                    "message id"
                );
                e
            })
            .collect()
    }
    async fn consume(
        &self,
        _member: &str,
        inbox: Arc<dyn Inbox>,
        stop: CancellationToken,
    ) -> recount::Result<()> {
        let consumer = NatsConsumer::connect(NatsConsumerConfig {
            url: URL.into(),
            stream: self.stream.clone(),
            durable: "readers".into(),
            filter_subject: String::new(),
            ack_wait: Duration::from_secs(2),
            retries: Retries {
                max_deliveries: 5,
                delay: Duration::from_millis(100),
            },
            dead_letter_stream: format!("{}_DLQ", self.stream),
        })
        .await?;
        consumer.run(&*inbox, stop).await
    }
    async fn cleanup(&self) {
        let js = self.js().await;
        let _ = js.delete_stream(&self.stream).await;
        let _ = js.delete_stream(format!("{}_DLQ", self.stream)).await;
    }
    async fn dead_letters(&self) -> Vec<Uuid> {
        let msgs = self.read_stream(&format!("{}_DLQ", self.stream)).await;
        msgs.iter()
            .map(|m| {
                serde_json::from_slice::<IntegrationEvent>(&m.payload)
                    .unwrap()
                    .id
            })
            .collect()
    }
}

fn up(test: &str) -> bool {
    common::broker_up(test, "NATS", 4222)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_relay_publishes_each_mapped_event_once_in_log_order_even_after_a_lost_checkpoint() {
    if up("nats_relay_publishes_each_mapped_event_once_in_log_order_even_after_a_lost_checkpoint") {
        scenarios::relay_publishes_mapped_events_in_log_order(&Nats::new()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_relay_sigkilled_five_times_publishes_every_mapped_event_exactly_once() {
    const TEST: &str = "nats_relay_sigkilled_five_times_publishes_every_mapped_event_exactly_once";
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        return scenarios::relay_child(&dir, &Nats::from_env()).await;
    }
    if up(TEST) {
        scenarios::relay_survives_sigkill(TEST, &Nats::new()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_consumer_retries_a_failing_message_and_dead_letters_a_poison_one() {
    if up("nats_consumer_retries_a_failing_message_and_dead_letters_a_poison_one") {
        scenarios::consumer_retries_then_dead_letters(&Nats::new()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_consumer_sigkilled_mid_message_loses_nothing_and_handles_each_event_once() {
    const TEST: &str =
        "nats_consumer_sigkilled_mid_message_loses_nothing_and_handles_each_event_once";
    if let Ok(role) = std::env::var(CHILD_ENV) {
        return scenarios::consumer_child(&role, &Nats::from_env()).await;
    }
    if up(TEST) && common::broker_up(TEST, "PostgreSQL", 5432) {
        scenarios::consumer_killed_mid_message_loses_nothing(TEST, &Nats::new()).await;
    }
}
