//! The scenarios of the benchmark contract, each run through Recount and through the raw
//! baseline with the same concurrency, sizes and data.

use super::{BenchOptions, PairFactory, RawEvent, RawStore, Row, StorePair};
use crate::fixtures::{Account, BenchEvent, BENCH_EVENT_TYPE};
use recount::{
    Aggregate, Cursor, EventStore, ExpectedVersion, LogFilter, Repository, Result, Snapshot,
    StreamId,
};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Scenario names, in the order they run.
pub const SCENARIOS: &[&str] = &[
    "append-single",
    "append-single-8",
    "append-batch",
    "load",
    "load-snapshot",
    "replay",
    "rebuild",
    "command",
    "command-8",
    "command-contended",
];

/// A rate and the median latency of one operation.
#[derive(Debug, Clone, Copy)]
struct Measured {
    per_sec: f64,
    median_us: f64,
    /// The 95th percentile latency (0 where not measured).
    p95_us: f64,
}

/// Runs `ops` operations over `workers` tasks (each runs its share in sequence), counting
/// `units` per operation.
async fn drive<F, Fut>(workers: usize, ops: u64, units: u64, op: F) -> Result<Measured>
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send,
{
    let op = Arc::new(op);
    let per_worker = ops / workers as u64;
    let start = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_worker as usize);
                for i in 0..per_worker {
                    let t = Instant::now();
                    op(w, i).await?;
                    latencies.push(t.elapsed());
                }
                Ok::<_, recount::Error>(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.map_err(recount::Error::store)??);
    }
    let elapsed = start.elapsed();
    Ok(Measured {
        per_sec: (per_worker * workers as u64 * units) as f64 / elapsed.as_secs_f64(),
        median_us: median_us(&mut latencies),
        p95_us: percentile_us(&mut latencies, 0.95),
    })
}

fn median_us(latencies: &mut [Duration]) -> f64 {
    percentile_us(latencies, 0.5)
}

fn percentile_us(latencies: &mut [Duration], q: f64) -> f64 {
    if latencies.is_empty() {
        return 0.0;
    }
    latencies.sort_unstable();
    let at = ((latencies.len() as f64 * q) as usize).min(latencies.len() - 1);
    latencies[at].as_secs_f64() * 1e6
}

fn raw_event(n: u64) -> RawEvent {
    RawEvent {
        id: uuid::Uuid::now_v7(),
        event_type: BENCH_EVENT_TYPE,
        payload: serde_json::to_string(&BenchEvent::nth(n)).expect("encodes"),
        metadata: "{}".to_owned(),
    }
}

fn stream(run: &str, w: usize) -> StreamId {
    StreamId::new("account", &format!("{run}{w}")).expect("valid stream id")
}

/// Rounds each side runs; its best round counts. On a shared two-core machine a round can lose
/// a large share of its CPU to other work, and the best of three is much steadier than one.
const ROUNDS: u32 = 3;

/// The best of [`ROUNDS`] rounds of each side, alternating raw, recount, recount, raw, raw,
/// recount, so neither side always runs on a warmer or fuller database; the storage settles
/// before every round.
async fn best_of_rounds<R, X, RF, XF>(
    pair: &StorePair,
    raw: R,
    recount: X,
) -> Result<(Measured, Measured)>
where
    R: Fn(u32) -> RF,
    X: Fn(u32) -> XF,
    RF: Future<Output = Result<Measured>>,
    XF: Future<Output = Result<Measured>>,
{
    let best = |a: Measured, b: Measured| if a.per_sec >= b.per_sec { a } else { b };
    pair.raw.settle().await?;
    let mut best_raw = raw(0).await?;
    pair.raw.settle().await?;
    let mut best_recount = recount(0).await?;
    for round in 1..ROUNDS {
        for recount_turn in [round % 2 == 1, round % 2 == 0] {
            pair.raw.settle().await?;
            if recount_turn {
                best_recount = best(best_recount, recount(round).await?);
            } else {
                best_raw = best(best_raw, raw(round).await?);
            }
        }
    }
    Ok((best_raw, best_recount))
}

fn row(
    scenario: &str,
    store: &str,
    unit: &'static str,
    raw: Measured,
    recount: Measured,
    note: String,
) -> Row {
    Row {
        scenario: scenario.to_owned(),
        store: store.to_owned(),
        recount_per_sec: recount.per_sec,
        raw_per_sec: raw.per_sec,
        ratio: recount.per_sec / raw.per_sec,
        unit,
        recount_median_us: recount.median_us,
        raw_median_us: raw.median_us,
        note,
    }
}

