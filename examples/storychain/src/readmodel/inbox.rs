//! Notification inboxes: one row per (event, user, message), inserted with `ON CONFLICT DO NOTHING`
//! so that an event handled twice notifies once.

use super::{at_text, ddl, decode, run, Filtered, Keyed, Usernames};
use crate::domain::{
    ChapterTreeEvent, CollaborationEvent, EngagementEvent, InboxEvent, PullRequestEvent,
    StoryEvent, UserEvent, Verdict,
};
use recount::sql::{SqlReadModel, SqlTx, SqlValue};
use recount::{Error, RecordedEvent};
use std::collections::HashSet;

/// Table `inbox_v<n>`, with lookups `inbox_v<n>_stories`, `_followers` and `_members` (who
/// follows whom, who collaborates on what), `_read` (each user's read-through time) and
/// `_users` (usernames). Level-ups and badges are told from the awards manager's events
/// (`user.leveled_up`, `user.badge_earned`).
#[derive(Debug)]
pub(crate) struct InboxModel {
    t: String,
}

/// A notification to insert.
struct Note {
    user: String,
    kind: &'static str,
    message: String,
}

impl InboxModel {
    pub(crate) fn new(version: u32) -> Self {
        InboxModel {
            t: format!("inbox_v{version}"),
        }
    }

    /// The users of one column of `sql` (one `$1` parameter).
    fn users(&self, tx: &mut dyn SqlTx, sql: &str, key: &str) -> Result<Vec<String>, Error> {
        tx.rows(sql, [key])?.iter().map(|r| r.get(0)).collect()
    }

    /// The same message to each of `users`.
    fn to_each(users: Vec<String>, kind: &'static str, message: &str) -> Vec<Note> {
        users
            .into_iter()
            .map(|user| Note {
                user,
                kind,
                message: message.to_owned(),
            })
            .collect()
    }

    fn story_note(
        &self,
        tx: &mut dyn SqlTx,
        lk: &mut Lookups,
        event: StoryEvent,
    ) -> Result<Vec<Note>, Error> {
        let t = &self.t;
        match event {
            StoryEvent::Created {
                story_id,
                title,
                author,
                ..
            } => {
                lk.stories.insert_new(story_id, (author, title));
            }
            StoryEvent::DetailsUpdated {
                story_id, title, ..
            } => {
                lk.story(tx, &story_id)?;
                if let Some(story) = lk.stories.get_mut(&story_id) {
                    story.1 = title;
                }
            }
            StoryEvent::Published { story_id, .. } => {
                let (owner, title) = lk.story(tx, &story_id)?;
                let followers = self.users(
                    tx,
                    &format!(
                        "SELECT follower FROM {t}_followers WHERE user_id = $1 ORDER BY follower"
                    ),
                    &owner,
                )?;
                let message = format!("{} published “{title}”", lk.name(tx, &owner)?);
                return Ok(Self::to_each(followers, "story_published", &message));
            }
            StoryEvent::MilestoneReached {
                owner,
                kind,
                threshold,
                story_id,
                ..
            } => {
                let (_, title) = lk.story(tx, &story_id)?;
                let what = format!("{kind:?}").to_lowercase();
                return Ok(vec![Note {
                    user: owner,
                    kind: "milestone",
                    message: format!("“{title}” reached {threshold} {what}"),
                }]);
            }
            _ => {}
        }
        Ok(Vec::new())
    }

