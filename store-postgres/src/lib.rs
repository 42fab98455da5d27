//! PostgreSQL event store for Recount.
