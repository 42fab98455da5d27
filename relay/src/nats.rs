//! NATS JetStream: a sink that publishes exactly once in effect, and a durable pull consumer.
//!
//! The sink owns a stream (default subjects `<prefix>.>`) and publishes each event to
//! `<prefix>.<topic>.<type>` (its public name after the prefix) with `Nats-Msg-Id` = the
//! event id and the metadata as `Recount-*` headers. Every message also carries
//! `Nats-Expected-Last-Sequence` (the stream's sequence before it) and `Recount-Through` (the
//! relay's position once it is stored). So the server refuses a message unless it is the
//! next after the ones this sink has seen stored: a batch is stored as a prefix with no gap,
//! a relay that lost its lease cannot interleave, and on start the sink reads the stream's
//! last message to learn how far it got. Nothing is published twice, however long after the
//! server's duplicate window the relay comes back.

use crate::inbox::{deliver, Inbox, Retries, Verdict};
use crate::sink::Sink;
use crate::wire;
use async_nats::jetstream::{self, consumer::pull, stream, AckKind};
use async_nats::HeaderMap;
use async_trait::async_trait;
use futures::StreamExt;
use recount::integration::IntegrationEvent;
use recount::{Cursor, Error, Result};
use std::sync::Mutex;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const THROUGH: &str = "Recount-Through";

/// Where a NATS relay publishes.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// Server URL, e.g. `nats://127.0.0.1:4222`.
    pub url: String,
    /// The JetStream stream this relay owns (created if missing, file storage).
    pub stream: String,
    /// Subject prefix: events go to `<prefix>.<topic>.<type>`.
    pub prefix: String,
}

/// A [`Sink`] to NATS JetStream. See the [module docs](self).
#[derive(Debug)]
pub struct NatsSink {
    js: jetstream::Context,
    config: NatsConfig,
    /// The stream's last sequence and this relay's position, as last seen (`None`: ask).
    state: Mutex<Option<(u64, Option<Cursor>)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl NatsSink {
    /// Connects and creates the stream (subjects `<prefix>.>`) if missing.
    pub async fn connect(config: NatsConfig) -> Result<Self> {
        let client = async_nats::connect(&config.url)
            .await
            .map_err(|e| wire::retriable("nats", e))?;
        let js = jetstream::new(client);
        js.get_or_create_stream(stream::Config {
            name: config.stream.clone(),
            subjects: vec![format!("{}.>", config.prefix)],
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .map_err(|e| wire::retriable("nats", e))?;
        Ok(NatsSink {
            js,
            config,
            state: Mutex::new(None),
        })
    }

    /// The subject of `event`.
    pub fn subject(&self, event: &IntegrationEvent) -> String {
        format!("{}.{}", self.config.prefix, event.name)
    }

    async fn load_state(&self) -> Result<(u64, Option<Cursor>)> {
        let mut stream = self
            .js
            .get_stream(&self.config.stream)
            .await
            .map_err(|e| wire::retriable("nats", e))?;
        let last = stream
            .info()
            .await
            .map_err(|e| wire::retriable("nats", e))?
            .state
            .last_sequence;
        if last == 0 {
            return Ok((0, None));
        }
        let msg = stream
            .get_raw_message(last)
            .await
            .map_err(|e| wire::retriable("nats", e))?;
        let through = msg
            .headers
            .get(THROUGH)
            .ok_or_else(|| Error::store(format!("nats: message {last} of stream `{}` has no {THROUGH} header: the stream is not this relay's alone", self.config.stream)))?
            .as_str()
            .parse::<Cursor>()?;
        Ok((last, Some(through)))
    }

    /// The headers of `event`'s message, without the relay's own bookkeeping (the expected
    /// last sequence and its position): `Nats-Msg-Id` (the event id), `Recount-Name`,
    /// `Recount-Version`, `Recount-Source` and, when set, `Recount-Correlation-Id` and
    /// `Recount-Causation-Id`. A publisher that writes the same messages by hand sends these.
    pub fn message_headers(event: &IntegrationEvent) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            async_nats::header::NATS_MESSAGE_ID,
            event.id.to_string().as_str(),
        );
        h.insert("Recount-Name", event.name.as_str());
        h.insert("Recount-Version", event.version.to_string().as_str());
        h.insert("Recount-Source", event.source.as_str());
        if let Some(c) = event.correlation_id {
            h.insert("Recount-Correlation-Id", c.to_string().as_str());
        }
        if let Some(c) = event.causation_id {
            h.insert("Recount-Causation-Id", c.to_string().as_str());
        }
        h
    }

    fn headers(event: &IntegrationEvent, expected_seq: u64, through: Cursor) -> HeaderMap {
        let mut h = Self::message_headers(event);
        h.insert(
            async_nats::header::NATS_EXPECTED_LAST_SEQUENCE,
            expected_seq.to_string().as_str(),
        );
        h.insert(THROUGH, through.to_string().as_str());
        h
    }

    async fn publish_all(
        &self,
        events: &[IntegrationEvent],
        start: (u64, Option<Cursor>),
    ) -> Result<(u64, Option<Cursor>)> {
        let (mut seq, mut through) = start;
        // Pipelined: send every message, then await the acks in order. Each expects the
        // sequence of the one before, so if one is refused every later one is too.
        let mut acks = Vec::with_capacity(events.len());
        for event in events {
            let at = wire::through(through, std::slice::from_ref(event)).unwrap_or(event.cursor);
            let headers = Self::headers(event, seq, at);
            let ack = self
                .js
                .publish_with_headers(self.subject(event), headers, event.to_json().into())
                .await
                .map_err(|e| wire::retriable("nats", e))?;
            acks.push(ack);
            seq += 1;
            through = Some(at);
        }
        for ack in acks {
            let ack = ack.await.map_err(|e| wire::retriable("nats", e))?;
            if ack.duplicate {
                return Err(wire::retriable(
                    "nats",
                    "a message was a duplicate; reloading the position",
                ));
            }
        }
        Ok((seq, through))
    }
}

#[async_trait]
impl Sink for NatsSink {
    fn broker(&self) -> &'static str {
        "nats"
    }

