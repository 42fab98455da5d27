//! RabbitMQ: a sink with publisher confirms (at least once), and a consumer with manual acks
//! and a dead-letter exchange.
//!
//! The sink publishes each event to a durable topic exchange with routing key
//! `<topic>.<type>` (its public name), persistent (delivery mode 2), `message_id` = the event
//! id, and the metadata as `recount-*` headers, and waits for the broker's confirm of every
//! message of the batch before the relay moves its checkpoint.
//!
//! **At least once.** RabbitMQ has no way to ask what a publisher already stored, so a relay
//! that crashed after the broker confirmed a batch but before its checkpoint moved publishes
//! that batch again after the restart. Nothing is lost, and duplicates carry the same
//! `message_id`: receivers drop them with an [`Inbox`].
//!
//! The consumer's queue is a quorum queue (which counts deliveries) with
//! `x-delivery-limit` and `x-dead-letter-exchange`: a message that fails
//! [`Retries::max_deliveries`] times is rejected and the broker moves it to the dead-letter
//! exchange, also when the consumers handling it died each time.

use crate::inbox::{deliver, Inbox, Retries, Verdict};
use crate::sink::Sink;
use crate::wire;
use async_trait::async_trait;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::publisher_confirm::Confirmation;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use recount::integration::IntegrationEvent;
use recount::{Cursor, Result};
use tokio_util::sync::CancellationToken;

fn r(e: impl std::fmt::Display) -> recount::Error {
    wire::retriable("rabbitmq", e)
}

/// Connects on this process's tokio runtime (lapin's executor and reactor traits), so the
/// client runs no runtime of its own.
async fn connect(url: &str) -> Result<Connection> {
    let props = ConnectionProperties::default()
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio);
    Connection::connect(url, props).await.map_err(r)
}

async fn declare_exchange(ch: &Channel, name: &str, kind: ExchangeKind) -> Result<()> {
    let opts = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.exchange_declare(name, kind, opts, FieldTable::default())
        .await
        .map_err(r)
}

/// Where a RabbitMQ relay publishes.
#[derive(Debug, Clone)]
pub struct RabbitConfig {
    /// Server URL, e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`.
    pub url: String,
    /// The durable topic exchange (declared if missing).
    pub exchange: String,
}

/// A [`Sink`] to a RabbitMQ topic exchange. See the [module docs](self).
#[derive(Debug)]
pub struct RabbitSink {
    _conn: Connection,
    channel: Channel,
    config: RabbitConfig,
}

impl RabbitSink {
    /// Connects, turns on publisher confirms and declares the exchange.
    pub async fn connect(config: RabbitConfig) -> Result<Self> {
        let conn = connect(&config.url).await?;
        let channel = conn.create_channel().await.map_err(r)?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(r)?;
        declare_exchange(&channel, &config.exchange, ExchangeKind::Topic).await?;
        Ok(RabbitSink {
            _conn: conn,
            channel,
            config,
        })
    }

    /// The properties of `e`'s message: persistent, `message_id` = the event id, JSON
    /// content type, and headers `recount-name`, `recount-version`, `recount-source`,
    /// `recount-cursor` and, when set, `recount-correlation-id` and `recount-causation-id`.
    pub fn properties(e: &IntegrationEvent) -> BasicProperties {
        let mut h = FieldTable::default();
        let s = |v: String| AMQPValue::LongString(LongString::from(v));
        h.insert("recount-name".into(), s(e.name.clone()));
        h.insert("recount-version".into(), AMQPValue::LongUInt(e.version));
        h.insert("recount-source".into(), s(e.source.to_string()));
        h.insert("recount-cursor".into(), s(e.cursor.to_string()));
        if let Some(c) = e.correlation_id {
            h.insert("recount-correlation-id".into(), s(c.to_string()));
        }
        if let Some(c) = e.causation_id {
            h.insert("recount-causation-id".into(), s(c.to_string()));
        }
        BasicProperties::default()
            .with_delivery_mode(2)
            .with_message_id(ShortString::from(e.id.to_string()))
            .with_content_type(ShortString::from("application/json"))
            .with_headers(h)
    }
}

#[async_trait]
impl Sink for RabbitSink {
    fn broker(&self) -> &'static str {
        "rabbitmq"
    }

    /// Always `None`: the broker cannot tell (at least once, see the [module docs](self)).
    async fn published_through(&self) -> Result<Option<Cursor>> {
        Ok(None)
    }

    async fn publish(&self, events: &[IntegrationEvent]) -> Result<()> {
        // Pipelined: publish all, then wait for every confirm.
        let mut confirms = Vec::with_capacity(events.len());
        for e in events {
            let confirm = self
                .channel
                .basic_publish(
                    &self.config.exchange,
                    &e.name,
                    BasicPublishOptions::default(),
                    e.to_json().as_bytes(),
                    Self::properties(e),
                )
                .await
                .map_err(r)?;
            confirms.push(confirm);
        }
        for confirm in confirms {
            match confirm.await.map_err(r)? {
                Confirmation::Ack(_) | Confirmation::NotRequested => {}
                Confirmation::Nack(_) => return Err(r("the broker refused a message (nack)")),
            }
        }
        Ok(())
    }
}

