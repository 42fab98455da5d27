//! The `push-fanout` scenario: many SSE subscribers on one StoryChain server while comments
//! are appended at a steady rate, beside a raw baseline that serves the same SSE frames from
//! an in-memory broadcast channel fed by the appender (the same appends to the same SQLite
//! store, the same HTTP server library and client, the same parsing).
//!
//! What Recount adds is the path from a committed event to the subscriber: the log follower,
//! the per-subscriber filter and buffer, the JSON of the event. Each comment carries the time
//! it was sent; each subscriber measures the delay to its arrival. Reported: deliveries per
//! second (bounded by the append rate, so near 1 whenever both keep up), delivery latency
//! p50 (the row's medians) and p99 (the note), memory per idle subscriber (the growth of the
//! whole process's resident memory, server and clients, over the subscribers connected,
//! measured first while the process is fresh), and a second Recount round with one subscriber that never reads:
//! the others' p99 beside the first round's, and whether the stalled one was cut off.

use super::{BenchOptions, Row};
use axum::response::sse::{Event, Sse};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use storychain::domain::{Genre, Target, Visibility};
use storychain::http::ServeOptions;
use storychain::StoryChain;
use tokio::sync::broadcast;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Appends per second while subscribers listen: 20,000 deliveries a second to 1,000
/// subscribers, which the machine's two cores carry with room to spare (at 100 a second
/// both sides saturate them, and latency measures the queue).
const RATE: u64 = 20;

/// What one round measured.
struct Round {
    /// Delivery latencies of every subscriber that reads, microseconds, sorted.
    latencies: Vec<f64>,
    /// Deliveries per second over the round.
    per_sec: f64,
    /// Whether the stalled subscriber (if any) was cut off with an `end` event.
    stalled_cut_off: Option<bool>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Resident memory of this process, bytes (Linux; 0 elsewhere).
fn rss() -> f64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |pages| pages * 4096.0)
}

/// Reads SSE frames from `response` until `want` comments arrived; returns their delays.
async fn listen(mut response: reqwest::Response, want: usize, clock: Instant) -> Vec<f64> {
    let mut buffer = String::new();
    let mut delays = Vec::with_capacity(want);
    while delays.len() < want {
        let Ok(Some(chunk)) = response.chunk().await else {
            break;
        };
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            for line in frame.lines() {
                let Some(data) = line.strip_prefix("data:") else {
                    continue;
                };
                let Ok(v) = serde_json::from_str::<serde_json::Value>(data.trim()) else {
                    continue;
                };
                let text = v["payload"]["text"].as_str().unwrap_or_default();
                if let Some(sent) = text.strip_prefix('t').and_then(|t| t.split('|').next()) {
                    if let Ok(sent) = sent.parse::<f64>() {
                        delays.push(clock.elapsed().as_secs_f64() * 1e6 - sent);
                    }
                }
            }
        }
    }
    delays
}

