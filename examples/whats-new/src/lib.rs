//! # What's new: a service on the other side of StoryChain's broker
//!
//! A small service of its own that never reads StoryChain's database. It receives
//! StoryChain's integration events (`story.published`, `chapter.published`, `pr.merged`,
//! `user.registered`) from NATS JetStream, Redis Streams or RabbitMQ — whichever
//! `storychain relay --to …` publishes to — and keeps "what's new" per genre in a SQLite file
//! of its own. Each event passes through an [inbox](recount_relay::inbox::SqliteInbox): the
//! event id is recorded in the same transaction as the model's writes, so a redelivered
//! event changes nothing.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! use whats_new::{Follow, Source};
//!
//! let follow = Follow::new(Source::Nats, "whats-new.db");
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! follow.run(shutdown).await?; // until the token is cancelled
//! # Ok(()) }
//! ```
//!
//! Each broker is behind a cargo feature of the same name (`nats`, `redis`, `rabbitmq`, all on
//! by default).

// Built with no broker, `connect` can only refuse.
#![cfg_attr(
    not(any(feature = "nats", feature = "redis", feature = "rabbitmq")),
    allow(unreachable_code, unused_variables)
)]

pub mod contract;
mod model;

pub use model::{latest, members, NewStory, WhatsNew};

use recount::{BoxError, Error, Result};
use recount_relay::inbox::{Retries, SqliteInbox};
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

/// The broker events come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Source {
    /// NATS JetStream: a durable pull consumer on the publisher's stream.
    Nats,
    /// Redis Streams: a consumer group on each of the publisher's topic streams.
    Redis,
    /// RabbitMQ: a durable queue bound to the publisher's exchange.
    Rabbitmq,
}

impl Source {
    /// Its name, also the cargo feature that builds it in.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Nats => "nats",
            Source::Redis => "redis",
            Source::Rabbitmq => "rabbitmq",
        }
    }

    /// The broker's URL on this machine's default port.
    pub fn default_url(self) -> &'static str {
        match self {
            Source::Nats => "nats://127.0.0.1:4222",
            Source::Redis => "redis://127.0.0.1:6379",
            Source::Rabbitmq => "amqp://guest:guest@127.0.0.1:5672/%2f",
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// StoryChain's topics: the first part of each public name (Redis keeps a stream per topic).
pub const TOPICS: [&str; 4] = ["story", "chapter", "pr", "user"];

/// Where to receive from and where to keep the model.
#[derive(Debug, Clone)]
pub struct Follow {
    /// The broker.
    pub source: Source,
    /// Its URL (`None`: [`Source::default_url`]).
    pub url: Option<String>,
    /// The publisher's name (`storychain relay --name`, default `storychain`): the NATS
    /// stream, the Redis key prefix, the RabbitMQ exchange.
    pub publisher: String,
    /// This service's name on the broker (NATS durable, Redis group, RabbitMQ queue; dead
    /// letters go to `<group>-dead`). Processes with one group share the work.
    pub group: String,
    /// The SQLite file of the model.
    pub db: PathBuf,
    /// Deliveries of one event before it is dead-lettered.
    pub retries: Retries,
}

impl Follow {
    /// Follows publisher `storychain` on `source` (default URL) as group `whats-new`, into the
    /// SQLite file `db`.
    pub fn new(source: Source, db: impl Into<PathBuf>) -> Self {
        Follow {
            source,
            url: None,
            publisher: "storychain".to_owned(),
            group: "whats-new".to_owned(),
            db: db.into(),
            retries: Retries::default(),
        }
    }

    fn url(&self) -> String {
        self.url
            .clone()
            .unwrap_or_else(|| self.source.default_url().to_owned())
    }

    /// Opens the model's database (creating its tables) with its inbox.
    pub fn open(&self) -> Result<SqliteInbox<WhatsNew>> {
        let inbox = SqliteInbox::open(&self.db, WhatsNew).map_err(|e| {
            Error::store(format!("whats-new: cannot open {}: {e}", self.db.display()))
        })?;
        Ok(inbox)
    }

    /// Connects to the broker and declares what this service needs there (NATS: the durable
    /// consumer, on the publisher's stream, which must exist; Redis: the group on each topic
    /// stream; RabbitMQ: the queue bound to the exchange), and opens the model.
    pub async fn connect(&self) -> Result<Receiver> {
        let inbox = self.open()?;
        inbox
            .read(WhatsNew::create_tables)
            .await
            .map_err(|e: BoxError| Error::store(e.to_string()))?;
        let url = self.url();
        let dead = format!("{}-dead", self.group);
        let consumers = match self.source {
            #[cfg(feature = "nats")]
            Source::Nats => {
                use recount_relay::nats::{NatsConsumer, NatsConsumerConfig};
                Consumers::Nats(Box::new(
                    NatsConsumer::connect(NatsConsumerConfig {
                        url,
                        stream: self.publisher.clone(),
                        durable: self.group.clone(),
                        filter_subject: String::new(),
                        ack_wait: std::time::Duration::from_secs(30),
                        retries: self.retries.clone(),
                        dead_letter_stream: dead,
                    })
                    .await?,
                ))
            }
            #[cfg(feature = "redis")]
            Source::Redis => {
                use recount_relay::redis::{RedisConsumer, RedisConsumerConfig};
                let member = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
                let mut consumers = Vec::new();
                for topic in TOPICS {
                    consumers.push(
                        RedisConsumer::connect(RedisConsumerConfig {
                            url: url.clone(),
                            stream: format!("{}:{topic}", self.publisher),
                            group: self.group.clone(),
                            consumer: member.clone(),
                            claim_idle: std::time::Duration::from_secs(30),
                            retries: self.retries.clone(),
                            dead_letter_stream: format!("{}:{dead}", self.publisher),
                        })
                        .await?,
                    );
                }
                Consumers::Redis(consumers)
            }
            #[cfg(feature = "rabbitmq")]
            Source::Rabbitmq => {
                use recount_relay::rabbitmq::{RabbitConsumer, RabbitConsumerConfig};
                Consumers::Rabbit(Box::new(
                    RabbitConsumer::connect(RabbitConsumerConfig {
                        url,
                        exchange: self.publisher.clone(),
                        queue: self.group.clone(),
                        bindings: vec!["#".to_owned()],
                        retries: self.retries.clone(),
                        dead_letter_exchange: dead,
                    })
                    .await?,
                ))
            }
            #[allow(unreachable_patterns)]
            other => {
                let _ = (url, dead);
                return Err(Error::invalid(
                    "from",
                    format!("whats-new was built without the `{other}` feature; build it with `--features {other}`"),
                ));
            }
        };
        Ok(Receiver { inbox, consumers })
    }

    /// [`Follow::connect`], then [`Receiver::run`] until `shutdown` is cancelled.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<()> {
        self.connect().await?.run(shutdown).await
    }
}