    async fn published_through(&self) -> Result<Option<Cursor>> {
        if let Some((_, through)) = *lock(&self.state) {
            return Ok(through);
        }
        let state = self.load_state().await?;
        *lock(&self.state) = Some(state);
        Ok(state.1)
    }

    async fn publish(&self, events: &[IntegrationEvent]) -> Result<()> {
        let start = match *lock(&self.state) {
            Some(s) => s,
            None => return Err(wire::retriable("nats", "position not loaded")),
        };
        match self.publish_all(events, start).await {
            Ok(state) => {
                *lock(&self.state) = Some(state);
                Ok(())
            }
            Err(e) => {
                // Some of the batch may be stored: ask the stream again before going on.
                *lock(&self.state) = None;
                Err(e)
            }
        }
    }
}

/// A durable pull consumer of a relay's stream.
#[derive(Debug, Clone)]
pub struct NatsConsumerConfig {
    /// Server URL.
    pub url: String,
    /// The relay's stream.
    pub stream: String,
    /// The durable consumer's name: every process with this name shares the work.
    pub durable: String,
    /// Subjects to receive (e.g. `<prefix>.story.>`); empty: all of the stream.
    pub filter_subject: String,
    /// How long the server waits for an ack before delivering a message again (a consumer
    /// that died mid-message).
    pub ack_wait: Duration,
    /// Retries and dead letters.
    pub retries: Retries,
    /// Where dead letters go: a stream of this name, subjects `<name>.>` (created if
    /// missing); each keeps the event's body and a `Recount-Error` header.
    pub dead_letter_stream: String,
}

