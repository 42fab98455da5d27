//! Chapters, pull requests and engagement.

use super::{by, exec, AppError, StoryChain, Written};
use crate::domain::{
    ChapterAccess, NewChapter, Proposal, Role, Story, StoryStatus, Target, Verdict, Visibility,
};
use chrono::Utc;
use uuid::Uuid;

impl StoryChain {
    /// `author` adds a chapter to a story: its first (no parent) or a continuation of `parent`
    /// (a branch when the parent already has one). Returns the chapter's id.
    pub async fn add_chapter(
        &self,
        story_id: &str,
        author: &str,
        title: &str,
        content: &str,
        parent: Option<&str>,
    ) -> Result<Written, AppError> {
        let access = self.chapter_access(story_id, author).await?;
        let chapter = NewChapter {
            chapter_id: Uuid::now_v7().to_string(),
            author: author.to_owned(),
            title: title.to_owned(),
            content: content.to_owned(),
            parent: parent.map(str::to_owned),
        };
        let now = Utc::now();
        let written = exec(&self.chapters, story_id, &by(author), |t| {
            t.create(story_id, access, &chapter, now)
        })
        .await?;
        Ok(written.with_id(chapter.chapter_id))
    }

    /// What the chapter tree needs to know about the story and `author`. Read before the
    /// command, so a collaborator removed at this very moment may still write once: the
    /// collaboration and the tree are separate streams (documented in the README).
    async fn chapter_access(
        &self,
        story_id: &str,
        author: &str,
    ) -> Result<ChapterAccess, AppError> {
        let story = self.story(story_id).await?;
        let story_open = matches!(story.status, StoryStatus::Draft | StoryStatus::Published);
        let may_write = story.visibility == Some(Visibility::Public)
            || self.role_of(&story, story_id, author).await?.is_some();
        Ok(ChapterAccess {
            story_open,
            may_write,
        })
    }

    /// The author edits a chapter.
    pub async fn edit_chapter(
        &self,
        story_id: &str,
        chapter_id: &str,
        author: &str,
        title: &str,
        content: &str,
    ) -> Result<Written, AppError> {
        let now = Utc::now();
        let ctx = by(author);
        Ok(exec(&self.chapters, story_id, &ctx, |t| {
            t.edit(story_id, chapter_id, author, title, content, now)
        })
        .await?)
    }

    /// The author publishes a chapter.
    pub async fn publish_chapter(
        &self,
        story_id: &str,
        chapter_id: &str,
        author: &str,
    ) -> Result<Written, AppError> {
        let visibility = self.visibility_of(story_id).await?;
        let now = Utc::now();
        Ok(exec(&self.chapters, story_id, &by(author), |t| {
            t.publish(story_id, chapter_id, author, visibility, now)
        })
        .await?)
    }

    /// `author` proposes a chapter continuing `base_chapter`. Returns the pull request's id.
    pub async fn open_pr(
        &self,
        story_id: &str,
        base_chapter: &str,
        author: &str,
        title: &str,
        content: &str,
    ) -> Result<Written, AppError> {
        self.existing_story(story_id).await?;
        if !self
            .chapter_tree(story_id)
            .await?
            .chapters
            .contains_key(base_chapter)
        {
            return Err(AppError::NotFound("chapter"));
        }
        let proposal = Proposal {
            story_id: story_id.to_owned(),
            base_chapter: base_chapter.to_owned(),
            author: author.to_owned(),
            title: title.to_owned(),
            content: content.to_owned(),
        };
        let id = Uuid::now_v7().to_string();
        let now = Utc::now();
        Ok(exec(&self.prs, &id, &by(author), |p| p.open(&id, &proposal, now)).await?)
    }

    /// `reviewer` reviews a pull request.
    pub async fn review_pr(
        &self,
        pr_id: &str,
        reviewer: &str,
        verdict: Verdict,
        comment: &str,
    ) -> Result<Written, AppError> {
        let now = Utc::now();
        Ok(exec(&self.prs, pr_id, &by(reviewer), |p| {
            p.review(pr_id, reviewer, verdict, comment, now)
        })
        .await?)
    }

