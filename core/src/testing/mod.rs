//! Test support (feature `testing`): the store conformance suite and a given/when/then
//! harness for aggregates.
//!
//! # Conformance suite
//!
//! Every store runs the whole suite by naming a factory that makes a fresh store for each
//! test:
//!
//! ```
//! use recount::testing::Fixture;
//! recount::conformance_tests!(|| async { Fixture::new(recount::InMemoryStore::new()) });
//! # fn main() {}
//! ```
//!
//! Each test runs on its own multi-thread tokio runtime, so racing tests race for real.

pub mod bad_input;
pub mod conformance;
mod faults;
mod harness;
mod integration;
pub mod runners;
pub mod sql;

pub use faults::{Faults, FaultyConsumer, FaultyStore};
pub use harness::{AggregateTest, Then};
pub use integration::MappingTest;

use crate::EventStore;
use std::future::Future;
use std::pin::Pin;

/// A store made for one conformance test, with what to do after it (drop a database, …).
pub struct Fixture<S> {
    store: S,
    teardown: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl<S> std::fmt::Debug for Fixture<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fixture").finish_non_exhaustive()
    }
}

impl<S: EventStore + Clone> Fixture<S> {
    /// A fixture with nothing to clean up.
    pub fn new(store: S) -> Self {
        Fixture {
            store,
            teardown: None,
        }
    }

    /// Runs `teardown` after the test, whether it passed or not.
    pub fn with_teardown(mut self, teardown: impl Future<Output = ()> + Send + 'static) -> Self {
        self.teardown = Some(Box::pin(teardown));
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }
}

/// What a conformance factory returns: a [`Fixture`], or `Option<Fixture>` where `None`
/// skips the test (a store whose server is not there; the factory says why).
pub trait IntoFixture {
    /// The store.
    type Store: EventStore + Clone;
    /// The fixture, or `None` to skip.
    fn into_fixture(self) -> Option<Fixture<Self::Store>>;
}

impl<S: EventStore + Clone> IntoFixture for Fixture<S> {
    type Store = S;
    fn into_fixture(self) -> Option<Fixture<S>> {
        Some(self)
    }
}

impl<S: EventStore + Clone> IntoFixture for Option<Fixture<S>> {
    type Store = S;
    fn into_fixture(self) -> Option<Fixture<S>> {
        self
    }
}

/// Runs one conformance test on a fresh multi-thread runtime: makes the fixture, runs the
/// test, tears the fixture down, then re-raises a failure. Used by [`conformance_tests!`].
///
/// [`conformance_tests!`]: crate::conformance_tests
pub fn run_conformance<X, F, FFut, T, TFut>(factory: F, test: T)
where
    X: IntoFixture,
    F: FnOnce() -> FFut,
    FFut: Future<Output = X>,
    T: FnOnce(X::Store) -> TFut,
    TFut: Future<Output = ()> + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a tokio runtime for the conformance test");
    runtime.block_on(async move {
        let Some(fixture) = factory().await.into_fixture() else {
            return;
        };
        let outcome = tokio::spawn(test(fixture.store.clone())).await;
        if let Some(teardown) = fixture.teardown {
            teardown.await;
        }
        if let Err(e) = outcome {
            if e.is_panic() {
                std::panic::resume_unwind(e.into_panic());
            }
            panic!("conformance test was cancelled: {e}");
        }
    });
}

/// Stamps out the whole store conformance suite as `#[test]` functions, one per guarantee,
/// for a factory `|| async { Fixture<S> }` called once per test. A factory returning
/// `Option<Fixture<S>>` skips a test with `None` (say why on stderr).
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
#[macro_export]
macro_rules! conformance_tests {
    ($factory:expr) => {
        $crate::conformance_tests!(@each $factory;
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
            checkpoint_state_moves_with_its_checkpoint,
            concurrent_checkpoint_writers_exactly_one_wins,
            invalid_input_is_rejected_before_anything_is_written,
            recorded_events_keep_what_was_appended,
            count_after_counts_what_the_log_holds,
            queries_match_every_condition_and_page_without_gaps,
            read_event_finds_an_event_by_its_id
        );
        $crate::conformance_tests!(@each_in bad_input, $factory;
            impossible_snapshots_are_refused_and_change_nothing,
            repository_ignores_snapshots_that_do_not_fit_the_stream,
            reserved_metadata_keys_are_refused_naming_the_key,
            payloads_that_would_not_read_back_are_refused_naming_why,
            event_types_with_nul_whitespace_or_control_characters_are_refused,
            checkpoint_names_with_nul_or_control_characters_are_refused,
            stream_ids_with_nul_cannot_reach_a_store,
            schema_versions_have_the_same_bounds_on_every_store
        );
    };
    (@each $factory:expr; $($name:ident),* $(,)?) => {
        $crate::conformance_tests!(@each_in conformance, $factory; $($name),*);
    };
    (@each_in $module:ident, $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::testing::run_conformance($factory, $crate::testing::$module::$name);
            }
        )*
    };
}

/// Stamps out the runner suite ([`runners`]) as `#[test]` functions for a factory, like
/// [`conformance_tests!`]: every consumer kind (read model, side effect, process manager) under
/// injected faults, two runners and a takeover, partitions, poison events, a supervisor's
/// restart, reading ahead while a batch commits.
///
/// ```
/// use recount::testing::Fixture;
/// recount::runner_tests!(|| async { Fixture::new(recount::InMemoryStore::new()) });
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! runner_tests {
    ($factory:expr) => {
        $crate::runner_tests!(@each $factory;
            consumers_of_every_kind_survive_injected_store_faults,
            of_two_runners_of_every_kind_one_works_and_the_other_takes_over,
            partitioned_runners_of_every_kind_handle_each_event_once,
            a_poison_event_is_parked_and_completed_by_a_retry,
            a_supervisor_restarts_a_panicked_runner,
            the_runner_reads_ahead_while_a_batch_commits,
        );
    };
    (@each $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::testing::run_conformance($factory, $crate::testing::runners::$name);
            }
        )*
    };
}
