//! One subscriber: its filter, its catch-up from the store, its live buffer.

use super::{Ending, Hub, Live};
use crate::{Cursor, LogFilter, RecordedEvent, StreamId};
use futures::stream::BoxStream;
use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

/// Why a [`Subscription`] ended. After one of these its stream yields nothing more; every
/// variant names the cursor to resume from (subscribe again with `Some(resume_from)`): every
/// event at or before it that the filter keeps has been delivered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LiveError {
    /// The subscriber did not keep up: its buffer was full when the follower had an event for
    /// it, so the follower let it go rather than wait.
    #[error("the subscriber lagged behind the live log; resume from cursor {resume_from}")]
    Lagged {
        /// Where to resume.
        resume_from: Cursor,
    },
    /// Reading the store to catch up failed.
    #[error("catching up from the store failed; resume from cursor {resume_from}: {source}")]
    Store {
        /// Where to resume.
        resume_from: Cursor,
        /// The store's error.
        #[source]
        source: crate::Error,
    },
    /// The fan-out was shut down, or its follower could not read the log.
    #[error("the live fan-out stopped; resume from cursor {resume_from}")]
    Stopped {
        /// Where to resume.
        resume_from: Cursor,
    },
}

impl LiveError {
    /// The cursor to resume from.
    pub fn resume_from(&self) -> Cursor {
        match self {
            LiveError::Lagged { resume_from }
            | LiveError::Store { resume_from, .. }
            | LiveError::Stopped { resume_from } => *resume_from,
        }
    }
}

/// A predicate on events, run by the follower.
type Predicate = Arc<dyn Fn(&RecordedEvent) -> bool + Send + Sync>;

/// Which events a [`Subscription`] receives: those that pass a [`LogFilter`] (categories or
/// types; empty: all), and, when set, are in one of the given streams and pass a predicate.
///
/// ```
/// use recount::live::LiveFilter;
/// use recount::{LogFilter, StreamId};
/// let story = StreamId::new("story", "1").unwrap();
/// let filter = LiveFilter::from(LogFilter::all().category("story"))
///     .stream(story)
///     .when(|e| e.event_type != "story.archived");
/// assert_eq!(filter.log_filter().categories, ["story"]);
/// ```
#[derive(Clone, Default)]
pub struct LiveFilter {
    log: LogFilter,
    streams: Vec<StreamId>,
    predicate: Option<Predicate>,
}

impl LiveFilter {
    /// Every event.
    pub fn all() -> Self {
        Self::default()
    }

    /// Also keep events of `stream` (once any stream is given, only those streams' events
    /// pass, and they must pass the log filter too).
    pub fn stream(mut self, stream: StreamId) -> Self {
        if !self.streams.contains(&stream) {
            self.streams.push(stream);
        }
        self
    }

    /// Only events for which `predicate` holds (with the other conditions). It runs on the
    /// follower, once per event and subscriber, so it must be cheap and never block.
    pub fn when(
        mut self,
        predicate: impl Fn(&RecordedEvent) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.predicate = Some(Arc::new(predicate));
        self
    }

    /// The categories and types kept.
    pub fn log_filter(&self) -> &LogFilter {
        &self.log
    }

    /// The streams kept (empty: any).
    pub fn streams(&self) -> &[StreamId] {
        &self.streams
    }

    /// Whether `event` passes every condition.
    pub fn matches(&self, event: &RecordedEvent) -> bool {
        self.log.matches(event.stream.category(), &event.event_type)
            && (self.streams.is_empty() || self.streams.contains(&event.stream))
            && self.predicate.as_ref().is_none_or(|p| p(event))
    }

    /// What to ask the store for when catching up: the log filter, narrowed to the streams'
    /// categories when it keeps everything.
    fn read_filter(&self) -> LogFilter {
        if !self.log.is_all() || self.streams.is_empty() {
            return self.log.clone();
        }
        let mut filter = LogFilter::all();
        for s in &self.streams {
            if !filter.categories.iter().any(|c| c == s.category()) {
                filter = filter.category(s.category());
            }
        }
        filter
    }
}

impl From<LogFilter> for LiveFilter {
    fn from(log: LogFilter) -> Self {
        LiveFilter {
            log,
            ..Self::default()
        }
    }
}

impl fmt::Debug for LiveFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveFilter")
            .field("log", &self.log)
            .field("streams", &self.streams)
            .field("predicate", &self.predicate.as_ref().map(|_| "…"))
            .finish()
    }
}

/// The events after a cursor that pass a [`LiveFilter`], in log order, each once: first what
/// the store holds, then live from the [`Fanout`](super::Fanout)'s follower. Read it with
/// [`Subscription::next`] or as a stream ([`Subscription::into_stream`]).
///
/// It ends after yielding one [`LiveError`] (lagged, store failure, fan-out stopped), which
/// names the cursor to resume from. Dropping it unsubscribes.
#[derive(Debug)]
pub struct Subscription {
    hub: Arc<Hub>,
    filter: Arc<LiveFilter>,
    read_filter: LogFilter,
    /// Every event at or before it that the filter keeps has been yielded or is in `pending`.
    seen: Cursor,
    /// The last event yielded (or where the subscription started).
    yielded: Cursor,
    pending: VecDeque<Arc<RecordedEvent>>,
    /// The live registration and the follower's position when it was made.
    live: Option<(Live, Cursor)>,
    live_from: Option<Cursor>,
    /// The last page read from the store was short: the log's end is near.
    near_end: bool,
    finished: bool,
}