/// A queue bound to a relay's exchange.
#[derive(Debug, Clone)]
pub struct RabbitConsumerConfig {
    /// Server URL.
    pub url: String,
    /// The relay's exchange.
    pub exchange: String,
    /// The durable (quorum) queue: consumers of one queue share its messages.
    pub queue: String,
    /// Binding patterns, e.g. `story.*`; empty: `#` (everything).
    pub bindings: Vec<String>,
    /// Retries and dead letters.
    pub retries: Retries,
    /// The dead-letter exchange (fanout) and its queue of the same name.
    pub dead_letter_exchange: String,
}

/// Receives integration events from a queue and hands them to an [`Inbox`]: ack after the
/// inbox committed, a requeue after [`Retries::delay`] on failure, and a reject to the
/// dead-letter exchange on the last delivery.
#[derive(Debug)]
pub struct RabbitConsumer {
    _conn: Connection,
    channel: Channel,
    config: RabbitConsumerConfig,
}

impl RabbitConsumer {
    /// Connects and declares the queue, its bindings and the dead-letter exchange and queue.
    pub async fn connect(config: RabbitConsumerConfig) -> Result<Self> {
        let conn = connect(&config.url).await?;
        let ch = conn.create_channel().await.map_err(r)?;
        declare_exchange(&ch, &config.exchange, ExchangeKind::Topic).await?;
        let dlx = &config.dead_letter_exchange;
        declare_exchange(&ch, dlx, ExchangeKind::Fanout).await?;
        let durable = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        ch.queue_declare(dlx, durable, FieldTable::default())
            .await
            .map_err(r)?;
        ch.queue_bind(
            dlx,
            dlx,
            "",
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(r)?;
        let mut args = FieldTable::default();
        args.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
        let limit = i64::from(config.retries.max_deliveries.max(1));
        args.insert("x-delivery-limit".into(), AMQPValue::LongLongInt(limit));
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(dlx.as_str().into()),
        );
        ch.queue_declare(&config.queue, durable, args)
            .await
            .map_err(r)?;
        let patterns = if config.bindings.is_empty() {
            vec!["#".to_owned()]
        } else {
            config.bindings.clone()
        };
        for p in &patterns {
            ch.queue_bind(
                &config.queue,
                &config.exchange,
                p,
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(r)?;
        }
        ch.basic_qos(32, BasicQosOptions::default())
            .await
            .map_err(r)?;
        Ok(RabbitConsumer {
            _conn: conn,
            channel: ch,
            config,
        })
    }

    /// Receives until `shutdown` is cancelled; returns on a connection failure.
    pub async fn run<I: Inbox + ?Sized>(
        &self,
        inbox: &I,
        shutdown: CancellationToken,
    ) -> Result<()> {
        let tag = format!("recount-{}", uuid::Uuid::new_v4());
        let consumer = self
            .channel
            .basic_consume(
                &self.config.queue,
                &tag,
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(r)?;
        let mut deliveries = std::pin::pin!(consumer.take_until(shutdown.cancelled()));
        while let Some(delivery) = deliveries.next().await {
            let delivery = delivery.map_err(r)?;
            // Quorum queues count earlier deliveries in `x-delivery-count`.
            let earlier = delivery
                .properties
                .headers()
                .as_ref()
                .and_then(|h| h.inner().get("x-delivery-count").cloned())
                .and_then(|v| match v {
                    AMQPValue::LongLongInt(n) => u64::try_from(n).ok(),
                    AMQPValue::LongInt(n) => u64::try_from(n).ok(),
                    AMQPValue::LongUInt(n) => Some(u64::from(n)),
                    _ => None,
                })
                .unwrap_or(0);
            let event = wire::from_body(&delivery.data);
            let retries = &self.config.retries;
            match deliver(inbox, event, earlier + 1, retries).await {
                Verdict::Ack => delivery.ack(BasicAckOptions::default()).await.map_err(r)?,
                Verdict::Retry => {
                    tokio::time::sleep(retries.delay).await;
                    let requeue = BasicNackOptions {
                        requeue: true,
                        ..Default::default()
                    };
                    delivery.nack(requeue).await.map_err(r)?;
                }
                Verdict::DeadLetter(why) => {
                    // Rejected without requeue: the queue's dead-letter exchange takes it
                    // (with the broker's `x-death` header; the reason goes to the log).
                    tracing::warn!(queue = %self.config.queue, reason = %why, "dead-lettering");
                    delivery
                        .nack(BasicNackOptions::default())
                        .await
                        .map_err(r)?;
                }
            }
        }
        Ok(())
    }
}
