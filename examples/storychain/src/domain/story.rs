//! Stories: created, details updated, published, archived, milestones reached.

use chrono::{DateTime, Utc};
use recount::aggregate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// A story's genre.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Genre {
    /// Dragons and magic.
    Fantasy,
    /// Starships and futures.
    SciFi,
    /// Whodunits.
    Mystery,
    /// Love stories.
    Romance,
    /// Fear.
    Horror,
}

impl Genre {
    /// Every genre.
    pub const ALL: [Genre; 5] = [
        Genre::Fantasy,
        Genre::SciFi,
        Genre::Mystery,
        Genre::Romance,
        Genre::Horror,
    ];

    /// The stored name, e.g. `sci_fi`.
    pub fn as_str(self) -> &'static str {
        match self {
            Genre::Fantasy => "fantasy",
            Genre::SciFi => "sci_fi",
            Genre::Mystery => "mystery",
            Genre::Romance => "romance",
            Genre::Horror => "horror",
        }
    }
}

impl std::str::FromStr for Genre {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Genre::ALL
            .into_iter()
            .find(|g| g.as_str() == s)
            .ok_or_else(|| {
                format!("unknown genre `{s}` (fantasy, sci_fi, mystery, romance, horror)")
            })
    }
}

impl fmt::Display for Genre {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who may read and write a story.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Anyone reads; any registered user may add chapters.
    Public,
    /// Only the owner and collaborators add chapters.
    Private,
}

/// Where a story is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoryStatus {
    /// Not created yet.
    #[default]
    None,
    /// Created, not yet published.
    Draft,
    /// Published.
    Published,
    /// Archived: accepts nothing more.
    Archived,
}

impl StoryStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            StoryStatus::None => "none",
            StoryStatus::Draft => "draft",
            StoryStatus::Published => "published",
            StoryStatus::Archived => "archived",
        }
    }
}

impl std::str::FromStr for StoryStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        [
            StoryStatus::Draft,
            StoryStatus::Published,
            StoryStatus::Archived,
        ]
        .into_iter()
        .find(|g| g.as_str() == s)
        .ok_or_else(|| format!("unknown status `{s}` (draft, published, archived)"))
    }
}

/// What a milestone counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MilestoneKind {
    /// Up-votes on the story and its chapters.
    Votes,
    /// Reading-progress records.
    Reads,
    /// Branches in its chapter tree.
    Branches,
}

/// A story (stream `story-<id>`).
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Story {
    /// Its title.
    pub title: String,
    /// Its author and owner (user id).
    pub owner: String,
    /// Its genre.
    pub genre: Option<Genre>,
    /// Who may write.
    pub visibility: Option<Visibility>,
    /// Where it is in its life.
    pub status: StoryStatus,
    /// Milestones reached.
    pub milestones: BTreeSet<(MilestoneKind, u64)>,
}

/// Why a story command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoryError {
    /// Creating a story twice.
    #[error("the story already exists")]
    AlreadyExists,
    /// A command on a story never created.
    #[error("the story does not exist")]
    NotFound,
    /// An empty title, or one over 120 characters.
    #[error("the title must have 1 to 120 characters")]
    InvalidTitle,
    /// Someone other than the owner changing the story.
    #[error("only the story's owner may do that")]
    NotOwner,
    /// Publishing twice.
    #[error("the story is already published")]
    AlreadyPublished,
    /// Any command on an archived story.
    #[error("the story is archived")]
    Archived,
    /// A milestone recorded twice.
    #[error("milestone {0:?} {1} was already reached")]
    MilestoneAlreadyReached(MilestoneKind, u64),
    /// A milestone threshold that is not one of [`crate::domain::MILESTONES`].
    #[error("{0} is not a milestone threshold")]
    NotAMilestone(u64),
}

#[aggregate(category = "story", error = StoryError)]
impl Story {
    /// The story was created.
    #[event(name = "story.created")]
    fn created(
        &mut self,
        story_id: String,
        title: String,
        genre: Genre,
        author: String,
        visibility: Visibility,
        at: DateTime<Utc>,
    ) {
        self.title = title;
        self.genre = Some(genre);
        self.owner = author;
        self.visibility = Some(visibility);
        self.status = StoryStatus::Draft;
    }

    /// The owner changed the title, genre or visibility.
    #[event(name = "story.details_updated")]
    fn details_updated(
        &mut self,
        story_id: String,
        title: String,
        genre: Genre,
        visibility: Visibility,
        at: DateTime<Utc>,
    ) {
        self.title = title;
        self.genre = Some(genre);
        self.visibility = Some(visibility);
    }

