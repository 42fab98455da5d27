//! Property: for any sequence of commands, on every store (memory, SQLite, and PostgreSQL
//! when a server is there), the state a repository loads (snapshot + tail) equals a full
//! replay of the stored events, which equals the state folded in memory from the same
//! events; and every store stores the same events.

mod common;

use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use recount::{
    aggregate, Aggregate, CommandContext, EventStore, InMemoryStore, Repository, StreamId,
};
use recount_sqlite::SqliteEventStore;
use serde::{Deserialize, Serialize};

/// A playlist: tracks added, moved and removed; snapshots every 3 events.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Playlist {
    tracks: Vec<String>,
    plays: u64,
}

/// Why a playlist command is refused.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum PlaylistError {
    /// No track at that place.
    #[error("no track at {0}")]
    NoTrack(usize),
}

#[aggregate(category = "playlist", error = PlaylistError, snapshot_every = 3)]
impl Playlist {
    #[event(name = "playlist.track_added")]
    fn track_added(&mut self, title: String) {
        self.tracks.push(title);
    }

    #[event(name = "playlist.track_moved")]
    fn track_moved(&mut self, from: usize, to: usize) {
        let t = self.tracks.remove(from);
        self.tracks.insert(to.min(self.tracks.len()), t);
    }

    #[event(name = "playlist.track_removed")]
    fn track_removed(&mut self, at: usize) {
        self.tracks.remove(at);
    }

    #[event(name = "playlist.played")]
    fn played(&mut self) {
        self.plays += 1;
    }

    /// Decides the events of one generated operation.
    pub fn decide(&self, op: &Op) -> Result<Vec<PlaylistEvent>, PlaylistError> {
        let len = self.tracks.len();
        Ok(match op {
            Op::Add(titles) => titles
                .iter()
                .map(|t| PlaylistEvent::TrackAdded { title: t.clone() })
                .collect(),
            Op::Move(from, to) if *from < len => vec![PlaylistEvent::TrackMoved {
                from: *from,
                to: *to,
            }],
            Op::Remove(at) if *at < len => vec![PlaylistEvent::TrackRemoved { at: *at }],
            Op::Move(at, _) | Op::Remove(at) => return Err(PlaylistError::NoTrack(*at)),
            Op::Play => vec![PlaylistEvent::Played {}],
        })
    }
}

/// A generated command.
#[derive(Debug, Clone)]
pub enum Op {
    /// Add these tracks.
    Add(Vec<String>),
    /// Move the track at one place to another.
    Move(usize, usize),
    /// Remove the track at a place.
    Remove(usize),
    /// Play the playlist.
    Play,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        prop::collection::vec("[a-zé ]{0,12}", 1..4).prop_map(Op::Add),
        (0usize..6, 0usize..6).prop_map(|(a, b)| Op::Move(a, b)),
        (0usize..6).prop_map(Op::Remove),
        Just(Op::Play),
    ]
}

/// Runs `ops` through a repository on `store`; returns the loaded state, the replayed state
/// and the stored events as (type, version, payload).
async fn run<S: EventStore + Clone>(
    store: S,
    id: &str,
    ops: &[Op],
) -> (Playlist, Playlist, Vec<(String, u64, String)>) {
    let repo = Repository::<Playlist, _>::new(store.clone());
    for op in ops {
        match repo
            .execute(id, &CommandContext::new(), |p| p.decide(op))
            .await
        {
            Ok(_) | Err(recount::CommandError::Rejected(_)) => {}
            Err(e) => panic!("store error: {e}"),
        }
    }
    let loaded = repo.load(id).await.unwrap().state;
    let stream = StreamId::new("playlist", id).unwrap();
    let stored = store.read_stream(&stream, 1, usize::MAX).await.unwrap();
    let replayed = Playlist::replayed(stored.iter().map(|e| e.decode::<PlaylistEvent>().unwrap()));
    let events = stored
        .into_iter()
        .map(|e| (e.event_type, e.version, e.payload))
        .collect();
    (loaded, replayed, events)
}

/// The same operations folded in memory with no store at all.
fn folded(ops: &[Op]) -> Playlist {
    let mut state = Playlist::default();
    for op in ops {
        if let Ok(events) = state.decide(op) {
            for e in events {
                state.apply(e);
            }
        }
    }
    state
}

/// Memory and SQLite always; PostgreSQL when a server answers at `DATABASE_URL` (one line
/// says it was skipped otherwise; with `CI` set, a missing server fails the test).
#[test]
fn snapshot_plus_tail_equals_full_replay_equals_the_in_memory_fold_on_every_store() {
    let pg = common::PgDb::create_or_skip("replay properties on PostgreSQL");
    let config = ProptestConfig {
        cases: 48,
        ..ProptestConfig::default()
    };
    let result = TestRunner::new(config).run(&prop::collection::vec(op(), 1..40), |ops| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        // Cases share the PostgreSQL database: each writes its own stream.
        let id = uuid::Uuid::now_v7().simple().to_string();
        let (memory, sqlite, postgres) = rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let sqlite_store = SqliteEventStore::open(dir.path().join("p.db"))
                .await
                .unwrap();
            let memory = run(InMemoryStore::new(), &id, &ops).await;
            let sqlite = run(sqlite_store, &id, &ops).await;
            let postgres = match &pg {
                Some(db) => {
                    let store = db.store().await;
                    let out = run(store.clone(), &id, &ops).await;
                    store.pool().close().await;
                    Some(out)
                }
                None => None,
            };
            (memory, sqlite, postgres)
        });
        let expected = folded(&ops);
        let mut stores = vec![("memory", &memory), ("sqlite", &sqlite)];
        stores.extend(postgres.as_ref().map(|p| ("postgres", p)));
        for (name, (loaded, replayed, events)) in stores {
            prop_assert_eq!(loaded, &expected, "{}: snapshot + tail", name);
            prop_assert_eq!(replayed, &expected, "{}: full replay", name);
            prop_assert_eq!(
                events,
                &memory.2,
                "{} holds the same events as memory",
                name
            );
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
