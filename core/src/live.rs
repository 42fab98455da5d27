//! Live push: one follower of the global log per process, fanned out to many subscribers.
//!
//! A [`Fanout`] runs one task that follows the store's global log (waking on
//! [`EventStore::wait_for_append`], reading [`EventStore::read_all`] after its position) and
//! hands each event to every subscriber whose [`LiveFilter`] keeps it. Each subscriber has a
//! bounded buffer of its own: one that does not keep up is cut off (its [`Subscription`] ends
//! with [`LiveError::Lagged`], naming the cursor to resume from) and never slows the follower
//! or the other subscribers.
//!
//! A subscriber that starts from a cursor first reads what it missed from the store, in
//! pages, then goes live, with nothing twice and nothing lost at the seam: it catches up
//! alone until it reaches the follower, registers for live delivery (learning the follower's
//! position `P` at that instant, under the lock the follower dispatches under, so every event
//! after `P` reaches its buffer), reads the store on up to `P`, and drops every live event at
//! or before the last cursor it has read.
//!
//! ```
//! use futures::StreamExt;
//! use recount::live::{Fanout, FanoutOptions, LiveFilter};
//! use recount::{Cursor, EventStore, ExpectedVersion, InMemoryStore, LogFilter, NewEvent, StreamId};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let store = InMemoryStore::new();
//! let s = StreamId::new("note", "1").unwrap();
//! let first = NewEvent::new("note.written", &serde_json::json!({"n": 1})).unwrap();
//! store.append(&s, ExpectedVersion::NoStream, vec![first]).await.unwrap();
//!
//! let fanout = Fanout::start(store.clone(), FanoutOptions::default()).await.unwrap();
//! // From the start: the first note from the store, then the second live.
//! let mut notes = fanout
//!     .subscribe(Some(Cursor::START), LogFilter::all().category("note"))
//!     .into_stream();
//! let second = NewEvent::new("note.written", &serde_json::json!({"n": 2})).unwrap();
//! store.append(&s, ExpectedVersion::Exact(1), vec![second]).await.unwrap();
//! for version in [1, 2] {
//!     let event = notes.next().await.unwrap().unwrap();
//!     assert_eq!(event.version, version);
//! }
//! fanout.shutdown().await;
//! assert!(notes.next().await.unwrap().is_err()); // the fan-out stopped
//! # });
//! ```

use crate::{Backoff, Cursor, EventStore, LogBatch, LogFilter, RecordedEvent, Result};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

mod subscription;

pub use subscription::{LiveError, LiveFilter, Subscription};

/// How a [`Fanout`] reads, buffers and waits.
#[derive(Debug, Clone)]
pub struct FanoutOptions {
    /// Events each subscriber's buffer holds (default 1,024, at least 1). A subscriber whose
    /// buffer is full when the follower has an event for it is cut off.
    pub buffer: usize,
    /// Events the follower reads per batch (default 1,000, at least 1).
    pub batch_size: usize,
    /// Events a subscriber reads per page while catching up (default 500, at least 1).
    pub catch_up_batch: usize,
    /// The longest wait for an append before reading again when caught up (default 250 ms;
    /// a store wake-up cuts it short).
    pub idle_wait: Duration,
    /// The first and the longest pause between retries of a failed read by the follower
    /// (default 10 ms and 5 s; doubling, jittered).
    pub retry_backoff: (Duration, Duration),
}

impl Default for FanoutOptions {
    fn default() -> Self {
        FanoutOptions {
            buffer: 1024,
            batch_size: 1000,
            catch_up_batch: 500,
            idle_wait: Duration::from_millis(250),
            retry_backoff: (Duration::from_millis(10), Duration::from_secs(5)),
        }
    }
}

impl FanoutOptions {
    /// The options with every size at least 1 (a zero-sized channel is not a buffer).
    fn sane(mut self) -> Self {
        self.buffer = self.buffer.max(1);
        self.batch_size = self.batch_size.max(1);
        self.catch_up_batch = self.catch_up_batch.max(1);
        self
    }
}

