//! # Recount relays: integration events to brokers, and inboxes on the other side
//!
//! A [`Relay`] is a Recount consumer: it maps domain events to integration events with a
//! [`Mapping`](recount::integration::Mapping) and publishes them, in log order, to a
//! [`Sink`], moving its checkpoint only after the broker acknowledged them. Sinks, each
//! behind a cargo feature (none by default):
//!
//! | feature | sink | delivery | receiving side |
//! |---|---|---|---|
//! | `nats` | [`NatsSink`](nats::NatsSink): JetStream, `Nats-Msg-Id` = event id | exactly once in effect (expected-last-sequence, position in the last message) | [`NatsConsumer`](nats::NatsConsumer): durable pull consumer |
//! | `redis` | [`RedisSink`](redis::RedisSink): one stream per topic | exactly once in effect (a script adds the entries and the position atomically) | [`RedisConsumer`](redis::RedisConsumer): consumer group |
//! | `rabbitmq` | [`RabbitSink`](rabbitmq::RabbitSink): durable topic exchange, publisher confirms | at least once | [`RabbitConsumer`](rabbitmq::RabbitConsumer): manual ack, dead-letter exchange |
//!
//! Whatever the broker, a receiver may see an event again (a consumer that died before its
//! ack); an [`Inbox`](inbox::Inbox) (`sqlite`, `postgres` features) records processed event
//! ids in the handler's own transaction, so each is handled once in effect.

mod sink;
// Each broker uses part of it; a build with some brokers leaves the rest unused.
#[cfg_attr(
    not(all(feature = "nats", feature = "redis", feature = "rabbitmq")),
    allow(dead_code)
)]
mod wire;

pub mod inbox;
#[cfg(feature = "nats")]
pub mod nats;
#[cfg(feature = "rabbitmq")]
pub mod rabbitmq;
#[cfg(feature = "redis")]
pub mod redis;

pub use sink::{Relay, Sink};
