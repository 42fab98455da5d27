//! A row deleted from the middle of a stream by hand is reported when the stream is loaded
//! (store contract, item 1: versions have no gap), never silently skipped.

use recount::{aggregate, CommandContext, Error, Repository};
use recount_sqlite::rusqlite::Connection;
use recount_sqlite::SqliteEventStore;

#[derive(Debug, Default)]
struct Tally {
    total: u64,
}

#[aggregate(category = "tally", error = std::convert::Infallible)]
impl Tally {
    /// The total went up.
    #[event]
    fn added(&mut self, by: u64) {
        self.total += by;
    }
}

#[tokio::test]
async fn a_version_deleted_from_the_middle_of_a_stream_is_corrupt_naming_stream_and_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let store = SqliteEventStore::open(&path).await.unwrap();
    let repo = Repository::<Tally, _>::new(store);
    for by in 1..=4 {
        repo.execute("gap", &CommandContext::new(), |_| {
            Ok(vec![TallyEvent::Added { by }])
        })
        .await
        .unwrap();
    }
    let raw = Connection::open(&path).unwrap();
    let deleted = raw
        .execute(
            "DELETE FROM events WHERE stream_id = 'tally-gap' AND stream_version = 2",
            [],
        )
        .unwrap();
    assert_eq!(deleted, 1);
    match repo.load("gap").await {
        Err(Error::Corrupt { stream, reason, .. }) => {
            assert_eq!(stream, "tally-gap");
            assert!(reason.contains("version 2 is missing"), "{reason}");
        }
        other => panic!("expected a corrupt stream, got {other:?}"),
    }
    let err = repo
        .execute("gap", &CommandContext::new(), |_| {
            Ok(vec![TallyEvent::Added { by: 9 }])
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("version 2 is missing"), "{err}");
}
