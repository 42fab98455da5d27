//! XP, levels and badges: the rules, and the tables that keep them (shared by the profile
//! and inbox models, each on its own tables).

use super::{ddl, run};
use crate::domain::{ChapterTreeEvent, EngagementEvent, StoryEvent, UserEvent};
use recount::sql::SqlTx;
use recount::{Error, RecordedEvent};

/// XP for creating a story.
pub const STORY_XP: i64 = 50;
/// XP for writing a chapter.
pub const CHAPTER_XP: i64 = 20;
/// Extra XP when the chapter is a branch (an alternative continuation).
pub const BRANCH_XP: i64 = 30;
/// XP credited by the merge process manager for a merged pull request.
pub const MERGED_PR_XP: u32 = 100;
/// XP per up-vote received on one's story or chapter (self-votes earn nothing).
pub const UPVOTE_XP: i64 = 5;

/// The level for `xp`: the largest L with 50·L·(L−1) ≤ xp (L1 at 0, L2 at 100, L3 at 300,
/// L4 at 600, L5 at 1,000, …).
pub fn level_for(xp: i64) -> i64 {
    let mut level = 1;
    while 50 * (level + 1) * level <= xp {
        level += 1;
    }
    level
}

/// A badge: its name, the counter it watches and the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Badge {
    /// Its name.
    pub name: &'static str,
    /// The counter column it watches.
    pub counter: &'static str,
    /// The count that earns it.
    pub threshold: i64,
}

/// Every badge. Badges are earned once and never lost.
pub const BADGES: [Badge; 7] = [
    Badge {
        name: "first-story",
        counter: "stories",
        threshold: 1,
    },
    Badge {
        name: "first-chapter",
        counter: "chapters",
        threshold: 1,
    },
    Badge {
        name: "first-branch",
        counter: "branches",
        threshold: 1,
    },
    Badge {
        name: "ten-branches",
        counter: "branches",
        threshold: 10,
    },
    Badge {
        name: "first-merged-pr",
        counter: "merged_prs",
        threshold: 1,
    },
    Badge {
        name: "crowd-favourite",
        counter: "upvotes",
        threshold: 10,
    },
    Badge {
        name: "popular",
        counter: "followers",
        threshold: 10,
    },
];

/// Something a user earned with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Award {
    /// Reached a new level.
    LevelUp {
        /// Who.
        user_id: String,
        /// The new level.
        level: i64,
    },
    /// Earned a badge.
    Badge {
        /// Who.
        user_id: String,
        /// Which.
        badge: &'static str,
    },
}

/// The event types that change XP, counters or names.
pub(crate) const EVENT_TYPES: [&str; 10] = [
    "user.registered",
    "user.profile_updated",
    "user.followed",
    "user.unfollowed",
    "user.xp_credited",
    "story.created",
    "chapter.created",
    "chapter.branched",
    "vote.cast",
    "vote.changed",
];

/// The progress tables under one prefix.
#[derive(Debug)]
pub(crate) struct Progress {
    prefix: String,
}

impl Progress {
    pub(crate) fn new(prefix: String) -> Self {
        Progress { prefix }
    }