    fn pr_note(
        &self,
        tx: &mut dyn SqlTx,
        lk: &mut Lookups,
        event: PullRequestEvent,
    ) -> Result<Vec<Note>, Error> {
        Ok(match event {
            PullRequestEvent::Opened {
                story_id,
                author,
                title: pr_title,
                ..
            } => {
                let (owner, title) = lk.story(tx, &story_id)?;
                let message = format!(
                    "{} opened a pull request on “{title}”: {pr_title}",
                    lk.name(tx, &author)?
                );
                // The owner and every collaborator, but not the author.
                let t = &self.t;
                let mut users = self.users(
                    tx,
                    &format!(
                        "SELECT user_id FROM {t}_members WHERE story_id = $1 ORDER BY user_id"
                    ),
                    &story_id,
                )?;
                users.push(owner);
                users.sort();
                users.dedup();
                users.retain(|u| *u != author);
                Self::to_each(users, "pr_opened", &message)
            }
            PullRequestEvent::Rejected {
                story_id,
                author,
                rejected_by,
                reason,
                ..
            } => {
                let (_, title) = lk.story(tx, &story_id)?;
                let why = if reason.trim().is_empty() {
                    String::new()
                } else {
                    format!(": {reason}")
                };
                let message = format!(
                    "{} rejected your pull request on “{title}”{why}",
                    lk.name(tx, &rejected_by)?
                );
                vec![Note {
                    user: author,
                    kind: "pr_rejected",
                    message,
                }]
            }
            PullRequestEvent::Reviewed {
                story_id,
                author,
                reviewer,
                verdict,
                ..
            } => {
                let (_, title) = lk.story(tx, &story_id)?;
                let did = if verdict == Verdict::Approve {
                    "approved"
                } else {
                    "requested changes on"
                };
                let message = format!(
                    "{} {did} your pull request on “{title}”",
                    lk.name(tx, &reviewer)?
                );
                vec![Note {
                    user: author,
                    kind: "pr_reviewed",
                    message,
                }]
            }
            _ => vec![],
        })
    }

    fn notes(
        &self,
        tx: &mut dyn SqlTx,
        lk: &mut Lookups,
        e: &RecordedEvent,
    ) -> Result<Vec<Note>, Error> {
        Ok(match (e.stream.category(), e.event_type.as_str()) {
            ("story", _) => self.story_note(tx, lk, decode(e)?)?,
            ("pr", _) => self.pr_note(tx, lk, decode(e)?)?,
            ("user", "user.registered") => match decode(e)? {
                UserEvent::Registered {
                    user_id, username, ..
                } => {
                    lk.names.register(user_id, username);
                    vec![]
                }
                _ => vec![],
            },
            ("user", "user.leveled_up") => match decode(e)? {
                UserEvent::LeveledUp { user_id, level, .. } => vec![Note {
                    user: user_id,
                    kind: "level_up",
                    message: format!("You reached level {level}"),
                }],
                _ => vec![],
            },
            ("user", "user.badge_earned") => match decode(e)? {
                UserEvent::BadgeEarned { user_id, badge, .. } => vec![Note {
                    user: user_id,
                    kind: "badge",
                    message: format!("You earned the badge “{badge}”"),
                }],
                _ => vec![],
            },
            ("user", "user.unfollowed") => match decode(e)? {
                UserEvent::Unfollowed {
                    user_id, followee, ..
                } => {
                    let sql = format!(
                        "DELETE FROM {}_followers WHERE user_id = $1 AND follower = $2",
                        self.t
                    );
                    run(tx, &sql, (&followee, &user_id))?;
                    vec![]
                }
                _ => vec![],
            },
            ("user", "user.followed") => match decode(e)? {
                UserEvent::Followed {
                    user_id, followee, ..
                } => {
                    let sql = format!(
                        "INSERT INTO {}_followers (user_id, follower) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                        self.t
                    );
                    run(tx, &sql, (&followee, &user_id))?;
                    let message = format!("{} started following you", lk.name(tx, &user_id)?);
                    vec![Note {
                        user: followee,
                        kind: "new_follower",
                        message,
                    }]
                }
                _ => vec![],
            },
            ("chapter", "chapter.branched") => match decode(e)? {
                ChapterTreeEvent::Branched {
                    story_id,
                    author,
                    parent_author,
                    ..
                } if author != parent_author => {
                    let (_, title) = lk.story(tx, &story_id)?;
                    let message = format!(
                        "{} branched your chapter in “{title}”",
                        lk.name(tx, &author)?
                    );
                    vec![Note {
                        user: parent_author,
                        kind: "branch",
                        message,
                    }]
                }
                _ => vec![],
            },
            ("collaboration", _) => match decode(e)? {
                CollaborationEvent::Invited {
                    story_id,
                    user_id,
                    role,
                    invited_by,
                    ..
                } => {
                    let (_, title) = lk.story(tx, &story_id)?;
                    let role = format!("{role:?}").to_lowercase();
                    let message = format!(
                        "{} invited you to “{title}” as {role}",
                        lk.name(tx, &invited_by)?
                    );
                    vec![Note {
                        user: user_id,
                        kind: "invited",
                        message,
                    }]
                }
                event => self.member_note(tx, lk, event)?,
            },
            ("engagement", "comment.posted") => match decode(e)? {
                EngagementEvent::CommentPosted {
                    user_id, target, ..
                } => {
                    let (owner, title) = lk.story(tx, &target.story_id)?;
                    if owner.is_empty() || owner == user_id {
                        vec![]
                    } else {
                        let message = format!("{} commented on “{title}”", lk.name(tx, &user_id)?);
                        vec![Note {
                            user: owner,
                            kind: "comment",
                            message,
                        }]
                    }
                }
                _ => vec![],
            },
            ("inbox", "inbox.read") => match decode(e)? {
                InboxEvent::Read {
                    user_id, through, ..
                } => {
                    let sql = format!(
                        "INSERT INTO {t}_read (user_id, through) VALUES ($1, $2)
                         ON CONFLICT (user_id) DO UPDATE SET through = CASE WHEN excluded.through > {t}_read.through THEN excluded.through ELSE {t}_read.through END",
                        t = self.t
                    );
                    run(tx, &sql, (&user_id, at_text(&through)))?;
                    vec![]
                }
                _ => vec![],
            },
            ("inbox", _) => match decode(e)? {
                InboxEvent::Read { .. } => vec![],
                InboxEvent::Sent {
                    user_id,
                    kind,
                    message,
                    ..
                } => {
                    let kind = if kind == "pr_merged" {
                        "pr_merged"
                    } else {
                        "notice"
                    };
                    vec![Note {
                        user: user_id,
                        kind,
                        message,
                    }]
                }
            },
            _ => vec![],
        })
    }
}

