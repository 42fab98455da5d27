//! The StoryChain domain: aggregates written with `#[recount::aggregate]`.
//!
//! Every aggregate is pure: commands take the state and the time (`now`) and return events or
//! a typed rejection. Rules that span aggregates (who may write in a private story) are
//! checked by the application service, which passes what it read into the command.

mod chapter;
mod collaboration;
mod engagement;
mod inbox;
mod pull_request;
mod story;
mod user;
mod username;
mod webhook;

pub use username::valid_username;

pub use chapter::{
    ChapterAccess, ChapterError, ChapterNode, ChapterTree, ChapterTreeEvent, NewChapter,
};
pub use collaboration::{Collaboration, CollaborationError, CollaborationEvent, Role};
pub use engagement::{Engagement, EngagementError, EngagementEvent, Target};
pub use inbox::{Inbox, InboxError, InboxEvent};
pub use pull_request::{
    PrStatus, Proposal, PullRequest, PullRequestError, PullRequestEvent, Verdict,
};
pub use story::{Genre, MilestoneKind, Story, StoryError, StoryEvent, StoryStatus, Visibility};
pub use user::{User, UserError, UserEvent};
pub use username::{Username, UsernameError, UsernameEvent};
pub use webhook::{
    host_allowed, story_events, story_of, NewWebhook, Webhook, WebhookError, WebhookEvent,
    MAX_SECRET_LEN, MAX_URL_LEN, MIN_SECRET_LEN, SECRET_FIELDS, STORY_EVENT_TYPES,
};

/// Thresholds at which a story reaches a milestone (votes, reads, branches).
pub const MILESTONES: [u64; 3] = [10, 100, 1_000];
