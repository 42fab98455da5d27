//! Engagement of one user with one target (a story or a chapter): vote, comments,
//! bookmark, reading progress.

use chrono::{DateTime, Utc};
use recount::aggregate;
use serde::{Deserialize, Serialize};

/// What a user engages with: a story, or one chapter of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Target {
    /// The story.
    pub story_id: String,
    /// The chapter, when the target is a chapter.
    pub chapter_id: Option<String>,
}

impl Target {
    /// The story itself.
    pub fn story(story_id: &str) -> Self {
        Target {
            story_id: story_id.to_owned(),
            chapter_id: None,
        }
    }

    /// A chapter of the story.
    pub fn chapter(story_id: &str, chapter_id: &str) -> Self {
        Target {
            story_id: story_id.to_owned(),
            chapter_id: Some(chapter_id.to_owned()),
        }
    }

    /// The target's own id: the chapter's, else the story's.
    pub fn id(&self) -> &str {
        self.chapter_id.as_deref().unwrap_or(&self.story_id)
    }

    /// The engagement aggregate id of `user` with this target: one stream per (user, target),
    /// so "one vote per user per target" is a property of the stream, not of a read model.
    pub fn engagement_id(&self, user_id: &str) -> String {
        format!("{}.{}", self.id(), user_id)
    }
}

/// One user's engagement with one target (stream `engagement-<target id>.<user id>`).
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Engagement {
    /// The current vote: +1 or -1.
    pub vote: Option<i8>,
    /// Comments posted.
    pub comments: u32,
    /// Whether the target is bookmarked.
    pub bookmarked: bool,
    /// Reading progress in percent.
    pub progress: u8,
}

/// Why an engagement command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngagementError {
    /// A vote other than +1 or -1.
    #[error("a vote is +1 or -1, not {0}")]
    InvalidVote(i8),
    /// Voting what is already voted.
    #[error("that vote is already cast")]
    SameVote,
    /// An empty comment or one over 2,000 characters.
    #[error("a comment has 1 to 2,000 characters")]
    InvalidComment,
    /// Bookmarking twice.
    #[error("already bookmarked")]
    AlreadyBookmarked,
    /// Progress over 100%, or not beyond what was recorded.
    #[error("reading progress {0}% is not beyond the recorded one or over 100")]
    InvalidProgress(u8),
    /// Reading progress on a story rather than a chapter.
    #[error("reading progress is recorded on a chapter")]
    NotAChapter,
}

#[aggregate(category = "engagement", error = EngagementError)]
impl Engagement {
    /// The user voted on the target for the first time.
    #[event(name = "vote.cast")]
    fn vote_cast(&mut self, user_id: String, target: Target, value: i8, at: DateTime<Utc>) {
        self.vote = Some(value);
    }

    /// The user replaced their vote.
    #[event(name = "vote.changed")]
    fn vote_changed(
        &mut self,
        user_id: String,
        target: Target,
        value: i8,
        previous: i8,
        at: DateTime<Utc>,
    ) {
        self.vote = Some(value);
    }

    /// The user commented.
    #[event(name = "comment.posted")]
    fn comment_posted(
        &mut self,
        user_id: String,
        target: Target,
        comment_id: String,
        text: String,
        at: DateTime<Utc>,
    ) {
        self.comments += 1;
    }

    /// The user bookmarked the target.
    #[event(name = "bookmark.added")]
    fn bookmark_added(&mut self, user_id: String, target: Target, at: DateTime<Utc>) {
        self.bookmarked = true;
    }

    /// The user read further into a chapter.
    #[event(name = "reading.recorded")]
    fn reading_recorded(
        &mut self,
        user_id: String,
        target: Target,
        percent: u8,
        at: DateTime<Utc>,
    ) {
        self.progress = percent;
    }

    /// Votes +1 or -1; a second vote replaces the first.
    pub fn vote(
        &self,
        user_id: &str,
        target: &Target,
        value: i8,
        now: DateTime<Utc>,
    ) -> Result<Vec<EngagementEvent>, EngagementError> {
        if value != 1 && value != -1 {
            return Err(EngagementError::InvalidVote(value));
        }
        let (user_id, target) = (user_id.to_owned(), target.clone());
        Ok(vec![match self.vote {
            None => EngagementEvent::VoteCast {
                user_id,
                target,
                value,
                at: now,
            },
            Some(previous) if previous == value => return Err(EngagementError::SameVote),
            Some(previous) => EngagementEvent::VoteChanged {
                user_id,
                target,
                value,
                previous,
                at: now,
            },
        }])
    }

    /// Posts a comment.
    pub fn comment(
        &self,
        user_id: &str,
        target: &Target,
        comment_id: &str,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<EngagementEvent>, EngagementError> {
        if text.trim().is_empty() || text.chars().count() > 2_000 {
            return Err(EngagementError::InvalidComment);
        }
        Ok(vec![EngagementEvent::CommentPosted {
            user_id: user_id.to_owned(),
            target: target.clone(),
            comment_id: comment_id.to_owned(),
            text: text.to_owned(),
            at: now,
        }])
    }

    /// Bookmarks the target.
    pub fn bookmark(
        &self,
        user_id: &str,
        target: &Target,
        now: DateTime<Utc>,
    ) -> Result<Vec<EngagementEvent>, EngagementError> {
        if self.bookmarked {
            return Err(EngagementError::AlreadyBookmarked);
        }
        Ok(vec![EngagementEvent::BookmarkAdded {
            user_id: user_id.to_owned(),
            target: target.clone(),
            at: now,
        }])
    }

    /// Records reading progress in a chapter; it only moves forward.
    pub fn record_progress(
        &self,
        user_id: &str,
        target: &Target,
        percent: u8,
        now: DateTime<Utc>,
    ) -> Result<Vec<EngagementEvent>, EngagementError> {
        if target.chapter_id.is_none() {
            return Err(EngagementError::NotAChapter);
        }
        if percent > 100 || percent <= self.progress {
            return Err(EngagementError::InvalidProgress(percent));
        }
        Ok(vec![EngagementEvent::ReadingRecorded {
            user_id: user_id.to_owned(),
            target: target.clone(),
            percent,
            at: now,
        }])
    }
}