    /// The story was published, with what readers saw at that moment: its title, genre and
    /// visibility. Version 1 recorded none of them; those events read as an empty title and
    /// no genre or visibility (not known to be public).
    #[event(
        name = "story.published",
        version = 2,
        upcast(from = 1, with = published_v1_to_v2)
    )]
    fn published(
        &mut self,
        story_id: String,
        title: String,
        genre: Option<Genre>,
        visibility: Option<Visibility>,
        at: DateTime<Utc>,
    ) {
        self.status = StoryStatus::Published;
    }

    /// The story was archived.
    #[event(name = "story.archived")]
    fn archived(&mut self, story_id: String, at: DateTime<Utc>) {
        self.status = StoryStatus::Archived;
    }

    /// A count (votes, reads, branches) passed a threshold.
    #[event(name = "story.milestone_reached")]
    fn milestone_reached(
        &mut self,
        story_id: String,
        owner: String,
        kind: MilestoneKind,
        threshold: u64,
        at: DateTime<Utc>,
    ) {
        self.milestones.insert((kind, threshold));
    }

    /// Whether the story exists and is not archived.
    fn open(&self) -> Result<(), StoryError> {
        match self.status {
            StoryStatus::None => Err(StoryError::NotFound),
            StoryStatus::Archived => Err(StoryError::Archived),
            _ => Ok(()),
        }
    }

    /// Creates the story.
    pub fn create(
        &self,
        story_id: &str,
        title: &str,
        genre: Genre,
        author: &str,
        visibility: Visibility,
        now: DateTime<Utc>,
    ) -> Result<Vec<StoryEvent>, StoryError> {
        if self.status != StoryStatus::None {
            return Err(StoryError::AlreadyExists);
        }
        check_title(title)?;
        Ok(vec![StoryEvent::Created {
            story_id: story_id.to_owned(),
            title: title.to_owned(),
            genre,
            author: author.to_owned(),
            visibility,
            at: now,
        }])
    }

    /// Changes title, genre and visibility (owner only).
    pub fn update_details(
        &self,
        story_id: &str,
        by: &str,
        title: &str,
        genre: Genre,
        visibility: Visibility,
        now: DateTime<Utc>,
    ) -> Result<Vec<StoryEvent>, StoryError> {
        self.open()?;
        self.owner_check(by)?;
        check_title(title)?;
        Ok(vec![StoryEvent::DetailsUpdated {
            story_id: story_id.to_owned(),
            title: title.to_owned(),
            genre,
            visibility,
            at: now,
        }])
    }

    /// Publishes the story (owner only).
    pub fn publish(
        &self,
        story_id: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<StoryEvent>, StoryError> {
        self.open()?;
        self.owner_check(by)?;
        if self.status == StoryStatus::Published {
            return Err(StoryError::AlreadyPublished);
        }
        Ok(vec![StoryEvent::Published {
            story_id: story_id.to_owned(),
            title: self.title.clone(),
            genre: self.genre,
            visibility: self.visibility,
            at: now,
        }])
    }

    /// Archives the story (owner only).
    pub fn archive(
        &self,
        story_id: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<StoryEvent>, StoryError> {
        self.open()?;
        self.owner_check(by)?;
        Ok(vec![StoryEvent::Archived {
            story_id: story_id.to_owned(),
            at: now,
        }])
    }

    /// Records that a count passed `threshold`; sent by the milestone process manager.
    pub fn reach_milestone(
        &self,
        story_id: &str,
        kind: MilestoneKind,
        threshold: u64,
        now: DateTime<Utc>,
    ) -> Result<Vec<StoryEvent>, StoryError> {
        if self.status == StoryStatus::None {
            return Err(StoryError::NotFound);
        }
        if !super::MILESTONES.contains(&threshold) {
            return Err(StoryError::NotAMilestone(threshold));
        }
        if self.milestones.contains(&(kind, threshold)) {
            return Err(StoryError::MilestoneAlreadyReached(kind, threshold));
        }
        Ok(vec![StoryEvent::MilestoneReached {
            story_id: story_id.to_owned(),
            owner: self.owner.clone(),
            kind,
            threshold,
            at: now,
        }])
    }

    fn owner_check(&self, by: &str) -> Result<(), StoryError> {
        if self.owner != by {
            return Err(StoryError::NotOwner);
        }
        Ok(())
    }
}

/// `story.published` v1 (`story_id`, `at`) to v2: what was published was not recorded.
fn published_v1_to_v2(mut v: serde_json::Value) -> serde_json::Value {
    if let Some(o) = v.as_object_mut() {
        o.entry("title").or_insert_with(|| "".into());
        o.entry("genre").or_insert(serde_json::Value::Null);
        o.entry("visibility").or_insert(serde_json::Value::Null);
    }
    v
}

fn check_title(title: &str) -> Result<(), StoryError> {
    if title.trim().is_empty() || title.chars().count() > 120 {
        return Err(StoryError::InvalidTitle);
    }
    Ok(())
}
