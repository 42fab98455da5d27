//! Process managers: what happens because something happened.
//!
//! Each runs on a [`Process`](recount::projection::Process) consumer, which hands it a
//! [`Steps`] per triggering event: every command carries the trigger's correlation id, has the
//! trigger as causation id, and a command id derived from the trigger and the step, so a
//! restarted manager re-sending a step is recognised. Commands use the trigger's own time as
//! `now`, so a re-sent step decides exactly the same events.

use crate::app::{exec, StoryChain};
use crate::domain::{
    ChapterAccess, ChapterError, EngagementEvent, InboxError, MilestoneKind, NewChapter,
    PullRequestEvent, StoryError, StoryStatus, UserError, MILESTONES,
};
use crate::readmodel::ReadModels;
use crate::readmodel::MERGED_PR_XP;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use recount::projection::{ProcessManager, Steps};
use recount::{BoxError, CommandContext, CommandError, LogFilter, RecordedEvent};

/// Treats "already done" rejections as success: a re-sent step after a restart finds its
/// effect in place. Any other rejection is returned for the caller to handle.
fn done_or<E>(
    r: Result<crate::app::Written, CommandError<E>>,
    already: impl Fn(&E) -> bool,
) -> Result<Option<E>, BoxError>
where
    E: std::error::Error + Send + Sync + 'static,
{
    match r {
        Ok(_) => Ok(None),
        Err(CommandError::Rejected(e)) if already(&e) => Ok(None),
        Err(CommandError::Rejected(e)) => Ok(Some(e)),
        Err(CommandError::Store(e)) => Err(e.into()),
    }
}

/// On `pr.merged`: the chapter is created on the story, the author is credited XP, the story's
/// owner (and the author) are notified.
#[derive(Debug, Clone)]
pub struct MergeManager {
    app: StoryChain,
}

impl MergeManager {
    /// The manager, sending commands through `app`'s repositories.
    pub fn new(app: StoryChain) -> Self {
        MergeManager { app }
    }

    async fn notify(
        &self,
        ctx: &CommandContext,
        user: &str,
        message: &str,
        key: &str,
        at: DateTime<Utc>,
    ) -> Result<(), BoxError> {
        let r = exec(&self.app.inboxes, user, ctx, |i| {
            i.notify(user, "pr_merged", message, key, at)
        })
        .await;
        done_or(r, |e| matches!(e, InboxError::AlreadySent(_)))?;
        Ok(())
    }
}

#[async_trait]
impl ProcessManager for MergeManager {
    type State = ();

    fn name(&self) -> &str {
        "pr-merge"
    }

    fn filter(&self) -> LogFilter {
        LogFilter::all().event_type("pr.merged")
    }

    async fn handle(
        &self,
        _: &mut (),
        event: &RecordedEvent,
        steps: &mut Steps,
    ) -> Result<(), BoxError> {
        let PullRequestEvent::Merged {
            pr_id,
            story_id,
            author,
            merged_by,
            chapter_id,
            at,
            ..
        } = event.decode()?
        else {
            return Ok(());
        };
        let pr = self.app.pull_request(&pr_id).await?;
        let story = self.app.story(&story_id).await?;
        let merger = self.app.user(&merged_by).await?.username;
        let chapter = NewChapter {
            chapter_id,
            author: author.clone(),
            title: pr.title.clone(),
            content: pr.content,
            parent: Some(pr.base_chapter),
        };
        // A merged pull request may write in a private story: the maintainer's merge is the permission.
        let access = ChapterAccess {
            story_open: matches!(story.status, StoryStatus::Draft | StoryStatus::Published),
            may_write: true,
        };
        let key = format!("pr-merged:{pr_id}");
        let r = exec(&self.app.chapters, &story_id, &steps.next_step(), |t| {
            t.create(&story_id, access, &chapter, at)
        })
        .await;
        if let Some(refused) = done_or(r, |e| matches!(e, ChapterError::ChapterExists(_)))? {
            // The story closed between merge and chapter: tell the owner, credit nothing.
            let message = format!(
                "The merge of “{}” could not add its chapter: {refused}",
                pr.title
            );
            return self
                .notify(&steps.named("refused"), &story.owner, &message, &key, at)
                .await;
        }
        let r = exec(&self.app.users, &author, &steps.next_step(), |u| {
            u.credit_xp(&author, MERGED_PR_XP, "pull request merged", &key, at)
        })
        .await;
        done_or(r, |e| matches!(e, UserError::AlreadyCredited(_)))?;
        let message = format!("{merger} merged “{}” into “{}”", pr.title, story.title);
        self.notify(&steps.next_step(), &story.owner, &message, &key, at)
            .await?;
        if author != story.owner {
            self.notify(&steps.next_step(), &author, &message, &key, at)
                .await?;
        }
        Ok(())
    }
}

