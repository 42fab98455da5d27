//! StoryChain's integration events as this service reads them (version 1 of each). A
//! receiving service keeps its own copy of the contract; it does not link the publisher's
//! code.

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// `story.published` v1.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StoryPublished {
    /// The story's id.
    pub story_id: String,
    /// Its title.
    pub title: String,
    /// Its genre.
    pub genre: String,
    /// When.
    pub published_at: DateTime<Utc>,
}

/// `chapter.published` v1.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ChapterPublished {
    /// The story's id.
    pub story_id: String,
    /// The chapter's id.
    pub chapter_id: String,
    /// Its title.
    pub title: String,
    /// When.
    pub published_at: DateTime<Utc>,
}

/// `pr.merged` v1 (the fields this service uses).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PrMerged {
    /// The pull request's id.
    pub pr_id: String,
    /// The story's id.
    pub story_id: String,
    /// When.
    pub merged_at: DateTime<Utc>,
}

/// `user.registered` v1.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UserRegistered {
    /// The user's id.
    pub user_id: String,
    /// Their username.
    pub username: String,
    /// Their display name.
    pub display_name: String,
    /// When.
    pub registered_at: DateTime<Utc>,
}