async fn appends(
    pair: &StorePair,
    label: &str,
    workers: usize,
    ops: u64,
    batch: u64,
) -> Result<(Measured, Measured)> {
    let raw = |round: u32| {
        let raw = pair.raw.clone();
        let run = format!("{label}raw{round}w");
        drive(workers, ops, batch, move |w, i| {
            let raw = raw.clone();
            let s = stream(&run, w).to_string();
            async move {
                let events: Vec<RawEvent> = (0..batch).map(|k| raw_event(i * batch + k)).collect();
                raw.append(&s, i * batch, &events).await
            }
        })
    };
    let recount = |round: u32| {
        let store = pair.store.clone();
        let run = format!("{label}rc{round}w");
        drive(workers, ops, batch, move |w, i| {
            let store = store.clone();
            let s = stream(&run, w);
            async move {
                let events = (0..batch)
                    .map(|k| BenchEvent::new_event(i * batch + k))
                    .collect();
                store
                    .append(&s, ExpectedVersion::Exact(i * batch), events)
                    .await
                    .map(drop)
            }
        })
    };
    best_of_rounds(pair, raw, recount).await
}

/// Commands a stream takes in the `command` scenarios before the next one is used: small
/// aggregates, as most are.
const COMMANDS_PER_STREAM: u64 = 10;

/// Commands (load, decide, append one event) by `workers` writers: each on streams of its
/// own, or (`contended`) all on one stream, retrying on conflict. Recount
/// runs `Repository::execute`; the raw side is `raw-es`, a minimal hand-written event store:
/// select the stream's rows, fold, insert with the store's version check (the unique
/// `(stream, version)` index on PostgreSQL), and on a conflict do it all again at once.
async fn commands(
    pair: &StorePair,
    label: &str,
    workers: usize,
    ops: u64,
    contended: bool,
) -> Result<(Measured, Measured)> {
    let stream_of = move |run: &str, w: usize, i: u64| match contended {
        true => format!("{run}one"),
        false => format!("{run}{w}x{}", i / COMMANDS_PER_STREAM),
    };
    let raw = |round: u32| {
        let raw = pair.raw.clone();
        let run = format!("{label}raw{round}w");
        drive(workers, ops, 1, move |w, i| {
            let raw = raw.clone();
            let s = format!("account-{}", stream_of(&run, w, i));
            async move {
                for _ in 0..10_000 {
                    let state = raw_load(raw.as_ref(), &s, false).await?;
                    let event = raw_event(state.deposits);
                    if raw.append_expecting(&s, state.deposits, &[event]).await? {
                        return Ok(());
                    }
                }
                Err(recount::Error::store("raw-es: 10,000 conflicts in a row"))
            }
        })
    };
    let repo = Repository::<Account, Arc<dyn EventStore>>::new(pair.store.clone());
    let recount = |round: u32| {
        let repo = repo.clone();
        let run = format!("{label}rc{round}w");
        drive(workers, ops, 1, move |w, i| {
            let repo = repo.clone();
            let id = stream_of(&run, w, i);
            async move {
                repo.execute(&id, &recount::CommandContext::default(), |a: &Account| {
                    Ok(vec![BenchEvent::nth(a.deposits)])
                })
                .await
                .map(drop)
                .map_err(|e| recount::Error::store(e.to_string()))
            }
        })
    };
    best_of_rounds(pair, raw, recount).await
}

/// Writes `events` events to `stream` in batches of 100 through the store (and shows them to
/// a raw baseline with storage of its own).
async fn seed_stream(pair: &StorePair, s: &StreamId, events: u64) -> Result<()> {
    let mut version = 0;
    while version < events {
        let n = (events - version).min(100);
        let batch: Vec<_> = (version..version + n).map(BenchEvent::new_event).collect();
        let raw: Vec<RawEvent> = batch
            .iter()
            .map(|e| RawEvent {
                id: e.id,
                event_type: BENCH_EVENT_TYPE,
                payload: e.payload.get().to_owned(),
                metadata: "{}".to_owned(),
            })
            .collect();
        pair.store
            .append(s, ExpectedVersion::Exact(version), batch)
            .await?;
        pair.raw.seed(s.as_str(), version, &raw).await?;
        version += n;
    }
    Ok(())
}

