//! The in-memory store runs the whole conformance suite.

use recount::testing::Fixture;
use recount::InMemoryStore;

recount::conformance_tests!(|| async { Fixture::new(InMemoryStore::new()) });
