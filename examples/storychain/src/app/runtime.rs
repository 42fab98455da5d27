//! Running what follows the log: process managers, projections, rebuilds.

use super::Store;
use super::{AppError, StoryChain};
use crate::process::{AwardsManager, MergeManager, MilestoneManager};
use crate::readmodel::{active, projection, AnyProjection, PROJECTIONS};
use recount::projection::{checkpoint_name, rebuild, ActiveVersion, Process, Progress, Runner};
use recount::{Cursor, EventStore};

/// What [`StoryChain::settle`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settled {
    /// Events handled by process managers.
    pub processed: u64,
    /// Events handled by projections.
    pub projected: u64,
}

/// Where one projection is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionStatus {
    /// Its name.
    pub name: &'static str,
    /// The version readers use.
    pub version: u32,
    /// Its checkpoint (`None`: never run).
    pub checkpoint: Option<Cursor>,
    /// Events it has still to handle.
    pub lag: u64,
}

impl StoryChain {
    /// The runner of projection `name` at its active version.
    pub async fn projection_runner(
        &self,
        name: &str,
    ) -> Result<Runner<Store, AnyProjection>, AppError> {
        let version = active(self.store(), name).await?;
        Ok(Runner::new(
            self.store().clone(),
            projection(self.store(), name, version)?,
        ))
    }

    /// Brings every projection up to date; returns the events handled.
    pub async fn run_projections(&self) -> Result<u64, AppError> {
        let mut n = 0;
        for name in PROJECTIONS {
            n += self.projection_runner(name).await?.catch_up().await?;
        }
        Ok(n)
    }

    /// Brings the process managers up to date; returns the events handled. The awards
    /// manager reads the profiles model at each event it handles, so the projections are
    /// brought up to date (with what the other managers wrote) before it runs.
    pub async fn run_processes(&self) -> Result<u64, AppError> {
        Ok(self.run_processes_counted().await?.processed)
    }

    async fn run_processes_counted(&self) -> Result<Settled, AppError> {
        let store = self.store();
        let merges = Runner::new(
            store.clone(),
            Process::new(store.clone(), MergeManager::new(self.clone())),
        );
        let milestones = Runner::new(
            store.clone(),
            Process::new(store.clone(), MilestoneManager::new(self.clone()).await?),
        );
        let mut processed = merges.catch_up().await? + milestones.catch_up().await?;
        let projected = self.run_projections().await?;
        let awards = Runner::new(
            store.clone(),
            Process::new(store.clone(), AwardsManager::new(self.clone()).await?),
        );
        processed += awards.catch_up().await?;
        Ok(Settled {
            processed,
            projected,
        })
    }

    /// Runs projections and process managers until nothing is left: the milestone manager
    /// reads the catalogue, and managers' commands may trigger each other (a merged chapter
    /// can be a branch that reaches a milestone).
    pub async fn settle(&self) -> Result<Settled, AppError> {
        let mut settled = Settled::default();
        loop {
            settled.projected += self.run_projections().await?;
            let round = self.run_processes_counted().await?;
            settled.projected += round.projected;
            settled.processed += round.processed;
            if round.processed == 0 {
                return Ok(settled);
            }
        }
    }

    /// Version, checkpoint and lag of every projection.
    pub async fn projection_status(&self) -> Result<Vec<ProjectionStatus>, AppError> {
        let mut out = Vec::new();
        for name in PROJECTIONS {
            let version = active(self.store(), name).await?;
            let checkpoint = self
                .store()
                .load_checkpoint(&checkpoint_name(name, version, None))
                .await?;
            let filter =
                recount::projection::Consumer::filter(&projection(self.store(), name, version)?);
            let lag = self
                .store()
                .count_after(checkpoint.unwrap_or(Cursor::START), &filter)
                .await?;
            out.push(ProjectionStatus {
                name,
                version,
                checkpoint,
                lag,
            });
        }
        Ok(out)
    }

    /// Rebuilds projection `name`: version v+1 is built by replay beside the live v, readers
    /// are switched to it, and v's tables are dropped. Returns (v, v+1, events replayed).
    pub async fn rebuild(
        &self,
        name: &str,
        batch_size: usize,
        progress: impl FnMut(Progress) + Send,
    ) -> Result<(u32, u32, u64), AppError> {
        let from = active(self.store(), name).await?;
        let previous = projection(self.store(), name, from)?;
        let next = projection(self.store(), name, from + 1)?;
        let n = rebuild(self.store(), next, Some(&previous), batch_size, progress).await?;
        Ok((from, from + 1, n))
    }

    /// Builds version v+1 of projection `name` beside v and switches readers to it, keeping
    /// v (to compare, then [`drop_version`](Self::drop_version)). Returns (v, v+1, events).
    pub async fn rebuild_beside(
        &self,
        name: &str,
        batch_size: usize,
        progress: impl FnMut(Progress) + Send,
    ) -> Result<(u32, u32, u64), AppError> {
        let from = active(self.store(), name).await?;
        let next = projection(self.store(), name, from + 1)?;
        let n = rebuild(
            self.store(),
            next,
            None::<&AnyProjection>,
            batch_size,
            progress,
        )
        .await?;
        Ok((from, from + 1, n))
    }

    /// Drops the tables of version `version` of projection `name` (not the active one).
    pub async fn drop_version(&self, name: &str, version: u32) -> Result<(), AppError> {
        if active(self.store(), name).await? == version {
            return Err(recount::Error::invalid(
                "version",
                format!("v{version} of {name} is the one readers use"),
            )
            .into());
        }
        projection(self.store(), name, version)?
            .drop_storage()
            .await?;
        Ok(())
    }

    /// Rebuilds projection `name` while the service runs: the next version is built beside
    /// the active one, readers switch to it, and once no process runs the old version any
    /// more (every [`ActiveVersion`] follows the switch within a second; a dead process's
    /// lease expires) its tables are dropped. Returns `(from, to, events, old_dropped)`;
    /// `old_dropped` is false when the old version was still running somewhere after
    /// `stop_timeout` (its tables are then kept, and `rebuild` can drop them later).
    pub async fn rebuild_live(
        &self,
        name: &str,
        batch_size: usize,
        stop_timeout: std::time::Duration,
        progress: impl FnMut(Progress) + Send,
    ) -> Result<(u32, u32, u64, bool), AppError> {
        let (from, to, n) = self.rebuild_beside(name, batch_size, progress).await?;
        let old = checkpoint_name(name, from, None);
        let stopped = ActiveVersion::wait_until_stopped(self.store(), &old, stop_timeout).await?;
        if stopped {
            projection(self.store(), name, from)?.drop_storage().await?;
        }
        Ok((from, to, n, stopped))
    }
}
