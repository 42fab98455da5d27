//! The shared store conformance suite (`recount::testing::conformance`), every guarantee, on
//! PostgreSQL: one fresh database per test, dropped afterwards. Without a database each test
//! prints one line and is skipped, unless `CI` is set, where it fails.

mod common;

recount::conformance_tests!(|| async {
    let server = common::server_or_skip("postgres conformance")?;
    Some(common::fixture(server).await)
});