enum Consumers {
    #[cfg(feature = "nats")]
    Nats(Box<recount_relay::nats::NatsConsumer>),
    #[cfg(feature = "redis")]
    Redis(Vec<recount_relay::redis::RedisConsumer>),
    #[cfg(feature = "rabbitmq")]
    Rabbit(Box<recount_relay::rabbitmq::RabbitConsumer>),
}

/// A service connected to its broker, ready to receive.
pub struct Receiver {
    inbox: SqliteInbox<WhatsNew>,
    #[cfg_attr(
        not(any(feature = "nats", feature = "redis", feature = "rabbitmq")),
        allow(dead_code)
    )]
    consumers: Consumers,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}

impl Receiver {
    /// The model's inbox (to read the model's tables).
    pub fn inbox(&self) -> &SqliteInbox<WhatsNew> {
        &self.inbox
    }

    /// Receives until `shutdown` is cancelled. A connection lost is an error (run it again,
    /// or under a supervisor).
    pub async fn run(self, shutdown: CancellationToken) -> Result<()> {
        let inbox = &self.inbox;
        match &self.consumers {
            #[cfg(feature = "nats")]
            Consumers::Nats(c) => c.run(inbox, shutdown).await,
            #[cfg(feature = "redis")]
            Consumers::Redis(consumers) => {
                // The first consumer to fail stops them all.
                let runs = consumers.iter().map(|c| c.run(inbox, shutdown.clone()));
                futures::future::try_join_all(runs).await.map(drop)
            }
            #[cfg(feature = "rabbitmq")]
            Consumers::Rabbit(c) => c.run(inbox, shutdown).await,
            #[allow(unreachable_patterns)]
            _ => {
                let _ = (inbox, shutdown);
                Ok(())
            }
        }
    }
}