/// Whether a subscriber that never read ends, once read, with an `end` event.
async fn was_cut_off(mut response: reqwest::Response) -> bool {
    let read = async {
        let mut tail = String::new();
        while let Ok(Some(chunk)) = response.chunk().await {
            tail.push_str(&String::from_utf8_lossy(&chunk));
            if tail.contains("event: end") || tail.contains("event:end") {
                return true;
            }
            let keep = tail.len().saturating_sub(64);
            tail.drain(..keep);
        }
        false
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .unwrap_or(false)
}

/// Connects `n` idle subscribers to `url`; returns the growth of resident memory per
/// subscriber, and the connections (keep them, so the next measure allocates afresh).
async fn idle_cost(url: &str, n: usize) -> Result<(f64, Vec<reqwest::Response>), BoxError> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;
    let before = rss();
    let mut open = Vec::with_capacity(n);
    for _ in 0..n {
        open.push(client.get(url).send().await?);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(((rss() - before).max(0.0) / n as f64, open))
}

/// One round: `n` subscribers on `url` (plus one that never reads, if `stall`), `events`
/// comments sent at [`RATE`] by `send`.
async fn round<F, Fut>(
    url: &str,
    n: usize,
    events: usize,
    stall: bool,
    clock: Instant,
    send: F,
) -> Result<Round, BoxError>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), BoxError>>,
{
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;
    let mut responses = Vec::with_capacity(n);
    for _ in 0..n {
        let response = client.get(url).send().await?;
        if !response.status().is_success() {
            return Err(format!("{url}: {}", response.status()).into());
        }
        responses.push(response);
    }
    let stalled = if stall {
        Some(client.get(url).send().await?)
    } else {
        None
    };
    let listeners: Vec<_> = responses
        .into_iter()
        .map(|r| tokio::spawn(listen(r, events, clock)))
        .collect();
    let started = Instant::now();
    let pad = "x".repeat(1500);
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / RATE));
    for _ in 0..events {
        tick.tick().await;
        let sent = clock.elapsed().as_secs_f64() * 1e6;
        send(format!("t{sent:.0}|{pad}")).await?;
    }
    let mut latencies = Vec::with_capacity(n * events);
    for l in listeners {
        let got = tokio::time::timeout(Duration::from_secs(60), l)
            .await
            .map_err(|_| "a subscriber never received every event")??;
        if got.len() != events {
            return Err(format!("a subscriber received {} of {events} events", got.len()).into());
        }
        latencies.extend(got);
    }
    let secs = started.elapsed().as_secs_f64();
    let stalled_cut_off = match stalled {
        Some(r) => Some(was_cut_off(r).await),
        None => None,
    };
    latencies.sort_by(f64::total_cmp);
    Ok(Round {
        per_sec: latencies.len() as f64 / secs,
        latencies,
        stalled_cut_off,
    })
}

/// Serves `app` (no consumers: only the live fan-out and the API) on a loopback port.
async fn serve(
    app: StoryChain,
) -> Result<(SocketAddr, tokio::sync::oneshot::Sender<()>), BoxError> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
    let options = ServeOptions {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        workers: false,
        ..ServeOptions::default()
    };
    tokio::spawn(async move {
        let done = storychain::http::serve(
            app,
            options,
            async move {
                let _ = stopped.await;
            },
            move |addr| {
                let _ = bound_tx.send(addr);
            },
        )
        .await;
        if let Err(e) = done {
            eprintln!("bench: push-fanout server failed: {e}");
        }
    });
    Ok((bound_rx.await?, stop))
}

