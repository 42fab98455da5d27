//! The in-memory store runs the runner suite.

use recount::testing::Fixture;
use recount::InMemoryStore;

recount::runner_tests!(|| async { Fixture::new(InMemoryStore::new()) });
