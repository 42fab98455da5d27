//! The shared runner suite (`recount::testing::runners`: every consumer kind under injected
//! faults, takeover, partitions, poison events) on PostgreSQL, one fresh database per test.
//! Without a database each test prints one line and is skipped, unless `CI` is set.

mod common;

recount::runner_tests!(|| async {
    let server = common::server_or_skip("postgres runners")?;
    Some(common::fixture(server).await)
});
