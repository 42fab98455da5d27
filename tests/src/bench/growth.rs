//! Scenario `growth` (issue 24): one store filled to each of a list of log sizes, with the
//! same measures taken at every size, so what does not stay flat shows.
//!
//! The fill: 4 writers append 100-event batches (~200-byte payloads) round-robin over 76,000
//! streams, each at its exact expected version. At each size, after the fill:
//! - single-event appends by 4 writers, first to new streams, then to those streams again
//!   (existing streams): p50 and p99; on PostgreSQL, after a `CHECKPOINT`, the WAL written
//!   per existing-stream append, and per append to a random stream of the fill;
//! - a window of batch appends with a live tail follower: the batch rate, the longest stall
//!   (the longest time between two completed appends of one writer, over the fill that led
//!   here and the window), and the follower's rate;
//! - replay of the log from the start, bytes per event, and the largest WAL file seen
//!   (SQLite) since the previous size;
//! - PostgreSQL: `read_all` pages under forced custom and forced generic plans, and forced
//!   generic plans on a session with JIT on (what the store's sessions did before).
//!
//! It runs only when asked (`--scenario growth`), never in the default set or `--quick` runs.

use super::{BenchOptions, StorePair};
use crate::fixtures::BenchEvent;
use recount::{Cursor, EventStore, ExpectedVersion, LogFilter, Result, StreamId};
use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The scenario's name.
pub const SCENARIO: &str = "growth";

const WRITERS: u64 = 4;
const BATCH: u64 = 100;

/// Sizes of one run, full or quick.
#[derive(Debug, Clone, Copy)]
struct Plan {
    streams: u64,
    window_batches: u64,
    singles: u64,
    replay: u64,
    plan_pages: u64,
}

impl Plan {
    fn new(opts: &BenchOptions) -> Self {
        let size = |full, quick| opts.size(full, quick);
        Plan {
            streams: size(76_000, 760),
            window_batches: size(500, 20),
            singles: size(500, 25),
            replay: size(500_000, 5_000),
            plan_pages: size(100, 10),
        }
    }
}

/// The sizes measured when `--sizes` is not given.
pub fn default_sizes(opts: &BenchOptions) -> Vec<u64> {
    if opts.quick {
        vec![0, 20_000]
    } else {
        vec![0, 1_000_000, 5_000_000]
    }
}

/// The measures at one log size.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GrowthRow {
    /// Store name.
    pub store: String,
    /// Events in the log when the measures started.
    pub events: u64,
    /// Events per second of the fill that led to this size (`None` at the first size).
    pub load_per_sec: Option<f64>,
    /// Single-event appends to new streams: p50 and p99, µs.
    pub new_p50_us: f64,
    /// See `new_p50_us`.
    pub new_p99_us: f64,
    /// Single-event appends to existing streams: p50 and p99, µs.
    pub existing_p50_us: f64,
    /// See `existing_p50_us`.
    pub existing_p99_us: f64,
    /// Events per second of the batch window.
    pub batch_per_sec: f64,
    /// The longest time between two completed batch appends of one writer, ms.
    pub longest_stall_ms: f64,
    /// Events per second the tail follower read during the window.
    pub tail_per_sec: f64,
    /// Events per second of a replay from the start.
    pub replay_per_sec: f64,
    /// Storage bytes per event.
    pub bytes_per_event: Option<f64>,
    /// WAL bytes per single-event append to an existing stream (PostgreSQL).
    pub wal_per_append: Option<f64>,
    /// WAL bytes per single-event append to a random stream of the fill (PostgreSQL).
    pub wal_per_random_append: Option<f64>,
    /// The largest WAL file seen since the previous size (SQLite).
    pub max_wal_file_bytes: Option<u64>,
    /// The longest group commit of the store's writer since the start, ms (SQLite): the
    /// store's share of a stall, checkpoint waits included.
    pub longest_commit_ms: Option<f64>,
    /// Milliseconds per `read_all` page of 1,000 under each plan-cache mode (PostgreSQL).
    pub page_ms: Vec<(String, f64)>,
}

/// What the run has written, shared by its writers.
struct Log {
    streams: u64,
    /// The version of each fill stream.
    versions: Vec<AtomicU64>,
    /// Batches handed out so far (batch `b` goes to stream `b % streams`).
    next_batch: AtomicU64,
    total: AtomicU64,
    head: Mutex<Cursor>,
}

impl Log {
    fn new(streams: u64) -> Self {
        Log {
            streams,
            versions: (0..streams).map(|_| AtomicU64::new(0)).collect(),
            next_batch: AtomicU64::new(0),
            total: AtomicU64::new(0),
            head: Mutex::new(Cursor::START),
        }
    }

