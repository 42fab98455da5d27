//! What a runner is doing, readable from code at any time without touching the store.

use super::ConsumerKind;
use crate::Cursor;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A runner's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Not started yet (or between `catch_up` calls).
    Idle,
    /// Waiting for the lease another runner holds.
    WaitingForLease,
    /// Handling batches, or caught up and following the log.
    Running,
    /// Retrying after an error (the status's `last_error`), with backoff.
    BackingOff,
    /// Stopped: shut down, or stopped on an error retrying cannot fix (`last_error`).
    Stopped,
}

/// The status of one runner: a cheap copy of what it knows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConsumerStatus {
    /// The consumer's name.
    pub name: String,
    /// What it is.
    pub kind: ConsumerKind,
    /// The consumer's version.
    pub version: u32,
    /// The partition `(index, count)` this runner takes, if any.
    pub partition: Option<(u32, u32)>,
    /// The checkpoint's name.
    pub checkpoint_name: String,
    /// The committed checkpoint, as this runner last saw it.
    pub checkpoint: Option<Cursor>,
    /// Events it still has to handle (`None`: not measured yet). Zero whenever it is caught
    /// up; while it catches up, the last count less the events handled since, counted again
    /// at most every 30 s (a count reads the rest of the log, so it is kept off the hot path).
    pub lag: Option<u64>,
    /// Events handled per second over the last minute.
    pub per_sec: f64,
    /// The lease's holder as this runner last saw it (its own id when it holds it).
    pub lease_holder: Option<u64>,
    /// This runner's own holder id.
    pub holder: u64,
    /// What it is doing.
    pub state: RunState,
    /// The last error (kept until a batch commits again; the reason of a stop stays).
    pub last_error: Option<String>,
    /// Parked events not yet resolved.
    pub parked: u64,
    /// Events handled (committed), since this runner was made.
    pub events: u64,
    /// Batches committed.
    pub batches: u64,
    /// Failed attempts (of a batch or an event; nothing of them was kept).
    pub failures: u64,
    /// Commits refused because another runner had moved the checkpoint.
    pub fenced: u64,
    /// Times the runner was restarted by a [`Supervisor`](super::Supervisor) after a panic.
    pub restarts: u64,
}

/// The mutable part of a status.
#[derive(Debug)]
struct Live {
    state: RunState,
    last_error: Option<String>,
    checkpoint: Option<Cursor>,
    /// The lag as counted, and the events handled when it was.
    lag: Option<(u64, u64)>,
    lag_measured: Option<Instant>,
    lease_holder: Option<u64>,
    parked: u64,
    /// (when, events handled then), one sample per second at most, the last minute.
    samples: VecDeque<(Instant, u64)>,
}

/// Counters and status shared by a runner and its readers.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) events: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) failures: AtomicU64,
    pub(crate) fenced: AtomicU64,
    pub(crate) restarts: AtomicU64,
    live: Mutex<Live>,
}

const WINDOW: Duration = Duration::from_secs(60);
/// How often the lag is counted again while a runner catches up.
pub(crate) const LAG_EVERY: Duration = Duration::from_secs(30);

impl Shared {
    pub(crate) fn new() -> Self {
        Shared {
            events: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            fenced: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            live: Mutex::new(Live {
                state: RunState::Idle,
                last_error: None,
                checkpoint: None,
                lag: None,
                lag_measured: None,
                lease_holder: None,
                parked: 0,
                samples: VecDeque::new(),
            }),
        }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn set_state(&self, state: RunState) {
        self.live().state = state;
    }

    pub(crate) fn state(&self) -> RunState {
        self.live().state
    }

    pub(crate) fn failed(&self, state: RunState, error: &crate::Error) {
        let mut live = self.live();
        live.state = state;
        live.last_error = Some(error.to_string());
    }

    pub(crate) fn set_lease_holder(&self, holder: Option<u64>) {
        self.live().lease_holder = holder;
    }

    pub(crate) fn set_parked(&self, parked: u64) {
        self.live().parked = parked;
    }

    pub(crate) fn add_parked(&self, n: i64) {
        let mut live = self.live();
        live.parked = live.parked.saturating_add_signed(n);
    }

    /// A batch committed up to `checkpoint`; `caught_up` when the log had nothing more.
    pub(crate) fn committed(&self, checkpoint: Cursor, events: u64, caught_up: bool) {
        let total = self.events.fetch_add(events, Ordering::Relaxed) + events;
        self.batches.fetch_add(1, Ordering::Relaxed);
        let mut live = self.live();
        live.checkpoint = Some(checkpoint);
        live.state = RunState::Running;
        live.last_error = None;
        if caught_up {
            live.lag = Some((0, total));
        }
        let now = Instant::now();
        if live
            .samples
            .back()
            .is_none_or(|(at, _)| now.duration_since(*at) >= Duration::from_secs(1))
        {
            live.samples.push_back((now, total));
        }
        while live
            .samples
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > WINDOW)
        {
            live.samples.pop_front();
        }
    }

    /// Part of a failed batch was kept (a consumer that is not atomic): `events` more handled,
    /// the checkpoint at `checkpoint`.
    pub(crate) fn progressed(&self, checkpoint: Cursor, events: u64) {
        self.events.fetch_add(events, Ordering::Relaxed);
        self.live().checkpoint = Some(checkpoint);
    }

    /// Caught up at `checkpoint`: nothing more to read.
    pub(crate) fn caught_up(&self, checkpoint: Option<Cursor>) {
        let mut live = self.live();
        live.checkpoint = checkpoint;
        live.lag = Some((0, self.events.load(Ordering::Relaxed)));
        live.lag_measured = Some(Instant::now());
        if live.state == RunState::BackingOff {
            live.state = RunState::Running;
        }
    }

    /// Whether the lag is due to be counted again.
    pub(crate) fn lag_due(&self) -> bool {
        self.live()
            .lag_measured
            .is_none_or(|at| at.elapsed() >= LAG_EVERY)
    }

    pub(crate) fn set_lag(&self, lag: u64) {
        let handled = self.events.load(Ordering::Relaxed);
        let mut live = self.live();
        live.lag = Some((lag, handled));
        live.lag_measured = Some(Instant::now());
    }

    pub(crate) fn snapshot(&self, base: ConsumerStatus) -> ConsumerStatus {
        let mut live = self.live();
        while live
            .samples
            .front()
            .is_some_and(|(at, _)| at.elapsed() > WINDOW)
        {
            live.samples.pop_front();
        }
        let events = self.events.load(Ordering::Relaxed);
        let per_sec = match live.samples.front() {
            Some((at, then)) => {
                let secs = at.elapsed().as_secs_f64();
                if secs >= 1.0 {
                    events.saturating_sub(*then) as f64 / secs
                } else {
                    0.0
                }
            }
            None => 0.0,
        };
        ConsumerStatus {
            checkpoint: live.checkpoint,
            lag: live
                .lag
                .map(|(lag, then)| lag.saturating_sub(events.saturating_sub(then))),
            per_sec,
            lease_holder: live.lease_holder,
            state: live.state,
            last_error: live.last_error.clone(),
            parked: live.parked,
            events,
            batches: self.batches.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            fenced: self.fenced.load(Ordering::Relaxed),
            restarts: self.restarts.load(Ordering::Relaxed),
            ..base
        }
    }
}