impl Subscription {
    pub(super) fn new(hub: Arc<Hub>, from: Option<Cursor>, filter: LiveFilter) -> Self {
        let read_filter = filter.read_filter();
        let mut sub = Subscription {
            hub,
            filter: Arc::new(filter),
            read_filter,
            seen: from.unwrap_or(Cursor::START),
            yielded: from.unwrap_or(Cursor::START),
            pending: VecDeque::new(),
            live: None,
            live_from: None,
            near_end: false,
            finished: false,
        };
        if from.is_none() {
            // Register now, so that what is appended after `subscribe` returns is delivered.
            if let Some((live, at)) = sub.hub.register(sub.filter.clone()) {
                sub.seen = at;
                sub.yielded = at;
                sub.live = Some((live, at));
                sub.live_from = Some(at);
            }
        }
        sub
    }

    /// The next event, or the error that ends the subscription; `None` after it ended.
    pub async fn next(&mut self) -> Option<Result<Arc<RecordedEvent>, LiveError>> {
        if self.finished {
            return None;
        }
        loop {
            if let Some(event) = self.pending.pop_front() {
                self.yielded = event.cursor;
                return Some(Ok(event));
            }
            if self.live_from.is_some() {
                return Some(self.receive().await);
            }
            if let Err(e) = self.catch_up().await {
                return Some(Err(self.end(e)));
            }
        }
    }

    /// The subscription as a stream (for `axum`'s SSE, `StreamExt` combinators).
    pub fn into_stream(self) -> BoxStream<'static, Result<Arc<RecordedEvent>, LiveError>> {
        Box::pin(futures::stream::unfold(self, |mut sub| async move {
            sub.next().await.map(|item| (item, sub))
        }))
    }

    /// Where live delivery took over once caught up (`None`: still reading the store): every
    /// event delivered after it came from the follower, every one at or before it from the
    /// store.
    pub fn live_from(&self) -> Option<Cursor> {
        self.live_from
    }

    /// The cursor to resume from if this subscription were dropped now: every event at or
    /// before it that the filter keeps has been yielded.
    pub fn resume_from(&self) -> Cursor {
        if self.pending.is_empty() {
            self.seen.max(self.yielded)
        } else {
            self.yielded
        }
    }

    fn end(&mut self, error: LiveError) -> LiveError {
        self.finished = true;
        self.live = None;
        error
    }

    /// Reads one page from the store, registering for live delivery once near the
    /// follower; switches to live once the store has been read up to where it began.
    async fn catch_up(&mut self) -> Result<(), LiveError> {
        // Register once level with the follower, or once the store had less than a page left
        // (then the seam, read below, is short, and the live buffer holds what comes
        // meanwhile). Registering only when level would never happen while the log grows
        // faster than one subscriber reads it.
        if self.live.is_none() && (self.near_end || self.seen >= self.hub.lock().position) {
            let registered = self.hub.register(self.filter.clone());
            let stopped = LiveError::Stopped {
                resume_from: self.seen,
            };
            self.live = Some(registered.ok_or(stopped)?);
        }
        if let Some((_, until)) = &self.live {
            if self.seen >= *until {
                self.live_from = Some(self.seen);
                return Ok(());
            }
        }
        let limit = self.hub.options.catch_up_batch;
        let batch = self
            .hub
            .store
            .read_all(self.seen, &self.read_filter, limit)
            .await
            .map_err(|source| LiveError::Store {
                resume_from: self.seen,
                source,
            })?;
        let moved = batch.last_seen > self.seen || !batch.events.is_empty();
        let read = batch.events.len();
        for event in batch.events {
            if event.cursor > self.seen && self.filter.matches(&event) {
                self.seen = event.cursor;
                self.pending.push_back(Arc::new(event));
            }
        }
        self.seen = self.seen.max(batch.last_seen);
        self.near_end = read < limit;
        if !moved && self.live.is_some() {
            // The follower saw up to `until`, so the store will show it: wait rather than
            // spin (a store honouring item 5 does not get here).
            let wait = self.hub.options.idle_wait;
            self.hub.store.wait_for_append(self.seen, wait).await;
        }
        Ok(())
    }

    /// The next live event after everything read from the store.
    async fn receive(&mut self) -> Result<Arc<RecordedEvent>, LiveError> {
        let Some((live, _)) = self.live.as_mut() else {
            return Err(self.end(LiveError::Stopped {
                resume_from: self.resume_from(),
            }));
        };
        loop {
            match live.rx.recv().await {
                // Already read from the store (the seam) or passed.
                Some(event) if event.cursor <= self.seen => continue,
                Some(event) => {
                    self.seen = event.cursor;
                    self.yielded = event.cursor;
                    return Ok(event);
                }
                None => {
                    let lagged = live.ending.get() == Some(&Ending::Lagged);
                    let resume_from = self.resume_from();
                    let error = if lagged {
                        LiveError::Lagged { resume_from }
                    } else {
                        LiveError::Stopped { resume_from }
                    };
                    return Err(self.end(error));
                }
            }
        }
    }
}