impl InboxModel {
    /// Joined, left, role changed: kept in `_members`, and the owner told (unless it was the
    /// owner's own doing).
    fn member_note(
        &self,
        tx: &mut dyn SqlTx,
        lk: &mut Lookups,
        event: CollaborationEvent,
    ) -> Result<Vec<Note>, Error> {
        let t = &self.t;
        let (story_id, user_id, what) = match event {
            CollaborationEvent::Joined {
                story_id,
                user_id,
                role,
                ..
            } => {
                let sql = format!(
                    "INSERT INTO {t}_members (story_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
                );
                run(tx, &sql, (&story_id, &user_id))?;
                let role = format!("{role:?}").to_lowercase();
                (story_id, user_id, format!("joined “{{title}}” as {role}"))
            }
            CollaborationEvent::Left {
                story_id, user_id, ..
            } => {
                let sql = format!("DELETE FROM {t}_members WHERE story_id = $1 AND user_id = $2");
                run(tx, &sql, (&story_id, &user_id))?;
                (story_id, user_id, "left “{title}”".to_owned())
            }
            CollaborationEvent::RoleChanged {
                story_id,
                user_id,
                role,
                ..
            } => {
                let role = format!("{role:?}").to_lowercase();
                (story_id, user_id, format!("is now {role} on “{{title}}”"))
            }
            _ => return Ok(vec![]),
        };
        let (owner, title) = lk.story(tx, &story_id)?;
        if owner.is_empty() || owner == user_id {
            return Ok(vec![]);
        }
        let message = format!(
            "{} {}",
            lk.name(tx, &user_id)?,
            what.replace("{title}", &title)
        );
        Ok(vec![Note {
            user: owner,
            kind: "collaborator",
            message,
        }])
    }
}

/// The stories (owner, title) and usernames a batch reads: loaded for what its events
/// mention, each other one read when first asked for.
struct Lookups {
    t: String,
    stories: Keyed<(String, String)>,
    names: Usernames,
    asked: HashSet<String>,
}