    fn wrote(&self, events: u64, cursor: Cursor) {
        self.total.fetch_add(events, Ordering::Relaxed);
        let mut head = self.head.lock().unwrap_or_else(|p| p.into_inner());
        *head = (*head).max(cursor);
    }

    fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}

fn fill_stream(n: u64) -> StreamId {
    StreamId::new("account", &format!("g{n}")).expect("valid stream id")
}

/// Appends the next batch of the round-robin; returns when it committed.
async fn append_batch(store: &dyn EventStore, log: &Log) -> Result<()> {
    let b = log.next_batch.fetch_add(1, Ordering::Relaxed);
    let s = b % log.streams;
    let version = log.versions[s as usize].load(Ordering::Acquire);
    let events = (0..BATCH)
        .map(|k| BenchEvent::new_event(b * BATCH + k))
        .collect();
    let expected = ExpectedVersion::Exact(version);
    let done = store.append(&fill_stream(s), expected, events).await?;
    log.versions[s as usize].store(done.version, Ordering::Release);
    log.wrote(BATCH, done.cursor);
    Ok(())
}

/// The rate and the longest stall of `batches` batch appends by [`WRITERS`] writers.
async fn batches(store: &Arc<dyn EventStore>, log: &Arc<Log>, batches: u64) -> Result<(f64, f64)> {
    let start = Instant::now();
    let left = Arc::new(AtomicU64::new(batches));
    let tasks: Vec<_> = (0..WRITERS)
        .map(|_| {
            let (store, log, left) = (store.clone(), log.clone(), left.clone());
            tokio::spawn(async move {
                let (mut last, mut stall) = (Instant::now(), Duration::ZERO);
                while left
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_ok()
                {
                    append_batch(store.as_ref(), &log).await?;
                    stall = stall.max(last.elapsed());
                    last = Instant::now();
                }
                Ok::<_, recount::Error>(stall)
            })
        })
        .collect();
    let mut stall = Duration::ZERO;
    for t in tasks {
        stall = stall.max(t.await.map_err(recount::Error::store)??);
    }
    let rate = (batches * BATCH) as f64 / start.elapsed().as_secs_f64();
    Ok((rate, stall.as_secs_f64() * 1e3))
}

/// Fills the log up to `target` events, in steps of a million with progress on stderr.
async fn fill(store: &Arc<dyn EventStore>, log: &Arc<Log>, target: u64) -> Result<(f64, f64)> {
    let (start, from) = (Instant::now(), log.total());
    let mut stall: f64 = 0.0;
    while log.total() + BATCH <= target {
        let step = (target - log.total()).min(1_000_000) / BATCH;
        let (rate, s) = batches(store, log, step).await?;
        stall = stall.max(s);
        eprintln!(
            "growth: {} events ({rate:.0}/s, longest stall {s:.1} ms)",
            log.total()
        );
    }
    let rate = (log.total() - from) as f64 / start.elapsed().as_secs_f64();
    Ok((rate, stall))
}

/// A follower of the log's tail from `from` until `stop` is set and it has caught up.
async fn follow(store: Arc<dyn EventStore>, from: Cursor, stop: Arc<AtomicBool>) -> Result<u64> {
    let (mut after, mut read) = (from, 0);
    loop {
        let stopping = stop.load(Ordering::Acquire);
        let batch = store.read_all(after, &LogFilter::all(), 1000).await?;
        match batch.events.last() {
            Some(last) => {
                after = last.cursor;
                read += batch.events.len() as u64;
            }
            None if stopping => return Ok(read),
            None => {
                store
                    .wait_for_append(after, Duration::from_millis(50))
                    .await
            }
        }
    }
}

/// The batch window with a tail follower: (batch rate, longest stall, follower rate).
async fn window(pair: &StorePair, log: &Arc<Log>, n: u64) -> Result<(f64, f64, f64)> {
    let from = *log.head.lock().unwrap_or_else(|p| p.into_inner());
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let follower = tokio::spawn(follow(pair.store.clone(), from, stop.clone()));
    let (rate, stall) = batches(&pair.store, log, n).await?;
    stop.store(true, Ordering::Release);
    let read = follower.await.map_err(recount::Error::store)??;
    Ok((rate, stall, read as f64 / start.elapsed().as_secs_f64()))
}

fn percentile_us(latencies: &mut [Duration], p: f64) -> f64 {
    if latencies.is_empty() {
        return 0.0;
    }
    latencies.sort_unstable();
    let i = ((latencies.len() as f64 * p) as usize).min(latencies.len() - 1);
    latencies[i].as_secs_f64() * 1e6
}

