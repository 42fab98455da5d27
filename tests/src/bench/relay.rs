//! The `relay` scenario: events per second through Recount's relay (store read, mapping,
//! sink, checkpoint) beside a raw publish loop with the same client and the same
//! acknowledgement mode, per broker, in the same run.
//!
//! The raw loop publishes the same messages — the same body, and the metadata headers,
//! properties or fields the relay's sink puts on them — already mapped, in batches of the
//! same size. What it leaves out is Recount's work: reading the log, mapping each event,
//! the sink's exactly-once bookkeeping (NATS: expected last sequence and position headers;
//! Redis: the position compare-and-set inside the script) and the checkpoint.

use super::{BenchOptions, Row};
use recount::integration::{IntegrationEvent, IntegrationMap, Mapping};
use recount::projection::{Runner, RunnerOptions};
use recount::{EventStore, ExpectedVersion, InMemoryStore, NewEvent, Result, StreamId};
use recount_relay::Relay;
use recount_relay::Sink;
use std::sync::Arc;
use std::time::Instant;

/// Brokers the scenario measures.
pub const BROKERS: &[(&str, u16)] = &[("nats", 4222), ("redis", 6379), ("rabbitmq", 5672)];

const BATCH: usize = 1000;
const ROUNDS: u32 = 5;