impl Lookups {
    fn load(tx: &mut dyn SqlTx, t: &str, events: &[RecordedEvent]) -> Result<Self, Error> {
        let (mut story_ids, mut user_ids) = (Vec::new(), Vec::new());
        for e in events {
            mentions(e, &mut story_ids, &mut user_ids)?;
        }
        let stories = Keyed::load(
            tx,
            &format!("SELECT story_id, owner, title FROM {t}_stories"),
            "story_id",
            &story_ids.iter().map(String::as_str).collect::<Vec<_>>(),
            |r| Ok((r.get(0)?, (r.get::<String>(1)?, r.get::<String>(2)?))),
        )?;
        user_ids.extend(
            story_ids
                .iter()
                .filter_map(|s| stories.get(s).map(|(owner, _)| owner.clone())),
        );
        let users: Vec<&str> = user_ids.iter().map(String::as_str).collect();
        let names = Usernames::load(tx, &format!("{t}_users"), &users)?;
        let asked = story_ids.into_iter().chain(user_ids).collect();
        Ok(Lookups {
            t: t.to_owned(),
            stories,
            names,
            asked,
        })
    }

    /// The owner and title of `story_id` (empty when unknown).
    fn story(&mut self, tx: &mut dyn SqlTx, story_id: &str) -> Result<(String, String), Error> {
        if self.stories.get(story_id).is_none() && self.asked.insert(story_id.to_owned()) {
            let sql = format!(
                "SELECT owner, title FROM {}_stories WHERE story_id = $1",
                self.t
            );
            if let Some(r) = tx.row(&sql, [story_id])? {
                self.stories
                    .remember(story_id.to_owned(), (r.get(0)?, r.get(1)?));
            }
        }
        Ok(self.stories.get(story_id).cloned().unwrap_or_default())
    }

    /// The username of `user_id`, or "someone".
    fn name(&mut self, tx: &mut dyn SqlTx, user_id: &str) -> Result<String, Error> {
        if self.names.get(user_id).is_none() && self.asked.insert(user_id.to_owned()) {
            let sql = format!("SELECT username FROM {}_users WHERE user_id = $1", self.t);
            if let Some(r) = tx.row(&sql, [user_id])? {
                self.names.remember(user_id.to_owned(), r.get(0)?);
            }
        }
        Ok(self.names.get(user_id).unwrap_or("someone").to_owned())
    }
}

/// The stories and users whose names an event's notification may need.
fn mentions(
    e: &RecordedEvent,
    stories: &mut Vec<String>,
    users: &mut Vec<String>,
) -> Result<(), Error> {
    match (e.stream.category(), e.event_type.as_str()) {
        ("story", _) => match decode(e)? {
            StoryEvent::Created { story_id, .. }
            | StoryEvent::DetailsUpdated { story_id, .. }
            | StoryEvent::Published { story_id, .. }
            | StoryEvent::Archived { story_id, .. } => stories.push(story_id),
            StoryEvent::MilestoneReached { story_id, .. } => stories.push(story_id),
        },
        ("pr", _) => match decode(e)? {
            PullRequestEvent::Opened {
                story_id, author, ..
            } => {
                stories.push(story_id);
                users.push(author);
            }
            PullRequestEvent::Rejected {
                story_id,
                rejected_by,
                ..
            } => {
                stories.push(story_id);
                users.push(rejected_by);
            }
            PullRequestEvent::Reviewed {
                story_id, reviewer, ..
            } => {
                stories.push(story_id);
                users.push(reviewer);
            }
            _ => {}
        },
        ("user", "user.followed") => {
            if let UserEvent::Followed { user_id, .. } = decode(e)? {
                users.push(user_id);
            }
        }
        ("chapter", "chapter.branched") => {
            if let ChapterTreeEvent::Branched {
                story_id, author, ..
            } = decode(e)?
            {
                stories.push(story_id);
                users.push(author);
            }
        }
        ("collaboration", _) => match decode(e)? {
            CollaborationEvent::Invited {
                story_id,
                invited_by,
                ..
            } => {
                stories.push(story_id);
                users.push(invited_by);
            }
            CollaborationEvent::Joined {
                story_id, user_id, ..
            }
            | CollaborationEvent::Left {
                story_id, user_id, ..
            }
            | CollaborationEvent::RoleChanged {
                story_id, user_id, ..
            } => {
                stories.push(story_id);
                users.push(user_id);
            }
        },
        ("engagement", "comment.posted") => {
            if let EngagementEvent::CommentPosted {
                user_id, target, ..
            } = decode(e)?
            {
                stories.push(target.story_id);
                users.push(user_id);
            }
        }
        _ => {}
    }
    Ok(())
}

