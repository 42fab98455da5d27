//! SQLite event store for Recount.