/// Records a milestone on a story when its net votes, reads or branches reach 10, 100 or
/// 1,000.
///
/// It keeps no state of its own: a [`Process`](recount::projection::Process) consumer saves a
/// manager's whole state with its checkpoint after every batch, so a count per story would
/// cost O(stories) per batch. It reads the counts from the catalogue instead (brought up to date before it runs),
/// and the story itself refuses a milestone recorded twice, so a late or repeated look is
/// harmless.
#[derive(Debug)]
pub struct MilestoneManager {
    app: StoryChain,
    models: ReadModels,
}

impl MilestoneManager {
    /// The manager, sending commands through `app`'s repositories.
    pub async fn new(app: StoryChain) -> Result<Self, recount::Error> {
        let models = ReadModels::open(app.store()).await?;
        Ok(MilestoneManager { app, models })
    }
}

#[async_trait]
impl ProcessManager for MilestoneManager {
    type State = ();

    fn name(&self) -> &str {
        "milestones"
    }

    fn filter(&self) -> LogFilter {
        [
            "vote.cast",
            "vote.changed",
            "reading.recorded",
            "chapter.branched",
        ]
        .into_iter()
        .fold(LogFilter::all(), LogFilter::event_type)
    }

    async fn handle(
        &self,
        _: &mut (),
        event: &RecordedEvent,
        steps: &mut Steps,
    ) -> Result<(), BoxError> {
        let (story_id, at) = match event.stream.category() {
            "chapter" => match event.decode()? {
                crate::domain::ChapterTreeEvent::Branched { story_id, at, .. } => (story_id, at),
                _ => return Ok(()),
            },
            _ => match event.decode()? {
                EngagementEvent::VoteCast { target, at, .. }
                | EngagementEvent::VoteChanged { target, at, .. }
                | EngagementEvent::ReadingRecorded { target, at, .. } => (target.story_id, at),
                _ => return Ok(()),
            },
        };
        let counts = self.models.story_counts(&story_id).await?;
        let Some(counts) = counts.filter(|c| c.iter().any(|n| *n >= MILESTONES[0] as i64)) else {
            return Ok(());
        };
        let story = self.app.story(&story_id).await?;
        let kinds = [
            MilestoneKind::Votes,
            MilestoneKind::Reads,
            MilestoneKind::Branches,
        ];
        for (kind, count) in kinds.into_iter().zip(counts) {
            for threshold in MILESTONES
                .into_iter()
                .filter(|t| count >= *t as i64 && !story.milestones.contains(&(kind, *t)))
            {
                let ctx = steps.named(&format!("{kind:?}-{threshold}"));
                let r = exec(&self.app.stories, &story_id, &ctx, |s| {
                    s.reach_milestone(&story_id, kind, threshold, at)
                })
                .await;
                done_or(r, |e| {
                    matches!(
                        e,
                        StoryError::MilestoneAlreadyReached(..) | StoryError::NotFound
                    )
                })?;
            }
        }
        Ok(())
    }
}

/// Records level-ups and badges as events (`user.leveled_up`, `user.badge_earned`), so other
/// consumers (and other services) can react to them.
///
/// The XP and badge rules live in one place, the profiles model (`readmodel::progress`): on
/// each event that changes XP or a counter, the manager waits until the profiles model has
/// applied that event, reads the users it concerns (the actor, or the author of what was voted
/// on), and records what the model shows and the user's stream does not have yet. The user
/// aggregate refuses a level or badge recorded twice, so a repeated look is harmless. Like the
/// milestones manager it keeps no state of its own.
#[derive(Debug)]
pub struct AwardsManager {
    app: StoryChain,
    models: ReadModels,
    /// Where the profiles model's checkpoint was last seen.
    profiles_seen: std::sync::Mutex<Option<recount::Cursor>>,
}

