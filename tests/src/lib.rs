//! Shared helpers for the bench binary and cross-store tests.
