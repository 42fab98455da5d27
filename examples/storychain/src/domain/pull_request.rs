//! Pull requests: a proposed chapter against a chapter of a story, reviewed, then merged or
//! rejected.

use chrono::{DateTime, Utc};
use recount::aggregate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::Visibility;

/// A review's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Ready to merge.
    Approve,
    /// Needs another revision.
    RequestChanges,
}

/// Where a pull request is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrStatus {
    /// Not opened yet.
    #[default]
    None,
    /// Open for reviews.
    Open,
    /// Merged: closed.
    Merged,
    /// Rejected: closed.
    Rejected,
}

/// A pull request (stream `pr-<id>`).
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct PullRequest {
    /// Where it is.
    pub status: PrStatus,
    /// The story.
    pub story_id: String,
    /// The chapter it continues.
    pub base_chapter: String,
    /// Who proposed it.
    pub author: String,
    /// The proposed chapter's title.
    pub title: String,
    /// The proposed chapter's text.
    pub content: String,
    /// Each reviewer's latest verdict.
    pub reviews: BTreeMap<String, Verdict>,
}

/// What a pull request proposes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// The story.
    pub story_id: String,
    /// The chapter it continues.
    pub base_chapter: String,
    /// The author.
    pub author: String,
    /// The chapter's title.
    pub title: String,
    /// The chapter's text.
    pub content: String,
}

/// Why a pull-request command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PullRequestError {
    /// Opening twice.
    #[error("the pull request is already open")]
    AlreadyOpened,
    /// A command on a pull request never opened.
    #[error("the pull request does not exist")]
    NotFound,
    /// Anything on a merged or rejected pull request.
    #[error("the pull request is closed ({0:?})")]
    Closed(PrStatus),
    /// An empty title or text.
    #[error("a pull request needs a title and some text")]
    Empty,
    /// Reviewing one's own pull request.
    #[error("authors cannot review their own pull request")]
    CannotReviewOwn,
    /// Merging or rejecting without being the owner or an editor.
    #[error("only the owner and editors may merge or reject")]
    NotMaintainer,
    /// Merging without an approval, or with changes still requested.
    #[error("the pull request needs an approval and no outstanding change requests")]
    NotApproved,
}

#[aggregate(category = "pr", error = PullRequestError)]
impl PullRequest {
    /// A contributor proposed a chapter continuing `base_chapter`.
    #[event(name = "pr.opened")]
    fn opened(
        &mut self,
        pr_id: String,
        story_id: String,
        base_chapter: String,
        author: String,
        title: String,
        content: String,
        at: DateTime<Utc>,
    ) {
        self.status = PrStatus::Open;
        (self.story_id, self.base_chapter, self.author) = (story_id, base_chapter, author);
        (self.title, self.content) = (title, content);
    }

    /// Someone reviewed it.
    #[event(name = "pr.reviewed")]
    fn reviewed(
        &mut self,
        pr_id: String,
        story_id: String,
        author: String,
        reviewer: String,
        verdict: Verdict,
        comment: String,
        at: DateTime<Utc>,
    ) {
        self.reviews.insert(reviewer, verdict);
    }

    /// A maintainer merged it; the chapter `chapter_id` is to be created from it. It records
    /// the story's visibility at that moment; version 1 did not (no visibility: not known to
    /// be public).
    #[event(name = "pr.merged", version = 2, upcast(from = 1, with = merged_v1_to_v2))]
    fn merged(
        &mut self,
        pr_id: String,
        story_id: String,
        author: String,
        merged_by: String,
        chapter_id: String,
        visibility: Option<Visibility>,
        at: DateTime<Utc>,
    ) {
        self.status = PrStatus::Merged;
    }

    /// A maintainer rejected it.
    #[event(name = "pr.rejected")]
    fn rejected(
        &mut self,
        pr_id: String,
        story_id: String,
        author: String,
        rejected_by: String,
        reason: String,
        at: DateTime<Utc>,
    ) {
        self.status = PrStatus::Rejected;
    }

    fn open_check(&self) -> Result<(), PullRequestError> {
        match self.status {
            PrStatus::None => Err(PullRequestError::NotFound),
            PrStatus::Open => Ok(()),
            closed => Err(PullRequestError::Closed(closed)),
        }
    }

    /// Opens the pull request.
    pub fn open(
        &self,
        pr_id: &str,
        proposal: &Proposal,
        now: DateTime<Utc>,
    ) -> Result<Vec<PullRequestEvent>, PullRequestError> {
        if self.status != PrStatus::None {
            return Err(PullRequestError::AlreadyOpened);
        }
        if proposal.title.trim().is_empty() || proposal.content.trim().is_empty() {
            return Err(PullRequestError::Empty);
        }
        Ok(vec![PullRequestEvent::Opened {
            pr_id: pr_id.to_owned(),
            story_id: proposal.story_id.clone(),
            base_chapter: proposal.base_chapter.clone(),
            author: proposal.author.clone(),
            title: proposal.title.clone(),
            content: proposal.content.clone(),
            at: now,
        }])
    }

    /// `reviewer` reviews it.
    pub fn review(
        &self,
        pr_id: &str,
        reviewer: &str,
        verdict: Verdict,
        comment: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<PullRequestEvent>, PullRequestError> {
        self.open_check()?;
        if reviewer == self.author {
            return Err(PullRequestError::CannotReviewOwn);
        }
        Ok(vec![PullRequestEvent::Reviewed {
            pr_id: pr_id.to_owned(),
            story_id: self.story_id.clone(),
            author: self.author.clone(),
            reviewer: reviewer.to_owned(),
            verdict,
            comment: comment.to_owned(),
            at: now,
        }])
    }

    /// A maintainer merges it as chapter `chapter_id` of a story with `visibility`.
    pub fn merge(
        &self,
        pr_id: &str,
        by: &str,
        is_maintainer: bool,
        chapter_id: &str,
        visibility: Visibility,
        now: DateTime<Utc>,
    ) -> Result<Vec<PullRequestEvent>, PullRequestError> {
        self.open_check()?;
        if !is_maintainer {
            return Err(PullRequestError::NotMaintainer);
        }
        let approved = self.reviews.values().any(|v| *v == Verdict::Approve);
        let blocked = self.reviews.values().any(|v| *v == Verdict::RequestChanges);
        if !approved || blocked {
            return Err(PullRequestError::NotApproved);
        }
        Ok(vec![PullRequestEvent::Merged {
            pr_id: pr_id.to_owned(),
            story_id: self.story_id.clone(),
            author: self.author.clone(),
            merged_by: by.to_owned(),
            chapter_id: chapter_id.to_owned(),
            visibility: Some(visibility),
            at: now,
        }])
    }

    /// A maintainer rejects it.
    pub fn reject(
        &self,
        pr_id: &str,
        by: &str,
        is_maintainer: bool,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<PullRequestEvent>, PullRequestError> {
        self.open_check()?;
        if !is_maintainer {
            return Err(PullRequestError::NotMaintainer);
        }
        Ok(vec![PullRequestEvent::Rejected {
            pr_id: pr_id.to_owned(),
            story_id: self.story_id.clone(),
            author: self.author.clone(),
            rejected_by: by.to_owned(),
            reason: reason.to_owned(),
            at: now,
        }])
    }
}

/// `pr.merged` v1 to v2: the story's visibility was not recorded.
fn merged_v1_to_v2(mut v: serde_json::Value) -> serde_json::Value {
    if let Some(o) = v.as_object_mut() {
        o.entry("visibility").or_insert(serde_json::Value::Null);
    }
    v
}