/// How long the awards manager waits for the profiles model to apply an event before it
/// gives the event back to its runner to try again.
const PROFILES_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl AwardsManager {
    /// The manager, sending commands through `app`'s repositories.
    pub async fn new(app: StoryChain) -> Result<Self, recount::Error> {
        let models = ReadModels::open(app.store()).await?;
        Ok(AwardsManager {
            app,
            models,
            profiles_seen: std::sync::Mutex::new(None),
        })
    }

    /// Waits until the profiles model has applied `event`. The model's checkpoint only moves
    /// forward: once seen past an event, it is not read again for earlier ones.
    async fn profiles_at(&self, event: &RecordedEvent) -> Result<(), BoxError> {
        let seen = *self.profiles_seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.is_some_and(|at| at >= event.cursor) {
            return Ok(());
        }
        let store = self.app.store();
        if crate::readmodel::reached(store, &["profiles"], event.cursor, PROFILES_WAIT).await? {
            let at = crate::readmodel::position(store, "profiles").await?;
            *self.profiles_seen.lock().unwrap_or_else(|p| p.into_inner()) = at;
            return Ok(());
        }
        Err(recount::Error::retriable(format!(
            "the profiles model has not reached {} yet",
            event.cursor
        ))
        .into())
    }

    /// The users whose XP or counters `event` changed.
    async fn concerned(&self, event: &RecordedEvent) -> Result<Vec<String>, BoxError> {
        use crate::domain::{ChapterTreeEvent, StoryEvent, UserEvent};
        Ok(match event.stream.category() {
            "story" => match event.decode()? {
                StoryEvent::Created { author, .. } => vec![author],
                _ => vec![],
            },
            "chapter" => match event.decode()? {
                ChapterTreeEvent::Created { author, .. }
                | ChapterTreeEvent::Branched { author, .. } => vec![author],
                _ => vec![],
            },
            "user" => match event.decode()? {
                UserEvent::XpCredited { user_id, .. } => vec![user_id],
                UserEvent::Followed { followee, .. } => vec![followee],
                _ => vec![],
            },
            "engagement" => match event.decode()? {
                EngagementEvent::VoteCast { target, .. }
                | EngagementEvent::VoteChanged { target, .. } => self
                    .models
                    .author_of(target.id())
                    .await?
                    .into_iter()
                    .collect(),
                _ => vec![],
            },
            _ => vec![],
        })
    }
}

#[async_trait]
impl ProcessManager for AwardsManager {
    type State = ();

    fn name(&self) -> &str {
        "awards"
    }

    fn filter(&self) -> LogFilter {
        [
            "story.created",
            "chapter.created",
            "chapter.branched",
            "user.xp_credited",
            "user.followed",
            "vote.cast",
            "vote.changed",
        ]
        .into_iter()
        .fold(LogFilter::all(), LogFilter::event_type)
    }

    async fn handle(
        &self,
        _: &mut (),
        event: &RecordedEvent,
        steps: &mut Steps,
    ) -> Result<(), BoxError> {
        let users = self.concerned(event).await?;
        if users.is_empty() {
            return Ok(());
        }
        self.profiles_at(event).await?;
        let at = event.recorded_at;
        for user_id in users {
            let shown = self.models.level_and_badges(&user_id).await?;
            let Some((level, badges)) = shown else {
                continue;
            };
            let recorded = self.app.user(&user_id).await?;
            let level = u32::try_from(level).unwrap_or(0);
            if level > recorded.level.max(1) {
                let ctx = steps.named(&format!("{user_id}-level-{level}"));
                let r = exec(&self.app.users, &user_id, &ctx, |u| {
                    u.reach_level(&user_id, level, at)
                })
                .await;
                done_or(r, |e| matches!(e, UserError::LevelAlreadyReached(_)))?;
            }
            for badge in badges.iter().filter(|b| !recorded.badges.contains(*b)) {
                let ctx = steps.named(&format!("{user_id}-badge-{badge}"));
                let r = exec(&self.app.users, &user_id, &ctx, |u| {
                    u.earn_badge(&user_id, badge, at)
                })
                .await;
                done_or(r, |e| matches!(e, UserError::BadgeAlreadyEarned(_)))?;
            }
        }
        Ok(())
    }
}