/// Receives integration events from JetStream and hands them to an [`Inbox`]: explicit ack
/// after the inbox committed, a delayed nak on failure, and after
/// [`Retries::max_deliveries`] the message is published to the dead-letter stream and
/// terminated.
#[derive(Debug)]
pub struct NatsConsumer {
    js: jetstream::Context,
    consumer: jetstream::consumer::Consumer<pull::Config>,
    config: NatsConsumerConfig,
}

impl NatsConsumer {
    /// Connects, creating the durable consumer and the dead-letter stream if missing.
    pub async fn connect(config: NatsConsumerConfig) -> Result<Self> {
        let r = |e| wire::retriable("nats", e);
        let client = async_nats::connect(&config.url)
            .await
            .map_err(|e| r(e.to_string()))?;
        let js = jetstream::new(client);
        let stream = js
            .get_stream(&config.stream)
            .await
            .map_err(|e| r(e.to_string()))?;
        let consumer = stream
            .get_or_create_consumer(
                &config.durable,
                pull::Config {
                    durable_name: Some(config.durable.clone()),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait: config.ack_wait,
                    // Unlimited on the server: this consumer dead-letters after its own
                    // count, so a message whose last delivery died with its consumer is not
                    // dropped by the server.
                    max_deliver: -1,
                    filter_subject: config.filter_subject.clone(),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| r(e.to_string()))?;
        js.get_or_create_stream(stream::Config {
            name: config.dead_letter_stream.clone(),
            subjects: vec![format!("{}.>", config.dead_letter_stream)],
            ..Default::default()
        })
        .await
        .map_err(|e| r(e.to_string()))?;
        Ok(NatsConsumer {
            js,
            consumer,
            config,
        })
    }

    /// Receives until `shutdown` is cancelled; returns on a connection failure (run it under
    /// a supervisor that restarts it with backoff).
    pub async fn run<I: Inbox + ?Sized>(
        &self,
        inbox: &I,
        shutdown: CancellationToken,
    ) -> Result<()> {
        while !shutdown.is_cancelled() {
            let batch = self
                .consumer
                .fetch()
                .max_messages(100)
                .expires(Duration::from_millis(500))
                .messages()
                .await
                .map_err(|e| wire::retriable("nats", e))?;
            let mut batch = std::pin::pin!(batch.take_until(shutdown.cancelled()));
            while let Some(msg) = batch.next().await {
                let msg = msg.map_err(|e| wire::retriable("nats", e))?;
                self.handle(inbox, msg).await?;
            }
        }
        Ok(())
    }

    async fn handle<I: Inbox + ?Sized>(&self, inbox: &I, msg: jetstream::Message) -> Result<()> {
        let r = |e: async_nats::Error| wire::retriable("nats", e);
        let delivered = msg.info().map(|i| i.delivered.max(1) as u64).unwrap_or(1);
        let retries = &self.config.retries;
        match deliver(inbox, wire::from_body(&msg.payload), delivered, retries).await {
            Verdict::Ack => msg.double_ack().await.map_err(r),
            Verdict::Retry => msg
                .ack_with(AckKind::Nak(Some(retries.delay)))
                .await
                .map_err(r),
            Verdict::DeadLetter(why) => {
                // A fresh set of headers: the original's expected-sequence check is the
                // relay's, not the dead-letter stream's.
                let mut headers = HeaderMap::new();
                if let Some(id) = msg
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
                {
                    headers.insert(async_nats::header::NATS_MESSAGE_ID, id.as_str());
                }
                headers.insert("Recount-Error", why.replace(['\r', '\n'], " ").as_str());
                headers.insert("Recount-Subject", msg.subject.as_str());
                let subject = format!("{}.{}", self.config.dead_letter_stream, msg.subject);
                self.js
                    .publish_with_headers(subject, headers, msg.payload.clone())
                    .await
                    .map_err(|e| wire::retriable("nats", e))?
                    .await
                    .map_err(|e| wire::retriable("nats", e))?;
                msg.ack_with(AckKind::Term).await.map_err(r)
            }
        }
    }
}
