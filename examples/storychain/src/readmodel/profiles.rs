//! User profiles: XP, level, badges and counters (rules in [`super::progress`]).

use super::progress::{self, Progress};
use super::Filtered;
use recount::sql::{SqlReadModel, SqlTx};
use recount::RecordedEvent;

/// Tables `profiles_v<n>_users`, `_badges`, `_authors`.
#[derive(Debug)]
pub(crate) struct Profiles {
    progress: Progress,
}

impl Profiles {
    pub(crate) fn new(version: u32) -> Self {
        Profiles {
            progress: Progress::new(format!("profiles_v{version}")),
        }
    }
}

impl Filtered for Profiles {
    const EVENT_TYPES: &'static [&'static str] = &progress::EVENT_TYPES;
}

impl SqlReadModel for Profiles {
    fn setup(&self, tx: &mut dyn SqlTx) -> recount::Result<()> {
        self.progress.setup(tx)
    }

    fn apply_batch(&self, tx: &mut dyn SqlTx, events: &[RecordedEvent]) -> recount::Result<()> {
        self.progress.apply_batch(tx, events)
    }

    fn drop_tables(&self, tx: &mut dyn SqlTx) -> recount::Result<()> {
        self.progress.drop_tables(tx)
    }
}
