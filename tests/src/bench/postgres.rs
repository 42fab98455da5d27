//! The postgres store's raw baseline (filled in by the postgres store work).

use super::PairFactory;

/// A factory of fresh postgres store pairs, or `None` when not available in this build.
pub fn factory() -> Option<PairFactory> {
    None
}
