//! Relays: StoryChain's [integration events](crate::integration) to NATS JetStream, Redis
//! Streams or RabbitMQ, each a consumer of the log run by a
//! [`Runner`].
//!
//! Each broker is behind a cargo feature of the same name (`nats`, `redis`, `rabbitmq`); a
//! build without it refuses that broker with a message saying so. One relay per broker may
//! run at once (its checkpoint is `relay:<name>-<broker>`), on any number of processes: the
//! runner's lease keeps one of them active.
//!
//! | broker | where events go (with the default name `storychain`) |
//! |---|---|
//! | NATS | stream `storychain`, subjects `storychain.<public name>` (e.g. `storychain.story.published`) |
//! | Redis | streams `storychain:<topic>` (`storychain:story`, `storychain:chapter`, `storychain:pr`, `storychain:user`) |
//! | RabbitMQ | durable topic exchange `storychain`, routing key = public name |

use crate::app::Store;
use crate::integration;
use recount::integration::IntegrationMap;
use recount::projection::{Runner, RunnerOptions};
use recount::{Error, Result};
use recount_relay::{Relay, Sink};
use std::sync::Arc;

/// A broker StoryChain relays to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Broker {
    /// NATS JetStream.
    Nats,
    /// Redis Streams.
    Redis,
    /// RabbitMQ.
    Rabbitmq,
}

impl Broker {
    /// Its name (`nats`, `redis`, `rabbitmq`), also the cargo feature that builds it in.
    pub fn as_str(self) -> &'static str {
        match self {
            Broker::Nats => "nats",
            Broker::Redis => "redis",
            Broker::Rabbitmq => "rabbitmq",
        }
    }

    /// The URL of the broker on this machine's default port.
    pub fn default_url(self) -> &'static str {
        match self {
            Broker::Nats => "nats://127.0.0.1:4222",
            Broker::Redis => "redis://127.0.0.1:6379",
            Broker::Rabbitmq => "amqp://guest:guest@127.0.0.1:5672/%2f",
        }
    }
}

impl std::fmt::Display for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where and what a relay publishes.
#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// The broker.
    pub broker: Broker,
    /// Its URL (`None`: [`Broker::default_url`]).
    pub url: Option<String>,
    /// The name of the NATS stream and subject prefix, the Redis key prefix, the RabbitMQ
    /// exchange, and (with the broker) the relay's checkpoint. Default `storychain`.
    pub name: String,
    /// Only these public names (empty: all of [`integration::PUBLISHED`]).
    pub only: Vec<String>,
}

impl RelayOptions {
    /// All integration events to `broker` on its default URL, named `storychain`.
    pub fn new(broker: Broker) -> Self {
        RelayOptions {
            broker,
            url: None,
            name: "storychain".to_owned(),
            only: Vec::new(),
        }
    }

    /// The relay's name: `<name>-<broker>` (its checkpoint is `relay:<that>`).
    pub fn relay_name(&self) -> String {
        format!("{}-{}", self.name, self.broker)
    }

    fn url(&self) -> String {
        self.url
            .clone()
            .unwrap_or_else(|| self.broker.default_url().to_owned())
    }

    /// The mapping, narrowed to [`RelayOptions::only`]; an unknown public name is refused.
    pub fn mapping(&self) -> Result<IntegrationMap> {
        if let Some(unknown) = self
            .only
            .iter()
            .find(|n| !integration::PUBLISHED.contains(&n.as_str()))
        {
            return Err(Error::invalid(
                "only",
                format!(
                    "`{unknown}` is not an integration event StoryChain publishes ({})",
                    integration::PUBLISHED.join(", ")
                ),
            ));
        }
        let map = integration::map();
        if self.only.is_empty() {
            return Ok(map);
        }
        let only: Vec<&str> = self.only.iter().map(String::as_str).collect();
        Ok(map.only(&only))
    }

    /// Connects to the broker (creating the stream or exchange if missing).
    pub async fn connect(&self) -> Result<Arc<dyn Sink>> {
        let url = self.url();
        match self.broker {
            #[cfg(feature = "nats")]
            Broker::Nats => {
                use recount_relay::nats::{NatsConfig, NatsSink};
                let config = NatsConfig {
                    url,
                    stream: self.name.clone(),
                    prefix: self.name.clone(),
                };
                Ok(Arc::new(NatsSink::connect(config).await?))
            }
            #[cfg(feature = "redis")]
            Broker::Redis => {
                use recount_relay::redis::{RedisConfig, RedisSink};
                let config = RedisConfig {
                    url,
                    prefix: self.name.clone(),
                    relay: self.relay_name(),
                };
                Ok(Arc::new(RedisSink::connect(config).await?))
            }
            #[cfg(feature = "rabbitmq")]
            Broker::Rabbitmq => {
                use recount_relay::rabbitmq::{RabbitConfig, RabbitSink};
                let config = RabbitConfig {
                    url,
                    exchange: self.name.clone(),
                };
                Ok(Arc::new(RabbitSink::connect(config).await?))
            }
            #[allow(unreachable_patterns)]
            other => {
                let _ = url;
                Err(Error::invalid(
                    "to",
                    format!(
                        "this storychain was built without the `{other}` feature; build it with `--features {other}`"
                    ),
                ))
            }
        }
    }
}

/// The relay StoryChain runs: its mapping to `sink`, its checkpoint in `store`.
pub type StoryChainRelay = Relay<Store, IntegrationMap, Arc<dyn Sink>>;

/// A runner for the relay `options` describe, connected to its broker.
pub async fn runner(
    store: &Store,
    options: &RelayOptions,
) -> Result<Runner<Store, StoryChainRelay>> {
    check_name(&options.name)?;
    let mapping = options.mapping()?;
    let sink = options.connect().await?;
    let relay = Relay::new(options.relay_name(), store.clone(), mapping, sink);
    Ok(Runner::with_options(
        store.clone(),
        relay,
        RunnerOptions {
            batch_size: 500,
            ..Default::default()
        },
    ))
}

/// A relay's name becomes a NATS stream and subject part, a Redis key prefix and an AMQP
/// exchange: 1 to 64 of `a-z`, `0-9`, `_`, `-`.
fn check_name(name: &str) -> Result<()> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "name",
            format!("`{name}` is not 1 to 64 of lowercase letters, digits, `_` and `-`"),
        ))
    }
}