/// The raw baseline's server: every frame the appender broadcasts, to every subscriber.
async fn serve_raw(frames: broadcast::Sender<Arc<String>>) -> Result<SocketAddr, BoxError> {
    let route = move || {
        let rx = frames.subscribe();
        async move {
            let stream = futures::stream::unfold(rx, |mut rx| async move {
                loop {
                    match rx.recv().await {
                        Ok(data) => {
                            let event = Event::default().data(data.as_str());
                            return Some((Ok::<_, Infallible>(event), rx));
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            });
            Sse::new(stream)
        }
    };
    let app = axum::Router::new().route("/stream", axum::routing::get(route));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(addr)
}

/// Runs `push-fanout`: 1,000 subscribers and 200 events (100 and 40 with `--quick`).
pub async fn run_push(opts: &BenchOptions) -> Result<Vec<Row>, BoxError> {
    let (n, events) = if opts.quick { (100, 40) } else { (1000, 200) };
    let dir = tempfile::tempdir()?;
    let app = StoryChain::open(dir.path().join("push.db")).await?;
    let (user, _) = app.register_with_token("pusher", "Pusher").await?;
    let user = user.id;
    let story = app
        .create_story(&user, "Pushed", Genre::Fantasy, Visibility::Public)
        .await?
        .id;
    let target = Target::story(&story);
    let clock = Instant::now();

    let comment = |text: String| {
        let (app, user, target) = (app.clone(), user.clone(), target.clone());
        async move {
            app.comment(&user, &target, &text).await?;
            Ok::<(), BoxError>(())
        }
    };
    // Memory first, while the process is fresh: raw's idle subscribers, kept open, then
    // Recount's, so each measure allocates afresh (the client's share is in both).
    let (frames, _) = broadcast::channel::<Arc<String>>(4096);
    let raw_addr = serve_raw(frames.clone()).await?;
    let raw_url = format!("http://{raw_addr}/stream");
    let (raw_idle, raw_open) = idle_cost(&raw_url, n).await?;
    let (addr, stop) = serve(app.clone()).await?;
    let url = format!("http://{addr}/stream?story={story}");
    // Twice: the first batch also pays for what every request warms once (the story's
    // load, SQLite's page cache); the second is what one more subscriber costs.
    let (warming, warm_open) = idle_cost(&url, n).await?;
    let (recount_idle, recount_open) = idle_cost(&url, n).await?;
    drop((raw_open, warm_open, recount_open));
    let _ = stop.send(());

    // Each round on a server of its own (the same store), so no round pays for the last
    // one's closed connections; without and with a stalled subscriber, interleaved.
    let mut plain = Vec::new();
    let mut stalled = Vec::new();
    for i in 0..4 {
        let (addr, stop) = serve(app.clone()).await?;
        let url = format!("http://{addr}/stream?story={story}");
        let stall = i % 2 == 1;
        let r = round(&url, n, events, stall, clock, &comment).await?;
        let _ = stop.send(());
        if stall {
            stalled.push(r)
        } else {
            plain.push(r)
        }
    }

    let raw_send = |text: String| {
        let (app, user, target, frames) =
            (app.clone(), user.clone(), target.clone(), frames.clone());
        async move {
            let written = app.comment(&user, &target, &text).await?;
            let last = written.events.last().ok_or("a comment wrote nothing")?;
            let frame = serde_json::json!({
                "type": last.event_type,
                "stream": last.stream,
                "version": last.version,
                "cursor": written.cursor.map(|c| c.to_string()),
                "payload": { "text": text },
            });
            let _ = frames.send(Arc::new(frame.to_string()));
            Ok::<(), BoxError>(())
        }
    };
    let raw = round(&raw_url, n, events, false, clock, &raw_send).await?;

    let p = |r: &Round, q: f64| percentile(&r.latencies, q);
    // Of the two rounds of each kind, the one with the lower p99.
    let best = |rounds: &mut Vec<Round>| -> Round {
        rounds.sort_by(|a, b| p(a, 0.99).total_cmp(&p(b, 0.99)));
        rounds.remove(0)
    };
    let recount = best(&mut plain);
    let stalled = best(&mut stalled);
    let note = format!(
        "{n} subscribers × {events} events at {RATE}/s; p99 {:.1} ms (raw {:.1} ms); \
         idle subscriber {:.1} KiB (raw {:.1} KiB; growth of the process's RSS, server and \
         client; {:.1} KiB for the first {n}); \
         one stalled subscriber: others' p99 {:.1} ms ({:+.1}%), stalled one cut off: {}",
        p(&recount, 0.99) / 1000.0,
        p(&raw, 0.99) / 1000.0,
        recount_idle / 1024.0,
        raw_idle / 1024.0,
        warming / 1024.0,
        p(&stalled, 0.99) / 1000.0,
        100.0 * (p(&stalled, 0.99) / p(&recount, 0.99).max(1.0) - 1.0),
        stalled
            .stalled_cut_off
            .map_or("n/a", |c| if c { "yes" } else { "no" }),
    );
    Ok(vec![Row {
        scenario: "push-fanout".into(),
        store: "sqlite".into(),
        recount_per_sec: recount.per_sec,
        raw_per_sec: raw.per_sec,
        ratio: recount.per_sec / raw.per_sec,
        unit: "events",
        recount_median_us: p(&recount, 0.5),
        raw_median_us: p(&raw, 0.5),
        note,
    }])
}
