//! Benchmarks and cross-store tests of Recount.
//!
//! The `bench` binary measures every scenario twice in the same run: through Recount, and
//! through a raw baseline ([`RawStore`]) doing the same work directly on the same engine and
//! driver. It reports the ratio.

pub mod bench;
pub mod fixtures;

pub use bench::{BenchOptions, RawEvent, RawRow, RawStore, Row, StorePair};
