//! What StoryChain tells other services: four integration events, each with a public name,
//! a public version and a payload of its own, mapped from the domain events.
//!
//! | public name | version | from | published when |
//! |---|---|---|---|
//! | `story.published` | 1 | `story.published` | the story is public |
//! | `chapter.published` | 1 | `chapter.published` | the chapter's story is public |
//! | `pr.merged` | 1 | `pr.merged` | the pull request's story is public |
//! | `user.registered` | 1 | `user.registered` | always (username and display name are public) |
//!
//! Nothing else leaves the service: drafts, private stories, votes, comments, inboxes and
//! tokens stay inside. The payload types below are the contract; a receiving service keeps
//! its own copy of them rather than depending on this crate.
//!
//! Visibility is read from the domain event itself (recorded at the moment of the fact), so
//! the mapping needs nothing but the event and gives the same answer every time it runs.
//! Events recorded before they carried a visibility are not known to be public and stay
//! inside.
//!
//! ```
//! use recount::integration::Mapping;
//! use storychain::integration;
//!
//! let map = integration::map();
//! let names: Vec<_> = map.published().into_iter().map(|(_, public, v)| (public, v)).collect();
//! assert_eq!(
//!     names,
//!     [("story.published", 1), ("chapter.published", 1), ("pr.merged", 1), ("user.registered", 1)]
//! );
//! // The relay reads only the four mapped domain types.
//! assert_eq!(map.filter().event_types.len(), 4);
//! ```

use crate::domain::{ChapterTreeEvent, Genre, PullRequestEvent, StoryEvent, UserEvent, Visibility};
use chrono::{DateTime, Utc};
use recount::integration::IntegrationMap;
use recount::{RecordedEvent, Result};
use serde::{Deserialize, Serialize};

/// `story.published` v1: a public story was published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoryPublished {
    /// The story's id.
    pub story_id: String,
    /// Its title when it was published.
    pub title: String,
    /// Its genre: `fantasy`, `sci_fi`, `mystery`, `romance` or `horror`.
    pub genre: String,
    /// When.
    pub published_at: DateTime<Utc>,
}

/// `chapter.published` v1: a chapter of a public story was published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChapterPublished {
    /// The story's id.
    pub story_id: String,
    /// The chapter's id.
    pub chapter_id: String,
    /// Its title when it was published.
    pub title: String,
    /// When.
    pub published_at: DateTime<Utc>,
}

/// `pr.merged` v1: a pull request on a public story was merged; its chapter `chapter_id`
/// follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrMerged {
    /// The pull request's id.
    pub pr_id: String,
    /// The story's id.
    pub story_id: String,
    /// The chapter made from it.
    pub chapter_id: String,
    /// Who proposed it (user id).
    pub author: String,
    /// Who merged it (user id).
    pub merged_by: String,
    /// When.
    pub merged_at: DateTime<Utc>,
}

/// `user.registered` v1: someone joined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

fn public(visibility: Option<Visibility>) -> bool {
    visibility == Some(Visibility::Public)
}

fn story_published(e: &RecordedEvent) -> Result<Option<StoryPublished>> {
    let StoryEvent::Published {
        story_id,
        title,
        genre,
        visibility,
        at,
    } = e.decode()?
    else {
        return Ok(None);
    };
    Ok(genre
        .filter(|_| public(visibility))
        .map(|genre: Genre| StoryPublished {
            story_id,
            title,
            genre: genre.as_str().to_owned(),
            published_at: at,
        }))
}

fn chapter_published(e: &RecordedEvent) -> Result<Option<ChapterPublished>> {
    let ChapterTreeEvent::Published {
        story_id,
        chapter_id,
        title,
        visibility,
        at,
    } = e.decode()?
    else {
        return Ok(None);
    };
    Ok(public(visibility).then_some(ChapterPublished {
        story_id,
        chapter_id,
        title,
        published_at: at,
    }))
}

fn pr_merged(e: &RecordedEvent) -> Result<Option<PrMerged>> {
    let PullRequestEvent::Merged {
        pr_id,
        story_id,
        author,
        merged_by,
        chapter_id,
        visibility,
        at,
    } = e.decode()?
    else {
        return Ok(None);
    };
    Ok(public(visibility).then_some(PrMerged {
        pr_id,
        story_id,
        chapter_id,
        author,
        merged_by,
        merged_at: at,
    }))
}

fn user_registered(e: &RecordedEvent) -> Result<Option<UserRegistered>> {
    let UserEvent::Registered {
        user_id,
        username,
        display_name,
        at,
    } = e.decode()?
    else {
        return Ok(None);
    };
    Ok(Some(UserRegistered {
        user_id,
        username,
        display_name,
        registered_at: at,
    }))
}

/// The public names StoryChain publishes, in order.
pub const PUBLISHED: [&str; 4] = [
    "story.published",
    "chapter.published",
    "pr.merged",
    "user.registered",
];

/// StoryChain's mapping from domain events to integration events (see the
/// [module docs](self)).
pub fn map() -> IntegrationMap {
    IntegrationMap::new()
        .on("story.published", PUBLISHED[0], 1, story_published)
        .on("chapter.published", PUBLISHED[1], 1, chapter_published)
        .on("pr.merged", PUBLISHED[2], 1, pr_merged)
        .on("user.registered", PUBLISHED[3], 1, user_registered)
}
