//! The shared store conformance suite (`recount::testing::conformance`), every guarantee, on
//! PostgreSQL: one fresh database per test.

mod common;

/// Stamps out one test per conformance function, each skipped (with one printed line) when no
/// database answers and `CI` is not set. `recount::conformance_tests!` itself cannot skip, so
/// this lists the suite's functions; keep it in step with the core macro.
macro_rules! pg_conformance_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let Some(server) = common::server_or_skip(stringify!($name)) else { return };
                recount::testing::run_conformance(
                    move || common::fixture(server),
                    recount::testing::conformance::$name,
                );
            }
        )*
    };
}

pg_conformance_tests!(
    versions_are_contiguous_from_one,
    expected_version_is_checked_and_conflicts_write_nothing,
    concurrent_exact_appends_write_each_version_once,
    batches_are_all_or_nothing,
    readers_never_observe_part_of_a_batch,
    exact_retry_is_idempotent_and_partial_retry_is_a_duplicate,
    global_log_follower_sees_every_event_once_under_concurrency,
    filtered_reads_keep_matches_and_report_progress,
    stream_reads_start_at_a_version_and_respect_the_limit,
    deleted_stream_rejects_appends_and_reads_but_stays_in_the_log,
    snapshots_keep_the_newest,
    checkpoints_compare_and_set,
    concurrent_checkpoint_writers_exactly_one_wins,
    invalid_input_is_rejected_before_anything_is_written,
    recorded_events_keep_what_was_appended,
);
