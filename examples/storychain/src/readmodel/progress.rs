//! XP, levels and badges: the rules, and the tables of the profiles model that keep them.

use super::{ddl, Keyed};
use crate::domain::{ChapterTreeEvent, EngagementEvent, StoryEvent, UserEvent};
use recount::sql::{SqlRow, SqlTx, SqlValue};
use recount::{Error, RecordedEvent};
use std::collections::HashSet;

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

/// The counters of a profile, in column order.
const COUNTERS: [&str; 7] = [
    "stories",
    "chapters",
    "branches",
    "merged_prs",
    "upvotes",
    "followers",
    "following",
];

const USER_COLUMNS: [&str; 12] = [
    "user_id",
    "username",
    "display_name",
    "xp",
    "level",
    "stories",
    "chapters",
    "branches",
    "merged_prs",
    "upvotes",
    "followers",
    "following",
];

fn counter(name: &str) -> usize {
    COUNTERS.iter().position(|c| *c == name).unwrap_or(0)
}

/// A user's row.
#[derive(Debug, Clone)]
struct Profile {
    username: String,
    display_name: String,
    xp: i64,
    level: i64,
    counts: [i64; 7],
}

impl Profile {
    fn from_row(r: &SqlRow) -> Result<(String, Profile), Error> {
        let mut counts = [0; 7];
        for (i, c) in counts.iter_mut().enumerate() {
            *c = r.get(5 + i)?;
        }
        Ok((
            r.get(0)?,
            Profile {
                username: r.get(1)?,
                display_name: r.get(2)?,
                xp: r.get(3)?,
                level: r.get(4)?,
                counts,
            },
        ))
    }

    fn values<'a>(&'a self, id: &'a str) -> Vec<SqlValue<'a>> {
        let mut v: Vec<SqlValue<'a>> = vec![
            id.into(),
            (&self.username).into(),
            (&self.display_name).into(),
            self.xp.into(),
            self.level.into(),
        ];
        v.extend(self.counts.iter().map(|c| SqlValue::from(*c)));
        v
    }
}

