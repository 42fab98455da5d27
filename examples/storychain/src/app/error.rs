//! The application's error: a typed rejection of one aggregate, a missing entity, or the store.

use crate::domain::{
    ChapterError, CollaborationError, EngagementError, InboxError, PullRequestError, StoryError,
    UserError, UsernameError, WebhookError,
};
use recount::CommandError;

/// Why an application command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// The username reservation refused it.
    #[error(transparent)]
    Username(#[from] UsernameError),
    /// The user refused it.
    #[error(transparent)]
    User(#[from] UserError),
    /// The story refused it.
    #[error(transparent)]
    Story(#[from] StoryError),
    /// The collaboration refused it.
    #[error(transparent)]
    Collaboration(#[from] CollaborationError),
    /// The chapter tree refused it.
    #[error(transparent)]
    Chapter(#[from] ChapterError),
    /// The pull request refused it.
    #[error(transparent)]
    PullRequest(#[from] PullRequestError),
    /// The engagement refused it.
    #[error(transparent)]
    Engagement(#[from] EngagementError),
    /// The inbox refused it.
    #[error(transparent)]
    Inbox(#[from] InboxError),
    /// The webhook refused it.
    #[error(transparent)]
    Webhook(#[from] WebhookError),
    /// Something named does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] recount::Error),
}

impl AppError {
    /// Whether this is a rejection by the domain (a 4xx), not a failure of the system.
    pub fn is_rejection(&self) -> bool {
        !matches!(self, AppError::Store(_))
    }
}

impl<E> From<CommandError<E>> for AppError
where
    AppError: From<E>,
{
    fn from(e: CommandError<E>) -> Self {
        match e {
            CommandError::Rejected(e) => e.into(),
            CommandError::Store(e) => AppError::Store(e),
        }
    }
}