/// `n` single-event appends by each of [`WRITERS`] writers; writer `w` appends to its streams
/// `tag-w-0 ..` (a new one each time with `fresh`, else its first 25 again, whose versions it
/// keeps in `versions`). Returns the latencies.
async fn singles(
    store: &Arc<dyn EventStore>,
    log: &Arc<Log>,
    tag: String,
    n: u64,
    fresh: bool,
) -> Result<Vec<Duration>> {
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (store, log, tag) = (store.clone(), log.clone(), tag.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(n as usize);
                for i in 0..n {
                    let (k, expected) = if fresh {
                        (i, ExpectedVersion::NoStream)
                    } else {
                        (i % 25, ExpectedVersion::Exact(1 + i / 25))
                    };
                    let s = StreamId::new("probe", &format!("{tag}x{w}x{k}")).expect("valid id");
                    let t = Instant::now();
                    let done = store
                        .append(&s, expected, vec![BenchEvent::new_event(i)])
                        .await?;
                    latencies.push(t.elapsed());
                    log.wrote(1, done.cursor);
                }
                Ok::<_, recount::Error>(latencies)
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.map_err(recount::Error::store)??);
    }
    Ok(all)
}

/// Runs `work` from a settled (checkpointed) start: its result, and the WAL bytes written
/// per append of its `appends`.
async fn wal_around<T>(
    pair: &StorePair,
    appends: u64,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<(T, Option<f64>)> {
    pair.raw.settle().await?;
    let before = pair.raw.storage().await?.wal_position;
    let out = work.await?;
    let after = pair.raw.storage().await?.wal_position;
    let per_append = before
        .zip(after)
        .map(|(b, a)| a.saturating_sub(b) as f64 / appends as f64);
    Ok((out, per_append))
}

/// `n` single-event appends by one writer to random streams of the fill (none when the fill
/// has not written any).
async fn random_appends(store: &dyn EventStore, log: &Log, n: u64) -> Result<()> {
    let written = log.next_batch.load(Ordering::Relaxed).min(log.streams);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..n {
        // xorshift: a spread of streams, the same in every run.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let s = x % written;
        let version = log.versions[s as usize].load(Ordering::Acquire);
        let event = vec![BenchEvent::new_event(i)];
        let done = store
            .append(&fill_stream(s), ExpectedVersion::Exact(version), event)
            .await?;
        log.versions[s as usize].store(done.version, Ordering::Release);
        log.wrote(1, done.cursor);
    }
    Ok(())
}

/// Events per second reading the log from the start in pages of 1,000, up to `limit` events.
async fn replay(store: &dyn EventStore, limit: u64) -> Result<f64> {
    let (start, mut after, mut read) = (Instant::now(), Cursor::START, 0u64);
    while read < limit {
        let batch = store.read_all(after, &LogFilter::all(), 1000).await?;
        let Some(last) = batch.events.last() else {
            break;
        };
        after = last.cursor;
        read += batch.events.len() as u64;
    }
    Ok(read as f64 / start.elapsed().as_secs_f64().max(1e-9))
}

/// Milliseconds per page of 1,000 for each of the store's plan variants: the best of four
/// reads of `pages` pages from the start.
async fn page_times(pair: &StorePair, pages: u64) -> Result<Vec<(String, f64)>> {
    let mut out = Vec::new();
    for (name, store) in pair.raw.plan_variants().await? {
        // The best of three rounds after a warm-up: the machine is shared.
        let mut best: f64 = 0.0;
        for _ in 0..4 {
            best = best.max(replay(store.as_ref(), pages * 1000).await?);
        }
        out.push((name.to_owned(), 1000.0 / best * 1e3));
    }
    Ok(out)
}

/// Samples the WAL file's size while the run goes on; `take` returns the largest since the
/// last call.
struct WalWatch {
    largest: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl WalWatch {
    async fn start(pair: &StorePair) -> Result<Option<Self>> {
        if pair.raw.storage().await?.wal_file_bytes.is_none() {
            return Ok(None);
        }
        let (largest, stop) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (raw, l, s) = (pair.raw.clone(), largest.clone(), stop.clone());
        tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                if let Ok(storage) = raw.storage().await {
                    l.fetch_max(storage.wal_file_bytes.unwrap_or(0), Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        Ok(Some(WalWatch { largest, stop }))
    }

    fn take(&self) -> u64 {
        self.largest.swap(0, Ordering::Relaxed)
    }
}

impl Drop for WalWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The measures at the current size.
async fn measure(pair: &StorePair, log: &Arc<Log>, plan: Plan, row: &mut GrowthRow) -> Result<()> {
    let tag = format!("n{}", log.total());
    let mut new = singles(&pair.store, log, tag.clone(), plan.singles, true).await?;
    row.new_p50_us = percentile_us(&mut new, 0.5);
    row.new_p99_us = percentile_us(&mut new, 0.99);
    let appends = plan.singles * WRITERS;
    let work = singles(&pair.store, log, tag, plan.singles, false);
    let (mut existing, wal) = wal_around(pair, appends, work).await?;
    row.wal_per_append = wal;
    row.existing_p50_us = percentile_us(&mut existing, 0.5);
    row.existing_p99_us = percentile_us(&mut existing, 0.99);
    if log.next_batch.load(Ordering::Relaxed) > 0 {
        let work = random_appends(pair.store.as_ref(), log, appends);
        row.wal_per_random_append = wal_around(pair, appends, work).await?.1;
    }
    let (rate, stall, tail) = window(pair, log, plan.window_batches).await?;
    row.batch_per_sec = rate;
    row.longest_stall_ms = row.longest_stall_ms.max(stall);
    row.tail_per_sec = tail;
    row.replay_per_sec = replay(pair.store.as_ref(), plan.replay).await?;
    let storage = pair.raw.storage().await?;
    row.bytes_per_event = storage.bytes.map(|b| b as f64 / log.total() as f64);
    row.longest_commit_ms = storage.longest_commit_ms;
    if row.wal_per_append.is_some() {
        row.page_ms = page_times(pair, plan.plan_pages).await?;
    }
    Ok(())
}

/// Runs the scenario on one store at every size in `sizes` (ascending).
pub async fn run_growth(pair: &StorePair, opts: &BenchOptions) -> Result<Vec<GrowthRow>> {
    let plan = Plan::new(opts);
    let mut sizes = if opts.sizes.is_empty() {
        default_sizes(opts)
    } else {
        opts.sizes.clone()
    };
    sizes.sort_unstable();
    let log = Arc::new(Log::new(plan.streams));
    let watch = WalWatch::start(pair).await?;
    let mut rows = Vec::new();
    for size in sizes {
        let mut row = GrowthRow {
            store: pair.name.to_owned(),
            ..GrowthRow::default()
        };
        if size > log.total() {
            let (rate, stall) = fill(&pair.store, &log, size).await?;
            row.load_per_sec = Some(rate);
            row.longest_stall_ms = stall;
        }
        row.events = log.total();
        measure(pair, &log, plan, &mut row).await?;
        row.max_wal_file_bytes = watch.as_ref().map(WalWatch::take);
        eprintln!("growth: {row:?}");
        rows.push(row);
    }
    Ok(rows)
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"))
}

/// Prints the rows as a table.
pub fn print_growth_table(rows: &[GrowthRow]) {
    println!(
        "| store    | events     | load ev/s | new p50/p99 µs  | existing p50/p99 µs | \
         batch ev/s | longest stall ms | tail ev/s | replay ev/s | bytes/event | \
         WAL/append B (random) | max WAL file | longest commit ms | read_all ms/page"
    );
    for r in rows {
        let pages: Vec<String> = r
            .page_ms
            .iter()
            .map(|(n, ms)| format!("{n} {ms:.2}"))
            .collect();
        println!(
            "| {:<8} | {:>10} | {:>9} | {:>6.0} / {:>6.0} | {:>8.0} / {:>8.0} | {:>10.0} | \
             {:>16.1} | {:>9.0} | {:>11.0} | {:>11} | {:>9} ({:>9}) | {:>12} | {:>17} | {}",
            r.store,
            r.events,
            opt(r.load_per_sec, 0),
            r.new_p50_us,
            r.new_p99_us,
            r.existing_p50_us,
            r.existing_p99_us,
            r.batch_per_sec,
            r.longest_stall_ms,
            r.tail_per_sec,
            r.replay_per_sec,
            opt(r.bytes_per_event, 1),
            opt(r.wal_per_append, 0),
            opt(r.wal_per_random_append, 0),
            r.max_wal_file_bytes
                .map_or_else(|| "-".to_owned(), |b| b.to_string()),
            opt(r.longest_commit_ms, 1),
            pages.join(", ")
        );
    }
}

/// Writes the rows as a JSON array to `path`.
pub fn write_growth_json(rows: &[GrowthRow], path: &std::path::Path) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(rows).map_err(std::io::Error::other)?;
    std::fs::write(path, text)
}
