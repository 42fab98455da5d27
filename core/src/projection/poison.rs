//! Failures of a runner's step, and how many times in a row the same place failed.

use crate::{Backoff, Cursor, Error, RecordedEvent};
use std::time::Duration;

/// Where a step failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    /// Reading the checkpoint or the log: no event is to blame.
    Read,
    /// Parking events held back behind a dead letter.
    Park,
    /// The consumer's commit.
    Commit,
}

/// A failed step.
#[derive(Debug)]
pub(super) struct Failure {
    pub(super) error: Error,
    pub(super) stage: Stage,
    /// Events handed to the consumer.
    pub(super) handed: usize,
    /// The event, when exactly one was handed.
    pub(super) single: Option<RecordedEvent>,
    /// The cursors of the events handed.
    pub(super) cursors: Vec<Cursor>,
    /// The checkpoint the step started from.
    pub(super) expected: Option<Cursor>,
    /// Where the batch would have moved the checkpoint.
    pub(super) end: Cursor,
}

impl Failure {
    pub(super) fn read(error: Error) -> Self {
        Self::before_commit(error, Stage::Read)
    }

    pub(super) fn park(error: Error) -> Self {
        Self::before_commit(error, Stage::Park)
    }

    fn before_commit(error: Error, stage: Stage) -> Self {
        Failure {
            error,
            stage,
            handed: 0,
            single: None,
            cursors: Vec::new(),
            expected: None,
            end: Cursor::START,
        }
    }
}

/// What a runner does after a step.
#[derive(Debug)]
pub(super) enum Next {
    /// Go on at once.
    Busy,
    /// Caught up: wait for appends.
    Idle,
    /// Wait this long (for a lease another runner holds).
    Wait(Duration),
    /// Retry after a backoff pause.
    Retry(Error),
    /// Another runner moved the checkpoint.
    Fenced(Error),
    /// Stop with this error.
    Stop(Error),
}

/// Consecutive failures at one checkpoint, and whether the runner is looking for the failing
/// event of a batch, one event at a time, up to `isolate_until`.
#[derive(Debug)]
pub(super) struct Attempts {
    count: u32,
    at: Option<Option<Cursor>>,
    isolate_until: Option<Cursor>,
    backoff: Backoff,
}

impl Attempts {
    pub(super) fn new((first, cap): (Duration, Duration)) -> Self {
        Attempts {
            count: 0,
            at: None,
            isolate_until: None,
            backoff: Backoff::new(first, cap),
        }
    }

    /// A failure of a step that started at checkpoint `at`; returns the attempts made there.
    pub(super) fn failed(&mut self, at: Option<Cursor>) -> u32 {
        if self.at != Some(at) {
            self.at = Some(at);
            self.count = 0;
        }
        self.count += 1;
        self.count
    }

    /// A step succeeded: a batch committed (the checkpoint is now `at`), or `None`: caught up.
    pub(super) fn succeeded(&mut self, at: Option<Option<Cursor>>) {
        self.backoff.reset();
        if at.is_none() {
            // Caught up: nothing is left to look through.
            self.isolate_until = None;
        }
        if let (Some(until), Some(Some(at))) = (self.isolate_until, at) {
            if at >= until {
                self.isolate_until = None;
            }
        }
        if at.is_some() && at != self.at {
            self.count = 0;
            self.at = None;
        }
    }

    /// Handle events one at a time up to `until`, to find the one that fails.
    pub(super) fn isolate(&mut self, until: Cursor) {
        self.isolate_until = Some(until);
        self.count = 0;
        self.at = None;
    }

    pub(super) fn isolating(&self) -> bool {
        self.isolate_until.is_some()
    }

    /// The poison event was parked and passed.
    pub(super) fn parked(&mut self) {
        self.count = 0;
        self.at = None;
        self.backoff.reset();
    }

    /// The pause before the next retry.
    pub(super) fn pause(&mut self) -> Duration {
        self.backoff.next_pause()
    }
}
