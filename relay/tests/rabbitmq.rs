//! RabbitMQ: the relay publishes every mapped event at least once, none missing, in log
//! order, across SIGKILLs and lost checkpoints; the consumer retries, dead-letters through
//! the dead-letter exchange and hands every event to an inbox once in effect.
#![cfg(all(feature = "rabbitmq", feature = "sqlite", feature = "postgres"))]

mod common;

use async_trait::async_trait;
use common::scenarios::{self, CHILD_BROKER_ENV, CHILD_ENV};
use common::Broker;
use lapin::options::{BasicAckOptions, BasicGetOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use recount::integration::IntegrationEvent;
use recount_relay::inbox::{Inbox, Retries};
use recount_relay::rabbitmq::{RabbitConfig, RabbitConsumer, RabbitConsumerConfig, RabbitSink};
use recount_relay::Sink;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

struct Rabbit {
    exchange: String,
    /// Everything drained from the test's mirror queue and dead-letter queue so far.
    seen: Mutex<Vec<IntegrationEvent>>,
    dead: Mutex<Vec<Uuid>>,
}

impl Rabbit {
    fn named(exchange: String) -> Self {
        Rabbit {
            exchange,
            seen: Mutex::default(),
            dead: Mutex::default(),
        }
    }
    fn new() -> Self {
        Self::named(common::unique("t"))
    }
    fn from_env() -> Self {
        Self::named(std::env::var(CHILD_BROKER_ENV).unwrap())
    }
    fn mirror(&self) -> String {
        format!("{}.mirror", self.exchange)
    }
    fn consumer_config(&self) -> RabbitConsumerConfig {
        RabbitConsumerConfig {
            url: URL.into(),
            exchange: self.exchange.clone(),
            queue: format!("{}.readers", self.exchange),
            bindings: vec!["note.*".into(), "user.*".into()],
            retries: Retries {
                max_deliveries: 5,
                delay: Duration::from_millis(100),
            },
            dead_letter_exchange: format!("{}.dlx", self.exchange),
        }
    }
    async fn drain(&self, queue: &str) -> Vec<IntegrationEvent> {
        let conn = lapin::Connection::connect(URL, Default::default())
            .await
            .unwrap();
        let ch = conn.create_channel().await.unwrap();
        let mut out = Vec::new();
        while let Some(m) = ch
            .basic_get(queue, BasicGetOptions::default())
            .await
            .unwrap()
        {
            out.push(serde_json::from_slice(&m.delivery.data).unwrap());
            m.delivery.ack(BasicAckOptions::default()).await.unwrap();
        }
        let _ = conn.close(200, "done").await;
        out
    }
}

#[async_trait]
impl Broker for Rabbit {
    fn name(&self) -> &'static str {
        "rabbitmq"
    }
    fn exactly_once(&self) -> bool {
        false
    }
    fn to_env(&self) -> String {
        self.exchange.clone()
    }
    async fn sink(&self, _relay: &str) -> Arc<dyn Sink> {
        let config = RabbitConfig {
            url: URL.into(),
            exchange: self.exchange.clone(),
        };
        Arc::new(RabbitSink::connect(config).await.unwrap())
    }
    async fn prepare(&self) {
        // The consumer's queue and dead-letter exchange, and a mirror queue of everything, bound
        // before anything is published.
        drop(
            RabbitConsumer::connect(self.consumer_config())
                .await
                .unwrap(),
        );
        let conn = lapin::Connection::connect(URL, Default::default())
            .await
            .unwrap();
        let ch = conn.create_channel().await.unwrap();
        let durable = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        ch.queue_declare(&self.mirror(), durable, FieldTable::default())
            .await
            .unwrap();
        ch.queue_bind(
            &self.mirror(),
            &self.exchange,
            "#",
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
        let _ = conn.close(200, "done").await;
    }
    async fn published(&self) -> Vec<IntegrationEvent> {
        let new = self.drain(&self.mirror()).await;
        let mut seen = self.seen.lock().unwrap();
        seen.extend(new);
        seen.clone()
    }
    async fn consume(
        &self,
        _member: &str,
        inbox: Arc<dyn Inbox>,
        stop: CancellationToken,
    ) -> recount::Result<()> {
        RabbitConsumer::connect(self.consumer_config())
            .await?
            .run(&*inbox, stop)
            .await
    }
    async fn cleanup(&self) {
        let conn = lapin::Connection::connect(URL, Default::default())
            .await
            .unwrap();
        let ch = conn.create_channel().await.unwrap();
        let c = self.consumer_config();
        for q in [&c.queue, &c.dead_letter_exchange, &self.mirror()] {
            let _ = ch.queue_delete(q, Default::default()).await;
        }
        for x in [&c.exchange, &c.dead_letter_exchange] {
            let _ = ch.exchange_delete(x, Default::default()).await;
        }
        let _ = conn.close(200, "done").await;
    }
    async fn dead_letters(&self) -> Vec<Uuid> {
        let new = self
            .drain(&self.consumer_config().dead_letter_exchange)
            .await;
        let mut dead = self.dead.lock().unwrap();
        dead.extend(new.iter().map(|e| e.id));
        dead.clone()
    }
}

fn up(test: &str) -> bool {
    common::broker_up(test, "RabbitMQ", 5672)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_relay_publishes_every_mapped_event_at_least_once_in_log_order_even_after_a_lost_checkpoint(
) {
    if up("rabbitmq_relay_publishes_every_mapped_event_at_least_once_in_log_order_even_after_a_lost_checkpoint") {
        scenarios::relay_publishes_mapped_events_in_log_order(&Rabbit::new()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_relay_sigkilled_five_times_loses_no_mapped_event() {
    const TEST: &str = "rabbitmq_relay_sigkilled_five_times_loses_no_mapped_event";
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        return scenarios::relay_child(&dir, &Rabbit::from_env()).await;
    }
    if up(TEST) {
        scenarios::relay_survives_sigkill(TEST, &Rabbit::new()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_consumer_retries_a_failing_message_and_dead_letters_a_poison_one() {
    if up("rabbitmq_consumer_retries_a_failing_message_and_dead_letters_a_poison_one") {
        scenarios::consumer_retries_then_dead_letters(&Rabbit::new()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_consumer_sigkilled_mid_message_loses_nothing_and_handles_each_event_once() {
    const TEST: &str =
        "rabbitmq_consumer_sigkilled_mid_message_loses_nothing_and_handles_each_event_once";
    if let Ok(role) = std::env::var(CHILD_ENV) {
        return scenarios::consumer_child(&role, &Rabbit::from_env()).await;
    }
    if up(TEST) && common::broker_up(TEST, "PostgreSQL", 5432) {
        scenarios::consumer_killed_mid_message_loses_nothing(TEST, &Rabbit::new()).await;
    }
}
