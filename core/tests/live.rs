//! The live fan-out: resume from a cursor with nothing twice and nothing lost while appends
//! race, slow subscribers cut off without slowing the others, filters.
//!
//! Every wait is bounded by [`GUARD`], a hang guard only: no test asserts on how long
//! anything took.

use async_trait::async_trait;
use recount::live::{Fanout, FanoutOptions, LiveError, LiveFilter, Subscription};
use recount::{
    AppendResult, Cursor, EventStore, ExpectedVersion, InMemoryStore, LogBatch, LogFilter,
    NewEvent, RecordedEvent, Snapshot, StreamId,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

const GUARD: Duration = Duration::from_secs(30);

async fn guarded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, f)
        .await
        .unwrap_or_else(|_| panic!("hang guard: {what}"))
}

fn stream(category: &str, id: &str) -> StreamId {
    StreamId::new(category, id).unwrap()
}

async fn append(store: &impl EventStore, s: &StreamId, event_type: &str, n: u64) -> Cursor {
    let e = NewEvent::new(event_type, &serde_json::json!({ "n": n })).unwrap();
    store
        .append(s, ExpectedVersion::Any, vec![e])
        .await
        .unwrap()
        .cursor
}

/// The whole log as the store holds it.
async fn whole_log(store: &impl EventStore) -> Vec<RecordedEvent> {
    let mut out = Vec::new();
    let mut at = Cursor::START;
    loop {
        let batch = store.read_all(at, &LogFilter::all(), 1000).await.unwrap();
        if batch.events.is_empty() && batch.last_seen == at {
            return out;
        }
        at = batch.last_seen;
        out.extend(batch.events);
    }
}

/// Takes `n` events from `sub`, failing on an error.
async fn take(sub: &mut Subscription, n: usize) -> Vec<Arc<RecordedEvent>> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        match sub.next().await {
            Some(Ok(e)) => out.push(e),
            Some(Err(e)) => panic!("subscription ended after {} events: {e}", out.len()),
            None => panic!("subscription ended after {} events", out.len()),
        }
    }
    out
}

fn cursors<E: std::borrow::Borrow<RecordedEvent>>(events: &[E]) -> Vec<Cursor> {
    events.iter().map(|e| e.borrow().cursor).collect()
}

/// An in-memory store whose catch-up reads (those filtered on category `counter`) wait for
/// the writers (`per_read` more rounds of appends, or their end) before and after reading,
/// and for the follower to hand out what they wrote: appends are certainly in flight while a
/// subscriber reads the store, and the follower is ahead of what it read.
#[derive(Clone)]
struct Racing {
    inner: InMemoryStore,
    appended: watch::Receiver<(u64, bool)>,
    per_read: u64,
    gated_reads: Arc<AtomicUsize>,
    /// The fan-out over this store (a cycle, broken by `shutdown`).
    fanout: Arc<std::sync::OnceLock<Fanout>>,
}

