//! The shared SQL read-model suite (`recount::testing::sql`) on PostgreSQL, one fresh
//! database per test. Without a database each test prints one line and is skipped, unless
//! `CI` is set.

mod common;

recount::sql_tests!(|| async {
    let server = common::server_or_skip("postgres sql read models")?;
    Some(common::fixture(server).await)
});