/// One follower of a store's global log feeding many [`Subscription`]s. See the
/// [module docs](self).
///
/// Cloning gives another handle to the same follower. The follower runs in a tokio task until
/// [`Fanout::shutdown`] is called or the last handle is dropped; then every subscription ends
/// with [`LiveError::Stopped`].
#[derive(Debug, Clone)]
pub struct Fanout {
    hub: Arc<Hub>,
    handle: Arc<Handle>,
}

/// Owned by the handles only: dropping the last one cancels the follower.
#[derive(Debug)]
struct Handle {
    _stop: DropGuard,
    stop: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Fanout {
    /// Starts a follower at the current end of `store`'s log, in a new tokio task.
    ///
    /// Fails only when the store cannot be read to find the log's end.
    pub async fn start<S: EventStore>(store: S, options: FanoutOptions) -> Result<Self> {
        let store: Arc<dyn EventStore> = Arc::new(store);
        let position = log_end(&*store).await?;
        let hub = Arc::new(Hub {
            store,
            options: options.sane(),
            state: Mutex::new(HubState {
                position,
                subscribers: Vec::new(),
                closed: false,
            }),
        });
        let stop = CancellationToken::new();
        let task = tokio::spawn(follow(hub.clone(), stop.clone()));
        Ok(Fanout {
            hub,
            handle: Arc::new(Handle {
                _stop: stop.clone().drop_guard(),
                stop,
                task: Mutex::new(Some(task)),
            }),
        })
    }

    /// A subscription to the events after `from` that pass `filter`, in log order.
    ///
    /// `from`: `None` for what the follower has not handed out yet (events appended from now
    /// on); `Some(cursor)` for everything after `cursor` (read from the store first, then
    /// live). Each event is delivered once.
    pub fn subscribe(&self, from: Option<Cursor>, filter: impl Into<LiveFilter>) -> Subscription {
        Subscription::new(self.hub.clone(), from, filter.into())
    }

    /// How far the follower has read the log.
    pub fn position(&self) -> Cursor {
        self.hub.lock().position
    }

    /// How many subscriptions receive live events now (those still catching up alone are
    /// not counted).
    pub fn live_subscribers(&self) -> usize {
        let mut state = self.hub.lock();
        state.subscribers.retain(|s| !s.tx.is_closed());
        state.subscribers.len()
    }

    /// Stops the follower (for every handle) and waits for its task to end; every
    /// subscription ends with [`LiveError::Stopped`].
    pub async fn shutdown(self) {
        self.handle.stop.cancel();
        let task = lock(&self.handle.task).take();
        if let Some(task) = task {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "the live follower task failed");
            }
        }
        // The task closes the hub when it ends; a task that panicked did not.
        self.hub.close();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The end of the committed log, found without reading every event where the store allows.
async fn log_end(store: &dyn EventStore) -> Result<Cursor> {
    // No stored event has an empty type (input rules), so this filter matches nothing and a
    // read with it only reports how far the store looked (store contract, item 6).
    let nothing = LogFilter::all().event_type("");
    let mut at = Cursor::START;
    loop {
        let probe = store.read_all(at, &nothing, 1).await?;
        if probe.last_seen > at {
            at = probe.last_seen;
            continue;
        }
        // Confirm with a plain read (and page through when a store reports no progress on
        // filtered reads).
        let page = store.read_all(at, &LogFilter::all(), 1000).await?;
        if page.last_seen <= at {
            return Ok(at);
        }
        at = page.last_seen;
    }
}

/// What the follower and the subscriptions share.
struct Hub {
    store: Arc<dyn EventStore>,
    options: FanoutOptions,
    state: Mutex<HubState>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("Hub")
            .field("position", &state.position)
            .field("subscribers", &state.subscribers.len())
            .field("closed", &state.closed)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct HubState {
    /// Every event at or before it has been handed out; every later one will be.
    position: Cursor,
    subscribers: Vec<Entry>,
    closed: bool,
}

/// A live subscriber as the follower sees it.
#[derive(Debug)]
struct Entry {
    filter: Arc<LiveFilter>,
    tx: mpsc::Sender<Arc<RecordedEvent>>,
    ending: Arc<OnceLock<Ending>>,
}

/// Why the follower let a subscriber go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Its buffer was full.
    Lagged,
    /// The fan-out stopped, or its follower failed.
    Stopped,
}

/// The receiving end of a live registration.
#[derive(Debug)]
struct Live {
    rx: mpsc::Receiver<Arc<RecordedEvent>>,
    ending: Arc<OnceLock<Ending>>,
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, HubState> {
        lock(&self.state)
    }

