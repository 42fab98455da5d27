//! Rebuild by replay, beside the live version, then switch readers.

use super::{Consumer, Runner, RunnerOptions};
use crate::{Cursor, Error, EventStore, Result};
use std::time::{Duration, Instant};

/// Progress of a rebuild, counted in events.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Events handled so far.
    pub done: u64,
    /// Events still to handle (grows when appends continue during the rebuild).
    pub remaining: u64,
    /// Events per second so far.
    pub per_sec: f64,
    /// Estimated time left at the current rate.
    pub eta: Option<Duration>,
}

fn active_name(name: &str) -> String {
    format!("active:{name}")
}

/// The version of projection `name` that readers should use (`None`: never switched; use the
/// only version there is).
pub async fn active_version<S: EventStore + ?Sized>(store: &S, name: &str) -> Result<Option<u32>> {
    Ok(store
        .load_checkpoint(&active_name(name))
        .await?
        .map(|c| c.position() as u32))
}

/// Points readers of `name` at version `to`, if they still use `from` (compare-and-set).
pub async fn switch_active_version<S: EventStore + ?Sized>(
    store: &S,
    name: &str,
    from: Option<u32>,
    to: u32,
) -> Result<()> {
    let c = |v: u32| Cursor::from_position(u64::from(v));
    store
        .save_checkpoint(&active_name(name), from.map(c), c(to))
        .await
}

/// Rebuilds `next` (a newer version of a projection) from the start of the log beside the
/// live version, which keeps serving; when `next` has caught up, switches readers to it and
/// drops `previous`'s storage. `progress` is called after every batch.
///
/// Only projections run: side-effect handlers have checkpoints of their own and are never
/// triggered by a rebuild.
pub async fn rebuild<S, P, Q>(
    store: &S,
    next: P,
    previous: Option<&Q>,
    batch_size: usize,
    mut progress: impl FnMut(Progress) + Send,
) -> Result<u64>
where
    S: EventStore + Clone,
    P: Consumer,
    Q: Consumer,
{
    if let Some(prev) = previous {
        if prev.name() != next.name() || prev.version() >= next.version() {
            return Err(Error::invalid(
                "projection version",
                format!(
                    "rebuild needs a newer version of `{}` than {}",
                    prev.name(),
                    prev.version()
                ),
            ));
        }
    }
    let name = next.name().to_owned();
    let version = next.version();
    let options = RunnerOptions {
        batch_size,
        ..RunnerOptions::default()
    };
    let runner = Runner::with_options(store.clone(), next, options);
    let start = Instant::now();
    let mut total = runner.lag().await?;
    let mut done = 0;
    let mut since_count = 0u32;
    loop {
        let handled = runner.catch_up_with(|n| {
            let d = done + n;
            let per_sec = d as f64 / start.elapsed().as_secs_f64().max(1e-9);
            let remaining = total.saturating_sub(d);
            let eta = (per_sec > 0.0).then(|| Duration::from_secs_f64(remaining as f64 / per_sec));
            progress(Progress {
                done: d,
                remaining,
                per_sec,
                eta,
            });
        });
        done += handled.await?;
        // Appends went on meanwhile: look again, and finish only when nothing is left.
        let lag = runner.lag().await?;
        if lag == 0 {
            break;
        }
        total = done + lag;
        since_count += 1;
        if since_count > 1000 {
            return Err(Error::invalid(
                "rebuild",
                "the log grows faster than the rebuild reads it",
            ));
        }
    }
    let per_sec = done as f64 / start.elapsed().as_secs_f64().max(1e-9);
    progress(Progress {
        done,
        remaining: 0,
        per_sec,
        eta: Some(Duration::ZERO),
    });
    let from = active_version(store, &name).await?;
    switch_active_version(store, &name, from, version).await?;
    if let Some(prev) = previous {
        prev.drop_storage().await?;
    }
    Ok(done)
}
