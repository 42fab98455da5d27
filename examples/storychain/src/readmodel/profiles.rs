//! User profiles: XP, level, badges and counters (rules in [`super::progress`]).

use super::progress::{self, Progress};
use super::Filtered;
use recount::RecordedEvent;
use recount_sqlite::rusqlite::Transaction;
use recount_sqlite::SqliteReadModel;

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

impl SqliteReadModel for Profiles {
    fn setup(&self, tx: &Transaction<'_>) -> recount::Result<()> {
        self.progress.setup(tx)
    }

    fn apply(&self, tx: &Transaction<'_>, e: &RecordedEvent) -> recount::Result<()> {
        self.progress.apply(tx, e).map(drop)
    }

    fn drop_tables(&self, tx: &Transaction<'_>) -> recount::Result<()> {
        self.progress.drop_tables(tx)
    }
}