    /// Registers for live delivery: returns the follower's position at that instant (every
    /// matching event after it reaches the buffer), or `None` when the fan-out is stopped.
    fn register(&self, filter: Arc<LiveFilter>) -> Option<(Live, Cursor)> {
        let (tx, rx) = mpsc::channel(self.options.buffer);
        let ending = Arc::new(OnceLock::new());
        let mut state = self.lock();
        if state.closed {
            return None;
        }
        state.subscribers.push(Entry {
            filter,
            tx,
            ending: ending.clone(),
        });
        Some((Live { rx, ending }, state.position))
    }

    /// Hands a batch to every subscriber that wants its events, cutting off those whose
    /// buffer is full, and moves the position. The lock makes this atomic with
    /// [`Hub::register`].
    fn dispatch(&self, batch: LogBatch) {
        let mut state = self.lock();
        let state = &mut *state;
        for event in batch.events {
            // Store contract, item 5 says this never happens; if it did, it would be twice.
            if event.cursor <= state.position {
                continue;
            }
            state.position = event.cursor;
            let event = Arc::new(event);
            state.subscribers.retain(|s| {
                if !s.filter.matches(&event) {
                    return !s.tx.is_closed();
                }
                match s.tx.try_send(event.clone()) {
                    Ok(()) => true,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        let _ = s.ending.set(Ending::Lagged);
                        false
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                }
            });
        }
        state.position = state.position.max(batch.last_seen);
    }

    /// Lets every subscriber go with [`Ending::Stopped`]; with `close`, for good.
    fn cut_all(&self, close: bool) {
        let mut state = self.lock();
        state.closed |= close;
        for s in state.subscribers.drain(..) {
            let _ = s.ending.set(Ending::Stopped);
        }
    }

    fn close(&self) {
        self.cut_all(true);
    }
}

/// The follower: reads the log after its position and dispatches, until `stop`.
async fn follow(hub: Arc<Hub>, stop: CancellationToken) {
    let options = hub.options.clone();
    let all = LogFilter::all();
    let mut backoff = Backoff::new(options.retry_backoff.0, options.retry_backoff.1);
    let mut caught_up = false;
    loop {
        let at = hub.lock().position;
        if caught_up {
            tokio::select! {
                () = stop.cancelled() => break,
                () = hub.store.wait_for_append(at, options.idle_wait) => {}
            }
        }
        let read = tokio::select! {
            () = stop.cancelled() => break,
            read = hub.store.read_all(at, &all, options.batch_size) => read,
        };
        match read {
            Ok(batch) => {
                backoff.reset();
                caught_up = batch.events.len() < options.batch_size;
                hub.dispatch(batch);
            }
            Err(e) => {
                if e.is_retriable() {
                    tracing::warn!(error = %e, at = %at, "live follower: store unavailable; retrying");
                } else {
                    // Subscribers would wait for ever: let them go, so they learn and resume.
                    tracing::error!(error = %e, at = %at, "live follower: read failed; subscribers cut off, retrying");
                    hub.cut_all(false);
                }
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(backoff.next_pause()) => {}
                }
            }
        }
    }
    hub.close();
}
