//! A row deleted from the middle of a stream by hand is reported when the stream is loaded
//! (store contract, item 1: versions have no gap), never silently skipped.

mod common;

use recount::{aggregate, CommandContext, Error, Repository};

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

#[test]
fn a_version_deleted_from_the_middle_of_a_stream_is_corrupt_naming_stream_and_version() {
    common::run(
        "a_version_deleted_from_the_middle_of_a_stream_is_corrupt_naming_stream_and_version",
        |db| async move {
            let repo = Repository::<Tally, _>::new(db.store.clone());
            for by in 1..=4 {
                repo.execute("gap", &CommandContext::new(), |_| {
                    Ok(vec![TallyEvent::Added { by }])
                })
                .await
                .unwrap();
            }
            let mut conn = db.connection().await;
            let deleted = sqlx::query(
                "DELETE FROM recount.events WHERE stream_id = 'tally-gap' AND stream_version = 3",
            )
            .execute(&mut conn)
            .await
            .unwrap();
            assert_eq!(deleted.rows_affected(), 1);
            match repo.load("gap").await {
                Err(Error::Corrupt { stream, reason, .. }) => {
                    assert_eq!(stream, "tally-gap");
                    assert!(reason.contains("version 3 is missing"), "{reason}");
                }
                other => panic!("expected a corrupt stream, got {other:?}"),
            }
        },
    );
}