    /// A maintainer (owner or editor) merges a pull request. The chapter itself is created by
    /// the merge process manager, in the same correlation.
    pub async fn merge_pr(&self, pr_id: &str, by_user: &str) -> Result<Written, AppError> {
        let (maintainer, story) = self.maintainer_of(pr_id, by_user).await?;
        let visibility = story.visibility.unwrap_or(Visibility::Private);
        let chapter_id = Uuid::now_v7().to_string();
        let now = Utc::now();
        Ok(exec(&self.prs, pr_id, &by(by_user), |p| {
            p.merge(pr_id, by_user, maintainer, &chapter_id, visibility, now)
        })
        .await?)
    }

    /// A maintainer rejects a pull request.
    pub async fn reject_pr(
        &self,
        pr_id: &str,
        by_user: &str,
        reason: &str,
    ) -> Result<Written, AppError> {
        let (maintainer, _) = self.maintainer_of(pr_id, by_user).await?;
        let now = Utc::now();
        Ok(exec(&self.prs, pr_id, &by(by_user), |p| {
            p.reject(pr_id, by_user, maintainer, reason, now)
        })
        .await?)
    }

    /// The story's visibility, as events that leave the service record it (a story that is
    /// not there counts as private).
    async fn visibility_of(&self, story_id: &str) -> Result<Visibility, AppError> {
        Ok(self
            .story(story_id)
            .await?
            .visibility
            .unwrap_or(Visibility::Private))
    }

    /// Whether `user_id` may merge or reject the pull request, and its story.
    async fn maintainer_of(&self, pr_id: &str, user_id: &str) -> Result<(bool, Story), AppError> {
        let pr = self.pull_request(pr_id).await?;
        if pr.story_id.is_empty() {
            return Err(AppError::NotFound("pull request"));
        }
        let story = self.story(&pr.story_id).await?;
        let role = self.role_of(&story, &pr.story_id, user_id).await?;
        Ok((matches!(role, Some(Role::Owner | Role::Editor)), story))
    }

    /// `user_id` votes +1 or -1 on a story or chapter; voting again replaces the vote.
    pub async fn vote(
        &self,
        user_id: &str,
        target: &Target,
        value: i8,
    ) -> Result<Written, AppError> {
        let now = Utc::now();
        let id = target.engagement_id(user_id);
        Ok(exec(&self.engagements, &id, &by(user_id), |e| {
            e.vote(user_id, target, value, now)
        })
        .await?)
    }

    /// `user_id` comments on a story or chapter.
    pub async fn comment(
        &self,
        user_id: &str,
        target: &Target,
        text: &str,
    ) -> Result<Written, AppError> {
        let now = Utc::now();
        let id = target.engagement_id(user_id);
        let comment_id = Uuid::now_v7().to_string();
        Ok(exec(&self.engagements, &id, &by(user_id), |e| {
            e.comment(user_id, target, &comment_id, text, now)
        })
        .await?)
    }

    /// `user_id` bookmarks a story or chapter.
    pub async fn bookmark(&self, user_id: &str, target: &Target) -> Result<Written, AppError> {
        let now = Utc::now();
        let id = target.engagement_id(user_id);
        Ok(exec(&self.engagements, &id, &by(user_id), |e| {
            e.bookmark(user_id, target, now)
        })
        .await?)
    }

    /// `user_id` read `percent` of a chapter.
    pub async fn read(
        &self,
        user_id: &str,
        target: &Target,
        percent: u8,
    ) -> Result<Written, AppError> {
        let now = Utc::now();
        let id = target.engagement_id(user_id);
        Ok(exec(&self.engagements, &id, &by(user_id), |e| {
            e.record_progress(user_id, target, percent, now)
        })
        .await?)
    }
}