    pub(crate) fn setup(&self, tx: &mut dyn SqlTx) -> Result<(), Error> {
        let p = &self.prefix;
        ddl(tx, &format!(
            "CREATE TABLE IF NOT EXISTS {p}_users (user_id TEXT PRIMARY KEY, username TEXT NOT NULL DEFAULT '',
                display_name TEXT NOT NULL DEFAULT '', xp BIGINT NOT NULL DEFAULT 0, level BIGINT NOT NULL DEFAULT 1,
                stories BIGINT NOT NULL DEFAULT 0, chapters BIGINT NOT NULL DEFAULT 0, branches BIGINT NOT NULL DEFAULT 0,
                merged_prs BIGINT NOT NULL DEFAULT 0, upvotes BIGINT NOT NULL DEFAULT 0, followers BIGINT NOT NULL DEFAULT 0,
                following BIGINT NOT NULL DEFAULT 0);
             CREATE TABLE IF NOT EXISTS {p}_badges (user_id TEXT NOT NULL, badge TEXT NOT NULL, PRIMARY KEY (user_id, badge));
             CREATE TABLE IF NOT EXISTS {p}_authors (target TEXT PRIMARY KEY, author TEXT NOT NULL);"
        ))
    }

    pub(crate) fn drop_tables(&self, tx: &mut dyn SqlTx) -> Result<(), Error> {
        let p = &self.prefix;
        ddl(tx, &format!("DROP TABLE IF EXISTS {p}_users; DROP TABLE IF EXISTS {p}_badges; DROP TABLE IF EXISTS {p}_authors;"))
    }

    /// Applies one event; returns what it earned.
    pub(crate) fn apply(&self, tx: &mut dyn SqlTx, e: &RecordedEvent) -> Result<Vec<Award>, Error> {
        match e.stream.category() {
            "user" => self.user_event(tx, super::decode(e)?),
            "story" => match super::decode(e)? {
                StoryEvent::Created {
                    story_id, author, ..
                } => {
                    self.author(tx, &story_id, &author)?;
                    self.credit(tx, &author, STORY_XP, "stories", 1)
                }
                _ => Ok(Vec::new()),
            },
            "chapter" => match super::decode(e)? {
                ChapterTreeEvent::Created {
                    chapter_id, author, ..
                } => {
                    self.author(tx, &chapter_id, &author)?;
                    self.credit(tx, &author, CHAPTER_XP, "chapters", 1)
                }
                ChapterTreeEvent::Branched { author, .. } => {
                    self.credit(tx, &author, BRANCH_XP, "branches", 1)
                }
                _ => Ok(Vec::new()),
            },
            "engagement" => match super::decode(e)? {
                EngagementEvent::VoteCast {
                    user_id,
                    target,
                    value,
                    ..
                } => self.upvote(tx, &user_id, target.id(), 0, value),
                EngagementEvent::VoteChanged {
                    user_id,
                    target,
                    value,
                    previous,
                    ..
                } => self.upvote(tx, &user_id, target.id(), previous, value),
                _ => Ok(Vec::new()),
            },
            _ => Ok(Vec::new()),
        }
    }

    fn user_event(&self, tx: &mut dyn SqlTx, event: UserEvent) -> Result<Vec<Award>, Error> {
        let p = &self.prefix;
        match event {
            UserEvent::Registered {
                user_id,
                username,
                display_name,
                ..
            } => {
                let sql = format!("INSERT INTO {p}_users (user_id, username, display_name) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING");
                run(tx, &sql, (&user_id, &username, &display_name))?;
                Ok(Vec::new())
            }
            UserEvent::ProfileUpdated {
                user_id,
                display_name,
                ..
            } => {
                run(
                    tx,
                    &format!("UPDATE {p}_users SET display_name = $2 WHERE user_id = $1"),
                    (&user_id, &display_name),
                )?;
                Ok(Vec::new())
            }
            UserEvent::Followed {
                user_id, followee, ..
            } => {
                self.count(tx, &user_id, "following", 1)?;
                self.credit(tx, &followee, 0, "followers", 1)
            }
            UserEvent::Unfollowed {
                user_id, followee, ..
            } => {
                self.count(tx, &user_id, "following", -1)?;
                self.count(tx, &followee, "followers", -1)?;
                Ok(Vec::new())
            }
            UserEvent::XpCredited {
                user_id, amount, ..
            } => self.credit(tx, &user_id, i64::from(amount), "merged_prs", 1),
            // A token's hash is nobody's business but the API's.
            UserEvent::TokenIssued { .. } => Ok(Vec::new()),
            // Recorded from what this model decides: nothing to count again.
            UserEvent::LeveledUp { .. } | UserEvent::BadgeEarned { .. } => Ok(Vec::new()),
        }
    }

    fn author(&self, tx: &mut dyn SqlTx, target: &str, author: &str) -> Result<(), Error> {
        let sql = format!(
            "INSERT INTO {}_authors (target, author) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            self.prefix
        );
        run(tx, &sql, (target, author)).map(drop)
    }

    /// An up-vote counts when a vote becomes +1 and is taken back when a +1 changes.
    fn upvote(
        &self,
        tx: &mut dyn SqlTx,
        voter: &str,
        target: &str,
        previous: i8,
        value: i8,
    ) -> Result<Vec<Award>, Error> {
        let delta = i64::from(value.max(0)) - i64::from(previous.max(0));
        let sql = format!(
            "SELECT author FROM {}_authors WHERE target = $1",
            self.prefix
        );
        let author: Option<String> = tx.row(&sql, [target])?.map(|r| r.get(0)).transpose()?;
        match author {
            Some(author) if delta != 0 && author != voter => {
                self.credit(tx, &author, UPVOTE_XP * delta, "upvotes", delta)
            }
            _ => Ok(Vec::new()),
        }
    }

    fn count(
        &self,
        tx: &mut dyn SqlTx,
        user: &str,
        counter: &str,
        delta: i64,
    ) -> Result<(), Error> {
        let sql = format!(
            "UPDATE {}_users SET {counter} = {counter} + $2 WHERE user_id = $1",
            self.prefix
        );
        run(tx, &sql, (user, delta)).map(drop)
    }

    /// Adds XP and a counter, then awards a level-up (levels never go down) and badges.
    fn credit(
        &self,
        tx: &mut dyn SqlTx,
        user: &str,
        xp: i64,
        counter: &str,
        delta: i64,
    ) -> Result<Vec<Award>, Error> {
        let p = &self.prefix;
        let sql = format!(
            "UPDATE {p}_users SET xp = xp + $2, {counter} = {counter} + $3 WHERE user_id = $1 RETURNING xp, level, {counter}"
        );
        let row: Option<(i64, i64, i64)> = tx
            .row(&sql, (user, xp, delta))?
            .map(|r| Ok::<_, Error>((r.get(0)?, r.get(1)?, r.get(2)?)))
            .transpose()?;
        let Some((xp, level, count)) = row else {
            return Ok(Vec::new());
        };
        let mut awards = Vec::new();
        let new_level = level_for(xp);
        if new_level > level {
            run(
                tx,
                &format!("UPDATE {p}_users SET level = $2 WHERE user_id = $1"),
                (user, new_level),
            )?;
            awards.push(Award::LevelUp {
                user_id: user.to_owned(),
                level: new_level,
            });
        }
        for badge in BADGES
            .iter()
            .filter(|b| b.counter == counter && count >= b.threshold)
        {
            let sql = format!(
                "INSERT INTO {p}_badges (user_id, badge) VALUES ($1, $2) ON CONFLICT DO NOTHING"
            );
            if run(tx, &sql, (user, badge.name))? == 1 {
                awards.push(Award::Badge {
                    user_id: user.to_owned(),
                    badge: badge.name,
                });
            }
        }
        Ok(awards)
    }
}