/// What an event does to profiles, decoded once per batch.
enum Op {
    Register(String, String, String),
    Display(String, String),
    Count(String, &'static str, i64),
    Credit(String, i64, &'static str, i64),
    Author(String, String),
    Upvote {
        voter: String,
        target: String,
        previous: i8,
        value: i8,
    },
}

/// The progress tables under one prefix.
#[derive(Debug)]
pub(crate) struct Progress {
    prefix: String,
}

/// The batch's view of the tables.
struct Batch {
    users: Keyed<Profile>,
    authors: Keyed<String>,
    badges: HashSet<(String, &'static str)>,
    new_badges: Vec<(String, &'static str)>,
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

    fn ops(e: &RecordedEvent, out: &mut Vec<Op>) -> Result<(), Error> {
        match e.stream.category() {
            "user" => match e.decode()? {
                UserEvent::Registered {
                    user_id,
                    username,
                    display_name,
                    ..
                } => out.push(Op::Register(user_id, username, display_name)),
                UserEvent::ProfileUpdated {
                    user_id,
                    display_name,
                    ..
                } => out.push(Op::Display(user_id, display_name)),
                UserEvent::Followed {
                    user_id, followee, ..
                } => {
                    out.push(Op::Count(user_id, "following", 1));
                    out.push(Op::Credit(followee, 0, "followers", 1));
                }
                UserEvent::Unfollowed {
                    user_id, followee, ..
                } => {
                    out.push(Op::Count(user_id, "following", -1));
                    out.push(Op::Count(followee, "followers", -1));
                }
                UserEvent::XpCredited {
                    user_id, amount, ..
                } => out.push(Op::Credit(user_id, i64::from(amount), "merged_prs", 1)),
                // A token's hash is nobody's business but the API's; levels and badges are
                // recorded from what this model decides: nothing to count again.
                UserEvent::TokenIssued { .. }
                | UserEvent::LeveledUp { .. }
                | UserEvent::BadgeEarned { .. } => {}
            },
            "story" => {
                if let StoryEvent::Created {
                    story_id, author, ..
                } = e.decode()?
                {
                    out.push(Op::Author(story_id, author.clone()));
                    out.push(Op::Credit(author, STORY_XP, "stories", 1));
                }
            }
            "chapter" => match e.decode()? {
                ChapterTreeEvent::Created {
                    chapter_id, author, ..
                } => {
                    out.push(Op::Author(chapter_id, author.clone()));
                    out.push(Op::Credit(author, CHAPTER_XP, "chapters", 1));
                }
                ChapterTreeEvent::Branched { author, .. } => {
                    out.push(Op::Credit(author, BRANCH_XP, "branches", 1))
                }
                _ => {}
            },
            "engagement" => match e.decode()? {
                EngagementEvent::VoteCast {
                    user_id,
                    target,
                    value,
                    ..
                } => out.push(Op::Upvote {
                    voter: user_id,
                    target: target.id().to_owned(),
                    previous: 0,
                    value,
                }),
                EngagementEvent::VoteChanged {
                    user_id,
                    target,
                    value,
                    previous,
                    ..
                } => out.push(Op::Upvote {
                    voter: user_id,
                    target: target.id().to_owned(),
                    previous,
                    value,
                }),
                _ => {}
            },
            _ => {}
        }
        Ok(())
    }

    /// Applies a batch: loads the authors of what was voted on, then the users and badges
    /// the batch concerns (three queries); applies the rules in memory; writes the changed
    /// users, new badges and new authors (three statements).
    pub(crate) fn apply_batch(
        &self,
        tx: &mut dyn SqlTx,
        events: &[RecordedEvent],
    ) -> Result<(), Error> {
        let p = &self.prefix;
        let mut ops = Vec::new();
        for e in events {
            Self::ops(e, &mut ops)?;
        }
        let targets: Vec<&str> = ops
            .iter()
            .filter_map(|op| match op {
                Op::Upvote { target, .. } => Some(target.as_str()),
                _ => None,
            })
            .collect();
        let authors = Keyed::load(
            tx,
            &format!("SELECT target, author FROM {p}_authors"),
            "target",
            &targets,
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let mut user_ids: Vec<&str> = targets
            .iter()
            .filter_map(|t| authors.get(t).map(String::as_str))
            .collect();
        for op in &ops {
            match op {
                Op::Register(u, ..)
                | Op::Display(u, _)
                | Op::Count(u, ..)
                | Op::Credit(u, ..)
                | Op::Author(_, u) => user_ids.push(u),
                Op::Upvote { .. } => {}
            }
        }
        let users = Keyed::load(
            tx,
            &format!("SELECT {} FROM {p}_users", USER_COLUMNS.join(", ")),
            "user_id",
            &user_ids,
            Profile::from_row,
        )?;
        let mut badges = HashSet::new();
        let ids: Vec<SqlValue<'_>> = user_ids.iter().map(|u| SqlValue::from(*u)).collect();
        if !ids.is_empty() {
            let select = format!("SELECT user_id, badge FROM {p}_badges");
            for r in recount::sql::select_in(tx, &select, "user_id", &ids)? {
                let badge: String = r.get(1)?;
                if let Some(b) = BADGES.iter().find(|b| b.name == badge) {
                    badges.insert((r.get(0)?, b.name));
                }
            }
        }
        let mut batch = Batch {
            users,
            authors,
            badges,
            new_badges: Vec::new(),
        };
        for op in ops {
            batch.apply(op);
        }
        batch
            .users
            .write(tx, &format!("{p}_users"), &USER_COLUMNS, Profile::values)?;
        batch.authors.write(
            tx,
            &format!("{p}_authors"),
            &["target", "author"],
            |a, k| vec![k.into(), a.into()],
        )?;
        let rows: Vec<Vec<SqlValue<'_>>> = batch
            .new_badges
            .iter()
            .map(|(u, b)| vec![u.into(), (*b).into()])
            .collect();
        recount::sql::insert_new(tx, &format!("{p}_badges"), &["user_id", "badge"], &rows)?;
        Ok(())
    }
}

impl Batch {
    fn apply(&mut self, op: Op) {
        match op {
            Op::Register(user_id, username, display_name) => self.users.insert_new(
                user_id,
                Profile {
                    username,
                    display_name,
                    xp: 0,
                    level: 1,
                    counts: [0; 7],
                },
            ),
            Op::Display(user_id, display_name) => {
                if let Some(u) = self.users.get_mut(&user_id) {
                    u.display_name = display_name;
                }
            }
            Op::Count(user_id, name, delta) => {
                if let Some(u) = self.users.get_mut(&user_id) {
                    u.counts[counter(name)] += delta;
                }
            }
            Op::Credit(user_id, xp, name, delta) => self.credit(&user_id, xp, name, delta),
            Op::Author(target, author) => self.authors.insert_new(target, author),
            // An up-vote counts when a vote becomes +1 and is taken back when a +1 changes.
            Op::Upvote {
                voter,
                target,
                previous,
                value,
            } => {
                let delta = i64::from(value.max(0)) - i64::from(previous.max(0));
                match self.authors.get(&target).cloned() {
                    Some(author) if delta != 0 && author != voter => {
                        self.credit(&author, UPVOTE_XP * delta, "upvotes", delta)
                    }
                    _ => {}
                }
            }
        }
    }

    /// Adds XP and a counter, then raises the level (levels never go down) and awards the
    /// badges the counter earned.
    fn credit(&mut self, user_id: &str, xp: i64, name: &'static str, delta: i64) {
        let Some(u) = self.users.get_mut(user_id) else {
            return;
        };
        let i = counter(name);
        u.xp += xp;
        u.counts[i] += delta;
        u.level = u.level.max(level_for(u.xp));
        let count = u.counts[i];
        for badge in BADGES
            .iter()
            .filter(|b| b.counter == name && count >= b.threshold)
        {
            if self.badges.insert((user_id.to_owned(), badge.name)) {
                self.new_badges.push((user_id.to_owned(), badge.name));
            }
        }
    }
}
