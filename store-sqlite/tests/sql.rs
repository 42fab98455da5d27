//! The shared SQL read-model suite (`recount::testing::sql`) on SQLite, each test on its own
//! temporary database file.

use recount::testing::Fixture;
use recount_sqlite::SqliteEventStore;

recount::sql_tests!(|| async {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SqliteEventStore::open(dir.path().join("events.db"))
        .await
        .expect("open the store");
    Fixture::new(store).with_teardown(async move { drop(dir) })
});