impl Filtered for InboxModel {
    const EVENT_TYPES: &'static [&'static str] = &[
        "user.registered",
        "user.followed",
        "user.unfollowed",
        "user.leveled_up",
        "user.badge_earned",
        "story.created",
        "story.details_updated",
        "story.milestone_reached",
        "chapter.created",
        "chapter.branched",
        "vote.cast",
        "vote.changed",
        "story.published",
        "collaborator.invited",
        "collaborator.joined",
        "collaborator.left",
        "collaborator.role_changed",
        "comment.posted",
        "pr.opened",
        "pr.reviewed",
        "pr.rejected",
        "notification.sent",
        "inbox.read",
    ];
}

impl SqlReadModel for InboxModel {
    fn setup(&self, tx: &mut dyn SqlTx) -> recount::Result<()> {
        let t = &self.t;
        ddl(tx, &format!(
            "CREATE TABLE IF NOT EXISTS {t} (event_id TEXT NOT NULL, user_id TEXT NOT NULL, kind TEXT NOT NULL,
                message TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (event_id, user_id, message));
             CREATE INDEX IF NOT EXISTS {t}_user ON {t} (user_id, at);
             CREATE TABLE IF NOT EXISTS {t}_stories (story_id TEXT PRIMARY KEY, owner TEXT NOT NULL, title TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS {t}_followers (user_id TEXT NOT NULL, follower TEXT NOT NULL, PRIMARY KEY (user_id, follower));
             CREATE TABLE IF NOT EXISTS {t}_members (story_id TEXT NOT NULL, user_id TEXT NOT NULL, PRIMARY KEY (story_id, user_id));
             CREATE TABLE IF NOT EXISTS {t}_read (user_id TEXT PRIMARY KEY, through TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS {t}_users (user_id TEXT PRIMARY KEY, username TEXT NOT NULL);"
        ))
    }

    /// Loads the stories and usernames the batch mentions (a few queries), works out the
    /// notifications with them, and inserts every notification of the batch in one
    /// statement. Follows, memberships and read marks are written as they come: later
    /// events of the batch read them.
    fn apply_batch(&self, tx: &mut dyn SqlTx, events: &[RecordedEvent]) -> recount::Result<()> {
        let mut lk = Lookups::load(tx, &self.t, events)?;
        let mut notes: Vec<(String, Note, String)> = Vec::new();
        for e in events {
            let id = e.id.to_string();
            let at = at_text(&e.recorded_at);
            for note in self.notes(tx, &mut lk, e)? {
                notes.push((id.clone(), note, at.clone()));
            }
        }
        let rows: Vec<Vec<SqlValue<'_>>> = notes
            .iter()
            .map(|(id, n, at)| {
                vec![
                    id.into(),
                    (&n.user).into(),
                    n.kind.into(),
                    (&n.message).into(),
                    at.into(),
                ]
            })
            .collect();
        recount::sql::insert_new(
            tx,
            &self.t,
            &["event_id", "user_id", "kind", "message", "at"],
            &rows,
        )?;
        lk.names.write(tx)?;
        lk.stories.write(
            tx,
            &format!("{}_stories", self.t),
            &["story_id", "owner", "title"],
            |(owner, title), id| vec![id.into(), owner.into(), title.into()],
        )
    }

    fn drop_tables(&self, tx: &mut dyn SqlTx) -> recount::Result<()> {
        ddl(
            tx,
            &format!(
                "DROP TABLE IF EXISTS {t}; DROP TABLE IF EXISTS {t}_stories; DROP TABLE IF EXISTS {t}_followers; DROP TABLE IF EXISTS {t}_members; DROP TABLE IF EXISTS {t}_read; DROP TABLE IF EXISTS {t}_users;",
                t = self.t
            ),
        )
    }
}