async fn loads(pair: &StorePair, ops: u64, with_snapshot: bool) -> Result<(Measured, Measured)> {
    const LEN: u64 = 1000;
    let s = stream(if with_snapshot { "loadsnap" } else { "load" }, 0);
    seed_stream(pair, &s, LEN).await?;
    if with_snapshot {
        let state = Account::replayed((0..LEN).map(BenchEvent::nth));
        let snapshot = Snapshot {
            stream: s.clone(),
            version: LEN,
            tag: Account::snapshot_tag().to_owned(),
            state: serde_json::to_string(&state).map_err(recount::Error::store)?,
        };
        pair.raw
            .seed_snapshot(s.as_str(), LEN, &snapshot.state)
            .await?;
        pair.store.save_snapshot(snapshot).await?;
    }
    let repo = Repository::<Account, Arc<dyn EventStore>>::new(pair.store.clone());
    let id = s.id().to_owned();
    let raw = |_| {
        let (raw, s) = (pair.raw.clone(), s.to_string());
        drive(1, ops, 1, move |_, _| {
            let (raw, s) = (raw.clone(), s.clone());
            async move {
                raw_load(raw.as_ref(), &s, with_snapshot)
                    .await
                    .map(|a| assert_eq!(a.deposits, LEN))
            }
        })
    };
    let recount = |_| {
        let (repo, id) = (repo.clone(), id.clone());
        drive(1, ops, 1, move |_, _| {
            let (repo, id) = (repo.clone(), id.clone());
            async move {
                repo.load(&id)
                    .await
                    .map(|l| assert_eq!(l.state.deposits, LEN))
            }
        })
    };
    best_of_rounds(pair, raw, recount).await
}

/// What `Repository::load` does, written directly against the raw baseline.
async fn raw_load(raw: &dyn RawStore, stream: &str, with_snapshot: bool) -> Result<Account> {
    let (mut state, from) = match with_snapshot {
        true => match raw.load_snapshot(stream).await? {
            Some((v, json)) => (
                serde_json::from_str(&json).map_err(recount::Error::store)?,
                v + 1,
            ),
            None => (Account::default(), 1),
        },
        false => (Account::default(), 1),
    };
    for row in raw.read_stream(stream, from).await? {
        let e: BenchEvent = serde_json::from_str(&row.payload).map_err(recount::Error::store)?;
        state.fold(&e);
    }
    Ok(state)
}

/// Seeds `events` events over up to 1,000 streams, 4 seeders at once; returns the count.
async fn seed_log(pair: &StorePair, events: u64) -> Result<u64> {
    let streams = 1000.min(events / 100).max(1);
    let per_stream = events / streams;
    let seeders = (0..4u64).map(|w| async move {
        for k in (w..streams).step_by(4) {
            seed_stream(pair, &stream("replay", k as usize), per_stream).await?;
        }
        Ok::<_, recount::Error>(())
    });
    futures::future::try_join_all(seeders).await?;
    Ok(per_stream * streams)
}

/// The raw read rate of the whole log in pages of 1,000, as the baseline of replay and rebuild.
async fn raw_read_rate(pair: &StorePair, total: u64) -> Result<Measured> {
    let mut latencies = Vec::new();
    let start = Instant::now();
    let (mut after, mut n) = ((0, 0), 0u64);
    loop {
        let t = Instant::now();
        let rows = pair.raw.read_log(after, PAGE).await?;
        latencies.push(t.elapsed());
        let Some(last) = rows.last() else { break };
        after = last.position;
        n += rows.len() as u64;
    }
    assert_eq!(n, total, "the raw read saw every event");
    Ok(Measured {
        per_sec: n as f64 / start.elapsed().as_secs_f64(),
        median_us: median_us(&mut latencies),
        p95_us: 0.0,
    })
}

const PAGE: usize = 1000;

async fn replay(pair: &StorePair, events: u64) -> Result<(Measured, Measured)> {
    let total = seed_log(pair, events).await?;
    let raw = |_| raw_read_rate(pair, total);
    let recount = |_| async {
        let mut latencies = Vec::new();
        let start = Instant::now();
        let (mut after, mut n, filter) = (Cursor::START, 0u64, LogFilter::all());
        loop {
            let t = Instant::now();
            let batch = pair.store.read_all(after, &filter, PAGE).await?;
            latencies.push(t.elapsed());
            if batch.events.is_empty() && batch.last_seen == after {
                break;
            }
            after = batch.last_seen;
            // The no-op projection: look at each event, do nothing.
            n += batch
                .events
                .iter()
                .filter(|e| !e.payload.is_empty())
                .count() as u64;
        }
        assert_eq!(n, total, "the replay read every event");
        Ok(Measured {
            per_sec: n as f64 / start.elapsed().as_secs_f64(),
            median_us: median_us(&mut latencies),
            p95_us: 0.0,
        })
    };
    best_of_rounds(pair, raw, recount).await
}

/// Event counts per type: the in-memory read model rebuilt by the `rebuild` scenario.
#[derive(Debug, Clone, Default)]
struct TypeCounts(std::collections::HashMap<String, u64>);

impl recount::projection::ReadModel for TypeCounts {
    fn apply(&mut self, event: &recount::RecordedEvent) -> Result<()> {
        match self.0.get_mut(&event.event_type) {
            Some(n) => *n += 1,
            None => {
                self.0.insert(event.event_type.clone(), 1);
            }
        }
        Ok(())
    }
}