fn name(tag: &str) -> String {
    format!(
        "bench{tag}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

/// The domain payload, and the public one the mapping makes of it (as a user would write a
/// mapping: typed in, typed out).
#[derive(serde::Serialize, serde::Deserialize)]
struct Happened {
    n: u64,
    text: String,
}

fn mapping() -> IntegrationMap {
    IntegrationMap::new().on("bench.happened", "bench.happened", 1, |e| {
        e.payload_as::<Happened>().map(Some)
    })
}

/// A store with `n` mapped events, and the same events as the raw loop publishes them.
async fn seeded(n: u64) -> Result<(InMemoryStore, Vec<IntegrationEvent>)> {
    let store = InMemoryStore::new();
    for chunk in 0..n.div_ceil(100) {
        let s = StreamId::new("bench", &format!("s{chunk}"))?;
        let events = (0..100.min(n - chunk * 100))
            .map(|i| {
                NewEvent::new(
                    "bench.happened",
                    &serde_json::json!({ "n": chunk * 100 + i, "text": "x".repeat(64) }),
                )
            })
            .collect::<Result<Vec<_>>>()?;
        store.append(&s, ExpectedVersion::NoStream, events).await?;
    }
    let map = mapping();
    let mut out = Vec::new();
    for e in store
        .read_all(recount::Cursor::START, &map.filter(), usize::MAX)
        .await?
        .events
    {
        out.extend(map.map(&e)?);
    }
    Ok((store, out))
}

fn up(port: u16) -> bool {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(1)).is_ok()
}

/// Publishes through a fresh relay on `sink` and returns events/s.
async fn through_relay(store: &InMemoryStore, sink: Arc<dyn Sink>, n: u64) -> Result<f64> {
    let relay = Relay::new(name("r"), store.clone(), mapping(), sink);
    let options = RunnerOptions {
        batch_size: BATCH,
        ..Default::default()
    };
    let runner = Runner::with_options(store.clone(), relay, options);
    let start = Instant::now();
    let done = runner.catch_up().await?;
    assert_eq!(done, n, "the relay handled every event");
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

fn row(broker: &str, raw: f64, recount: f64, n: u64, note: &str) -> Row {
    Row {
        scenario: "relay".to_owned(),
        store: broker.to_owned(),
        recount_per_sec: recount,
        raw_per_sec: raw,
        ratio: recount / raw,
        unit: "events",
        recount_median_us: 0.0,
        raw_median_us: 0.0,
        note: format!("{n} events, batches of {BATCH}; {note}"),
    }
}

/// Runs the scenario on every broker that answers on 127.0.0.1 (under `CI`, a broker that
/// does not answer is an error).
pub async fn run_relay(opts: &BenchOptions) -> Result<Vec<Row>> {
    let n = opts.size(50_000, 2_000);
    let (store, events) = seeded(n).await?;
    let mut rows = Vec::new();
    // `RECOUNT_BENCH_BROKERS=redis,nats` measures only those (to profile one).
    let only = std::env::var("RECOUNT_BENCH_BROKERS").ok();
    let wanted = |b: &str| only.as_deref().is_none_or(|o| o.split(',').any(|x| x == b));
    for &(broker, port) in BROKERS.iter().filter(|(b, _)| wanted(b)) {
        if !up(port) {
            if std::env::var_os("CI").is_some() {
                return Err(recount::Error::store(format!(
                    "bench relay: {broker} on 127.0.0.1:{port} is down"
                )));
            }
            eprintln!("relay on {broker}: skipped, nothing on 127.0.0.1:{port}");
            continue;
        }
        let (mut raw, mut recount, mut note) = (0f64, 0f64, "");
        // Best of a few rounds, alternating sides, each on names of its own.
        for _ in 0..ROUNDS {
            let (sink, how, made) = match broker {
                "nats" => nats::sink().await?,
                "redis" => redis::sink().await?,
                _ => rabbit::sink().await?,
            };
            note = how;
            recount = recount.max(through_relay(&store, sink, n).await?);
            match broker {
                "nats" => nats::cleanup(&made).await,
                "redis" => redis::cleanup(&made).await,
                _ => rabbit::cleanup(&made).await,
            }
            let r = match broker {
                "nats" => nats::raw(&events).await?,
                "redis" => redis::raw(&events).await?,
                _ => rabbit::raw(&events).await?,
            };
            raw = raw.max(r);
        }
        rows.push(row(broker, raw, recount, n, note));
        eprintln!(
            "relay on {broker}: recount {recount:.0}/s, raw {raw:.0}/s, ratio {:.2}",
            recount / raw
        );
    }
    Ok(rows)
}

mod nats {
    use super::*;
    use async_nats::jetstream;
    use recount_relay::nats::{NatsConfig, NatsSink};

    const URL: &str = "nats://127.0.0.1:4222";

    pub(super) async fn sink() -> Result<(Arc<dyn Sink>, &'static str, String)> {
        let stream = name("N");
        let config = NatsConfig {
            url: URL.into(),
            stream: stream.clone(),
            prefix: stream.to_lowercase(),
        };
        Ok((
            Arc::new(NatsSink::connect(config).await?),
            "raw: the same messages (body and metadata headers) as pipelined JetStream publishes, all acks awaited per batch",
            stream,
        ))
    }

    /// Deletes the relay's stream.
    pub(super) async fn cleanup(stream: &str) {
        if let Ok(client) = async_nats::connect(URL).await {
            let _ = jetstream::new(client).delete_stream(stream).await;
        }
    }

    pub(super) async fn raw(events: &[IntegrationEvent]) -> Result<f64> {
        let e = |e: &dyn std::fmt::Display| recount::Error::store(e.to_string());
        let client = async_nats::connect(URL).await.map_err(|x| e(&x))?;
        let js = jetstream::new(client);
        let stream = name("N");
        let prefix = stream.to_lowercase();
        js.create_stream(jetstream::stream::Config {
            name: stream.clone(),
            subjects: vec![format!("{prefix}.>")],
            ..Default::default()
        })
        .await
        .map_err(|x| e(&x))?;
        let start = Instant::now();
        for batch in events.chunks(BATCH) {
            let mut acks = Vec::with_capacity(batch.len());
            for ev in batch {
                let h = NatsSink::message_headers(ev);
                let subject = format!("{prefix}.{}", ev.name);
                acks.push(
                    js.publish_with_headers(subject, h, ev.to_json().into())
                        .await
                        .map_err(|x| e(&x))?,
                );
            }
            for ack in acks {
                ack.await.map_err(|x| e(&x))?;
            }
        }
        let rate = events.len() as f64 / start.elapsed().as_secs_f64();
        let _ = js.delete_stream(&stream).await;
        Ok(rate)
    }
}

mod redis {
    use super::*;
    use recount_relay::redis::{RedisConfig, RedisSink};

    const URL: &str = "redis://127.0.0.1:6379";

    pub(super) async fn sink() -> Result<(Arc<dyn Sink>, &'static str, String)> {
        let prefix = name("r");
        let config = RedisConfig {
            url: URL.into(),
            prefix: prefix.clone(),
            relay: "bench".into(),
        };
        Ok((
            Arc::new(RedisSink::connect(config).await?),
            "raw: the same entries as one atomic pipeline of XADDs and a SET per batch",
            prefix,
        ))
    }

    /// Deletes the relay's stream and position.
    pub(super) async fn cleanup(prefix: &str) {
        if let Ok(client) = ::redis::Client::open(URL) {
            if let Ok(mut conn) = client.get_multiplexed_async_connection().await {
                let keys = [
                    format!("{prefix}:bench"),
                    format!("{prefix}:relay:bench"),
                    format!("{prefix}:position"),
                ];
                let _: ::redis::RedisResult<()> =
                    ::redis::cmd("DEL").arg(&keys).query_async(&mut conn).await;
            }
        }
    }

    pub(super) async fn raw(events: &[IntegrationEvent]) -> Result<f64> {
        let e = |x: ::redis::RedisError| recount::Error::store(x.to_string());
        let client = ::redis::Client::open(URL).map_err(e)?;
        let mut conn = client.get_multiplexed_async_connection().await.map_err(e)?;
        let prefix = name("r");
        let start = Instant::now();
        for batch in events.chunks(BATCH) {
            let mut pipe = ::redis::pipe();
            pipe.atomic();
            for ev in batch {
                let fields = recount_relay::redis::entry_fields(ev);
                let fields = fields.pairs();
                pipe.xadd(format!("{prefix}:{}", ev.topic()), "*", &fields)
                    .ignore();
            }
            pipe.set(
                format!("{prefix}:position"),
                batch[batch.len() - 1].cursor.to_string(),
            )
            .ignore();
            pipe.query_async::<()>(&mut conn).await.map_err(e)?;
        }
        let rate = events.len() as f64 / start.elapsed().as_secs_f64();
        cleanup(&prefix).await;
        Ok(rate)
    }
}

mod rabbit {
    use super::*;
    use lapin::options::{
        BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
        QueueDeclareOptions,
    };
    use lapin::types::FieldTable;
    use lapin::{Connection, ConnectionProperties, ExchangeKind};
    use recount_relay::rabbitmq::{RabbitConfig, RabbitSink};

    const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

    fn e(x: lapin::Error) -> recount::Error {
        recount::Error::store(x.to_string())
    }

    /// A durable exchange with a durable queue bound to it, so persistent messages are
    /// stored (an exchange with no queue confirms without writing anything).
    async fn exchange() -> Result<(Connection, lapin::Channel, String)> {
        let props = ConnectionProperties::default()
            .with_executor(tokio_executor_trait::Tokio::current())
            .with_reactor(tokio_reactor_trait::Tokio);
        let conn = Connection::connect(URL, props).await.map_err(e)?;
        let ch = conn.create_channel().await.map_err(e)?;
        let name = name("x");
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        ch.exchange_declare(&name, ExchangeKind::Topic, durable, FieldTable::default())
            .await
            .map_err(e)?;
        let q = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        // The broker drops the queue (and its messages) two minutes after the run.
        let mut args = FieldTable::default();
        args.insert(
            "x-expires".into(),
            lapin::types::AMQPValue::LongUInt(120_000),
        );
        ch.queue_declare(&name, q, args).await.map_err(e)?;
        ch.queue_bind(
            &name,
            &name,
            "#",
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(e)?;
        Ok((conn, ch, name))
    }

    pub(super) async fn sink() -> Result<(Arc<dyn Sink>, &'static str, String)> {
        let (_conn, _ch, name) = exchange().await?;
        let config = RabbitConfig {
            url: URL.into(),
            exchange: name.clone(),
        };
        Ok((
            Arc::new(RabbitSink::connect(config).await?),
            "raw: the same messages (body and properties) as persistent publishes, all confirms awaited per batch",
            name,
        ))
    }

    /// Nothing: the queue expires by itself.
    pub(super) async fn cleanup(_exchange: &str) {}

    pub(super) async fn raw(events: &[IntegrationEvent]) -> Result<f64> {
        let (_conn, ch, name) = exchange().await?;
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(e)?;
        let start = Instant::now();
        for batch in events.chunks(BATCH) {
            let mut confirms = Vec::with_capacity(batch.len());
            for ev in batch {
                let props = RabbitSink::properties(ev);
                let c = ch
                    .basic_publish(
                        &name,
                        &ev.name,
                        BasicPublishOptions::default(),
                        ev.to_json().as_bytes(),
                        props,
                    )
                    .await
                    .map_err(e)?;
                confirms.push(c);
            }
            for c in confirms {
                c.await.map_err(e)?;
            }
        }
        Ok(events.len() as f64 / start.elapsed().as_secs_f64())
    }
}