#[async_trait]
impl EventStore for Racing {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> recount::Result<AppendResult> {
        self.inner.append(stream, expected, events).await
    }
    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
        limit: usize,
    ) -> recount::Result<Vec<RecordedEvent>> {
        self.inner.read_stream(stream, from_version, limit).await
    }
    async fn stream_version(&self, stream: &StreamId) -> recount::Result<u64> {
        self.inner.stream_version(stream).await
    }
    async fn read_all(
        &self,
        after: Cursor,
        filter: &LogFilter,
        limit: usize,
    ) -> recount::Result<LogBatch> {
        let gated = filter.categories.iter().any(|c| c == "counter");
        if !gated {
            return self.inner.read_all(after, filter, limit).await;
        }
        // Each page is read after more appends, and returned once there were more still and
        // the follower has handed them out: so the page is older than the follower's
        // position when the subscriber registers (it must read the seam from the store), and
        // the seam's pages run past where live delivery began (it must drop those twice).
        // `gated_reads` counts the waits; each lets the writers run a little further.
        let mut rx = self.appended.clone();
        let more = |rx: &watch::Receiver<(u64, bool)>| {
            self.gated_reads.fetch_add(1, Ordering::SeqCst);
            rx.borrow().0 + self.per_read
        };
        let target = more(&rx);
        let _ = rx.wait_for(|(n, done)| *n >= target || *done).await;
        let page = self.inner.read_all(after, filter, limit).await;
        let target = more(&rx);
        let _ = rx.wait_for(|(n, done)| *n >= target || *done).await;
        let head = self.inner.len() as u64;
        if let Some(fanout) = self.fanout.get() {
            while fanout.position().position() < head {
                tokio::task::yield_now().await;
            }
        }
        page
    }
    async fn delete_stream(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
    ) -> recount::Result<()> {
        self.inner.delete_stream(stream, expected).await
    }
    async fn save_snapshot(&self, snapshot: Snapshot) -> recount::Result<()> {
        self.inner.save_snapshot(snapshot).await
    }
    async fn load_snapshot(&self, stream: &StreamId) -> recount::Result<Option<Snapshot>> {
        self.inner.load_snapshot(stream).await
    }
    async fn load_checkpoint(&self, name: &str) -> recount::Result<Option<Cursor>> {
        self.inner.load_checkpoint(name).await
    }
    async fn save_checkpoint(
        &self,
        name: &str,
        expected: Option<Cursor>,
        new: Cursor,
    ) -> recount::Result<()> {
        self.inner.save_checkpoint(name, expected, new).await
    }
    async fn load_checkpoint_state(
        &self,
        name: &str,
    ) -> recount::Result<Option<(Cursor, Option<String>)>> {
        self.inner.load_checkpoint_state(name).await
    }
    async fn save_checkpoint_state(
        &self,
        name: &str,
        expected: Option<Cursor>,
        new: Cursor,
        state: Option<String>,
    ) -> recount::Result<()> {
        self.inner
            .save_checkpoint_state(name, expected, new, state)
            .await
    }
    async fn wait_for_append(&self, after: Cursor, timeout: Duration) {
        self.inner.wait_for_append(after, timeout).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resuming_from_a_cursor_while_appends_race_delivers_every_event_once_in_order() {
    const WRITERS: u64 = 4;
    const PER_WRITER: u64 = 250;
    let (progress, appended) = watch::channel((0u64, false));
    let store = Racing {
        inner: InMemoryStore::new(),
        appended,
        per_read: 1,
        gated_reads: Arc::new(AtomicUsize::new(0)),
        fanout: Arc::default(),
    };
    // History: 300 counter events with noise of another category between them.
    let history = stream("counter", "history");
    let mut from = Cursor::START;
    for n in 0..300 {
        let c = append(&store, &history, "counter.added", n).await;
        append(&store, &stream("noise", "1"), "noise.made", n).await;
        if n == 99 {
            from = c;
        }
    }
    let options = FanoutOptions {
        catch_up_batch: 10,
        buffer: 100_000,
        ..FanoutOptions::default()
    };
    let fanout = Fanout::start(store.clone(), options).await.unwrap();
    let _ = store.fanout.set(fanout.clone());
    let end_at_subscribe = fanout.position();

    // Writers race the subscriber's catch-up, and keep going after it went live. While it
    // reads the store they may run only a little ahead of its pages (so that it catches up
    // at all); once it has registered for live delivery they run free.
    let progress = Arc::new(progress);
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (store, progress, fanout) = (store.clone(), progress.clone(), fanout.clone());
        writers.push(tokio::spawn(async move {
            let s = stream("counter", &format!("w{w}"));
            for n in 0..PER_WRITER {
                loop {
                    let pages = store.gated_reads.load(Ordering::SeqCst) as u64;
                    if progress.borrow().0 < pages * 4 + 20 || fanout.live_subscribers() > 0 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await; // pacing only
                }
                append(&store, &s, "counter.added", n).await;
                append(&store, &stream("noise", "2"), "noise.made", n).await;
                progress.send_modify(|(count, _)| *count += 1);
            }
        }));
    }
    let mut sub = fanout.subscribe(Some(from), LogFilter::all().category("counter"));
    let want = 200 + (WRITERS * PER_WRITER) as usize;
    let reader = tokio::spawn(async move {
        let got = take(&mut sub, want).await;
        (sub, got)
    });
    for w in writers {
        guarded("writers", w).await.unwrap();
    }
    progress.send_modify(|(_, done)| *done = true);
    let (mut sub, got) = guarded("the subscriber", reader).await.unwrap();

    // Exactly the counter events after `from`, in log order, each once.
    let truth: Vec<RecordedEvent> = whole_log(&store)
        .await
        .into_iter()
        .filter(|e| e.cursor > from && e.stream.category() == "counter")
        .collect();
    assert_eq!(cursors(&got), cursors(&truth));
    assert!(got.windows(2).all(|w| w[0].cursor < w[1].cursor));
    // Nothing more is pending: the next event is the next one appended.
    let last = append(&store, &history, "counter.added", 1_000).await;
    let next = guarded("the next live event", sub.next()).await;
    assert_eq!(next.unwrap().unwrap().cursor, last);

    // The race happened: events appended while the subscriber read the store were caught up
    // from the store, and events after the seam came live.
    let seam = sub.live_from().expect("the subscription went live");
    let writers_before_seam = got
        .iter()
        .filter(|e| e.stream != history && e.cursor <= seam)
        .count();
    let after_seam = got.iter().filter(|e| e.cursor > seam).count();
    assert!(seam > end_at_subscribe, "appends landed during catch-up");
    assert!(
        writers_before_seam > 0,
        "writers' events were caught up from the store"
    );
    assert!(after_seam > 0, "events after the seam were delivered live");
    assert!(store.gated_reads.load(Ordering::SeqCst) >= 2);
    fanout.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_subscriber_is_cut_off_while_another_keeps_receiving_everything() {
    let store = InMemoryStore::new();
    let options = FanoutOptions {
        buffer: 8,
        ..FanoutOptions::default()
    };
    let fanout = Fanout::start(store.clone(), options).await.unwrap();
    let mut stalled = fanout.subscribe(None, LiveFilter::all());
    let mut fast = fanout.subscribe(None, LiveFilter::all());
    // The fast subscriber keeps up: the writer appends the next event once it has the last.
    let (received, mut acks) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        for _ in 0..200 {
            got.extend(take(&mut fast, 1).await);
            let _ = received.send(());
        }
        (fast, got)
    });
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            let s = stream("counter", "1");
            let mut out = Vec::new();
            for n in 0..200 {
                out.push(append(&store, &s, "counter.added", n).await);
                acks.recv().await.expect("the fast subscriber acknowledges");
            }
            out
        })
    };
    let written = guarded("writer", writer).await.unwrap();
    let (_fast, got) = guarded("the fast subscriber", reader).await.unwrap();
    assert_eq!(cursors(&got), written);
    assert_eq!(
        fanout.live_subscribers(),
        1,
        "the stalled subscriber was let go"
    );

    // The stalled one gets what its buffer held, then the lag with where to resume.
    let buffered = take(&mut stalled, 8).await;
    assert_eq!(cursors(&buffered), written[..8]);
    let resume_from = match stalled.next().await {
        Some(Err(LiveError::Lagged { resume_from })) => resume_from,
        other => panic!("expected a lag, got {other:?}"),
    };
    assert_eq!(resume_from, written[7]);
    assert!(stalled.next().await.is_none(), "it ends after the lag");

    // Resuming from there gives the rest exactly.
    let mut resumed = fanout.subscribe(Some(resume_from), LiveFilter::all());
    let rest = guarded("resume", take(&mut resumed, 192)).await;
    assert_eq!(cursors(&rest), written[8..]);
    let last = append(&store, &stream("counter", "1"), "counter.added", 200).await;
    let next = guarded("the next live event", resumed.next()).await;
    assert_eq!(next.unwrap().unwrap().cursor, last);
    fanout.shutdown().await;
}