/// Rebuilds a projection over the whole log (in-memory read model, and the store's SQL read
/// model when it has one) beside the raw read rate of the same rows.
async fn rebuilds(
    pair: &StorePair,
    events: u64,
) -> Result<Vec<(&'static str, Measured, Measured)>> {
    let total = seed_log(pair, events).await?;
    let raw = raw_read_rate(pair, total).await?;
    let timed = |done: u64, start: Instant, batches: &mut Vec<Duration>| {
        assert_eq!(done, total, "the rebuild handled every event");
        Measured {
            per_sec: done as f64 / start.elapsed().as_secs_f64(),
            median_us: median_us(batches),
            p95_us: 0.0,
        }
    };
    let mut rows = Vec::new();
    let model = recount::projection::InMemoryProjection::<TypeCounts>::new("bench-types");
    let (start, mut batches, mut last) = (Instant::now(), Vec::new(), Instant::now());
    let done = recount::projection::rebuild(
        &pair.store,
        model,
        None::<&recount::projection::InMemoryProjection<TypeCounts>>,
        PAGE,
        |_| {
            batches.push(last.elapsed());
            last = Instant::now();
        },
    )
    .await?;
    rows.push((
        "in-memory read model",
        raw,
        timed(done, start, &mut batches),
    ));
    if let Some(sql) = pair.raw.sql_projection(1) {
        let (start, mut batches, mut last) = (Instant::now(), Vec::new(), Instant::now());
        let done = recount::projection::rebuild(
            &pair.store,
            sql,
            None::<&Box<dyn recount::projection::Consumer>>,
            PAGE,
            |_| {
                batches.push(last.elapsed());
                last = Instant::now();
            },
        )
        .await?;
        rows.push(("SQL read model", raw, timed(done, start, &mut batches)));
    }
    Ok(rows)
}

/// Runs every selected scenario on fresh storage from `factory`.
pub async fn run_scenarios(factory: &PairFactory, opts: &BenchOptions) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for &scenario in SCENARIOS {
        if !opts.wants(scenario) {
            continue;
        }
        let pair = factory().await?;
        let name = pair.name;
        if scenario == "rebuild" {
            let n = opts.size(1_000_000, 20_000);
            for (what, raw, recount) in rebuilds(&pair, n).await? {
                let r = row(
                    scenario,
                    name,
                    "events",
                    raw,
                    recount,
                    format!("{what}, {n} events; raw = raw read rate"),
                );
                eprintln!(
                    "rebuild ({what}) on {name}: recount {:.0}/s, raw read {:.0}/s, ratio {:.2}",
                    r.recount_per_sec, r.raw_per_sec, r.ratio
                );
                rows.push(r);
            }
            continue;
        }
        let (unit, (raw, recount), note) = match scenario {
            "append-single" => (
                "ops",
                appends(&pair, "s", 1, opts.size(20_000, 1_000), 1).await?,
                String::new(),
            ),
            "append-single-8" => (
                "ops",
                appends(&pair, "e", 8, opts.size(24_000, 1_600), 1).await?,
                String::new(),
            ),
            "append-batch" => (
                "events",
                appends(&pair, "b", 4, opts.size(2_000, 40), 100).await?,
                "100 events per append, 4 writers".to_owned(),
            ),
            "load" => (
                "ops",
                loads(&pair, opts.size(300, 20), false).await?,
                "1,000-event stream".to_owned(),
            ),
            "load-snapshot" => (
                "ops",
                loads(&pair, opts.size(3_000, 200), true).await?,
                "snapshot at 1,000".to_owned(),
            ),
            "replay" => {
                let n = opts.size(1_000_000, 20_000);
                (
                    "events",
                    replay(&pair, n).await?,
                    format!("{n} events, pages of 1,000"),
                )
            }
            "command" => (
                "ops",
                commands(&pair, "c", 1, opts.size(2_000, 100), false).await?,
                format!("load + decide + append, {COMMANDS_PER_STREAM} commands a stream; raw = raw-es"),
            ),
            "command-8" => (
                "ops",
                commands(&pair, "d", 8, opts.size(8_000, 400), false).await?,
                format!("8 writers on streams of their own, {COMMANDS_PER_STREAM} commands a stream; raw = raw-es"),
            ),
            "command-contended" => {
                let (raw, recount) = commands(&pair, "k", 8, opts.size(2_000, 160), true).await?;
                (
                    "ops",
                    (raw, recount),
                    format!(
                        "8 writers on one stream, retrying on conflict; p95 {:.0}µs (raw-es {:.0}µs)",
                        recount.p95_us,
                        raw.p95_us
                    ),
                )
            }
            other => unreachable!("unknown scenario {other}"),
        };
        let r = row(scenario, name, unit, raw, recount, note);
        eprintln!(
            "{scenario} on {name}: recount {:.0}/s, raw {:.0}/s, ratio {:.2}",
            r.recount_per_sec, r.raw_per_sec, r.ratio
        );
        rows.push(r);
    }
    Ok(rows)
}
