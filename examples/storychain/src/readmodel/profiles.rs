//! User profiles: XP, level, badges and counters (rules in [`super::progress`]).

use super::progress::{self, Progress};
use super::{EventByEvent, Filtered};
use recount::sql::SqlTx;
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

impl EventByEvent for Profiles {
    fn setup(&self, tx: &mut dyn SqlTx) -> recount::Result<()> {
        self.progress.setup(tx)
    }

    fn apply(&self, tx: &mut dyn SqlTx, e: &RecordedEvent) -> recount::Result<()> {
        self.progress.apply(tx, e).map(drop)
    }

    fn drop_tables(&self, tx: &mut dyn SqlTx) -> recount::Result<()> {
        self.progress.drop_tables(tx)
    }
}
