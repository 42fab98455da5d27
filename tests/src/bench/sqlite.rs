//! The sqlite store's raw baseline (filled in by the sqlite store work).

use super::PairFactory;

/// A factory of fresh sqlite store pairs, or `None` when not available in this build.
pub fn factory() -> Option<PairFactory> {
    None
}