/// Appends one round of the filter test's events.
async fn filter_round(store: &InMemoryStore) -> Cursor {
    let story1 = stream("story", "1");
    let story2 = stream("story", "2");
    let user = stream("user", "1");
    let chapter = stream("chapter", "1");
    let mut last = Cursor::START;
    for (s, t) in [
        (&story1, "story.created"),
        (&user, "user.registered"),
        (&story2, "story.created"),
        (&chapter, "chapter.created"),
        (&story1, "story.archived"),
        (&user, "user.followed"),
        (&story2, "story.published"),
        (&chapter, "chapter.edited"),
        (&story1, "story.published"),
    ] {
        last = append(store, s, t, 0).await;
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn filters_deliver_only_what_was_asked() {
    type Check = fn(&RecordedEvent) -> bool;
    let store = InMemoryStore::new();
    filter_round(&store).await;
    let fanout = Fanout::start(store.clone(), FanoutOptions::default())
        .await
        .unwrap();
    let story2 = stream("story", "2");
    // Each filter beside an independent statement of what it keeps.
    let cases: Vec<(&str, LiveFilter, Check)> = vec![
        ("category", LogFilter::all().category("story").into(), |e| {
            e.stream.category() == "story"
        }),
        (
            "type",
            LogFilter::all().event_type("user.followed").into(),
            |e| e.event_type == "user.followed",
        ),
        ("stream", LiveFilter::all().stream(story2.clone()), |e| {
            e.stream.as_str() == "story-2"
        }),
        (
            "category or type",
            LogFilter::all()
                .category("user")
                .event_type("chapter.created")
                .into(),
            |e| e.stream.category() == "user" || e.event_type == "chapter.created",
        ),
        (
            "type in a stream, with a predicate",
            LiveFilter::from(
                LogFilter::all()
                    .event_type("story.published")
                    .event_type("story.archived"),
            )
            .stream(stream("story", "1"))
            .when(|e| e.event_type != "story.archived"),
            |e| e.stream.as_str() == "story-1" && e.event_type == "story.published",
        ),
    ];
    let mut subs = Vec::new();
    for (name, filter, check) in &cases {
        for from in [Some(Cursor::START), None] {
            subs.push((*name, from, *check, fanout.subscribe(from, filter.clone())));
        }
    }
    let before = fanout.position();
    let last = filter_round(&store).await;
    let log = whole_log(&store).await;
    let mut readers = Vec::new();
    for (name, from, check, mut sub) in subs {
        let want: Vec<Cursor> = log
            .iter()
            .filter(|e| from.is_some() || e.cursor > before)
            .filter(|e| check(e))
            .map(|e| e.cursor)
            .collect();
        assert!(!want.is_empty(), "{name}: the case keeps something");
        readers.push(tokio::spawn(async move {
            let got = take(&mut sub, want.len()).await;
            assert_eq!(cursors(&got), want, "{name} from {from:?}");
            sub
        }));
    }
    let mut done = Vec::new();
    for r in readers {
        done.push(guarded("a filtered subscriber", r).await.unwrap());
    }
    // Nothing else was delivered: once the follower has handed out everything, a stopped
    // fan-out ends each subscription without another event.
    guarded("the follower reaching the end", async {
        while fanout.position() < last {
            tokio::task::yield_now().await;
        }
    })
    .await;
    fanout.shutdown().await;
    for mut sub in done {
        match sub.next().await {
            Some(Err(LiveError::Stopped { .. })) => {}
            other => panic!("expected the end, got {other:?}"),
        }
    }
}
