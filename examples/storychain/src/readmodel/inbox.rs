//! Notification inboxes: one row per (event, user, message), inserted with `INSERT OR IGNORE`
//! so that an event handled twice notifies once.

use super::progress::{Award, Progress};
use super::{at_text, ddl, decode, run, Filtered};
use crate::domain::{
    ChapterTreeEvent, CollaborationEvent, InboxEvent, PullRequestEvent, StoryEvent, UserEvent,
    Verdict,
};
use recount::{Error, RecordedEvent};
use recount_sqlite::rusqlite::{OptionalExtension, Transaction};
use recount_sqlite::SqliteReadModel;

/// Table `inbox_v<n>`, with lookups `inbox_v<n>_stories` and its own progress tables
/// (`inbox_v<n>_xp_*`) to notice level-ups and badges.
#[derive(Debug)]
pub(crate) struct InboxModel {
    t: String,
    progress: Progress,
}

/// A notification to insert.
struct Note {
    user: String,
    kind: &'static str,
    message: String,
}

impl InboxModel {
    pub(crate) fn new(version: u32) -> Self {
        let t = format!("inbox_v{version}");
        InboxModel {
            progress: Progress::new(format!("{t}_xp")),
            t,
        }
    }

    fn lookup(
        &self,
        tx: &Transaction<'_>,
        sql: &str,
        key: &str,
    ) -> Result<Option<(String, String)>, Error> {
        tx.prepare_cached(sql)
            .and_then(|mut s| {
                s.query_row([key], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(Error::store)
    }

    /// The username of `user_id`, or "someone".
    fn name(&self, tx: &Transaction<'_>, user_id: &str) -> Result<String, Error> {
        let sql = format!(
            "SELECT username, display_name FROM {} WHERE user_id = ?1",
            self.progress.users_table()
        );
        Ok(self
            .lookup(tx, &sql, user_id)?
            .map_or_else(|| "someone".to_owned(), |(u, _)| u))
    }

    /// The owner and title of `story_id`.
    fn story(&self, tx: &Transaction<'_>, story_id: &str) -> Result<(String, String), Error> {
        let sql = format!(
            "SELECT owner, title FROM {}_stories WHERE story_id = ?1",
            self.t
        );
        Ok(self.lookup(tx, &sql, story_id)?.unwrap_or_default())
    }

    fn story_note(&self, tx: &Transaction<'_>, event: StoryEvent) -> Result<Vec<Note>, Error> {
        let t = &self.t;
        match event {
            StoryEvent::Created {
                story_id,
                title,
                author,
                ..
            } => {
                let sql = format!("INSERT OR IGNORE INTO {t}_stories (story_id, owner, title) VALUES (?1, ?2, ?3)");
                run(tx, &sql, (&story_id, &author, &title))?;
            }
            StoryEvent::DetailsUpdated {
                story_id, title, ..
            } => {
                run(
                    tx,
                    &format!("UPDATE {t}_stories SET title = ?2 WHERE story_id = ?1"),
                    (&story_id, &title),
                )?;
            }
            StoryEvent::MilestoneReached {
                owner,
                kind,
                threshold,
                story_id,
                ..
            } => {
                let (_, title) = self.story(tx, &story_id)?;
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

    fn pr_note(&self, tx: &Transaction<'_>, event: PullRequestEvent) -> Result<Vec<Note>, Error> {
        Ok(match event {
            PullRequestEvent::Opened {
                story_id,
                author,
                title: pr_title,
                ..
            } => {
                let (owner, title) = self.story(tx, &story_id)?;
                let message = format!(
                    "{} opened a pull request on “{title}”: {pr_title}",
                    self.name(tx, &author)?
                );
                if owner == author {
                    vec![]
                } else {
                    vec![Note {
                        user: owner,
                        kind: "pr_opened",
                        message,
                    }]
                }
            }
            PullRequestEvent::Reviewed {
                story_id,
                author,
                reviewer,
                verdict,
                ..
            } => {
                let (_, title) = self.story(tx, &story_id)?;
                let did = if verdict == Verdict::Approve {
                    "approved"
                } else {
                    "requested changes on"
                };
                let message = format!(
                    "{} {did} your pull request on “{title}”",
                    self.name(tx, &reviewer)?
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

    fn notes(&self, tx: &Transaction<'_>, e: &RecordedEvent) -> Result<Vec<Note>, Error> {
        Ok(match (e.stream.category(), e.event_type.as_str()) {
            ("story", _) => self.story_note(tx, decode(e)?)?,
            ("pr", _) => self.pr_note(tx, decode(e)?)?,
            ("user", "user.followed") => match decode(e)? {
                UserEvent::Followed {
                    user_id, followee, ..
                } => {
                    let message = format!("{} started following you", self.name(tx, &user_id)?);
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
                    let (_, title) = self.story(tx, &story_id)?;
                    let message = format!(
                        "{} branched your chapter in “{title}”",
                        self.name(tx, &author)?
                    );
                    vec![Note {
                        user: parent_author,
                        kind: "branch",
                        message,
                    }]
                }
                _ => vec![],
            },
            ("collaboration", "collaborator.invited") => match decode(e)? {
                CollaborationEvent::Invited {
                    story_id,
                    user_id,
                    role,
                    invited_by,
                    ..
                } => {
                    let (_, title) = self.story(tx, &story_id)?;
                    let role = format!("{role:?}").to_lowercase();
                    let message = format!(
                        "{} invited you to “{title}” as {role}",
                        self.name(tx, &invited_by)?
                    );
                    vec![Note {
                        user: user_id,
                        kind: "invited",
                        message,
                    }]
                }
                _ => vec![],
            },
            ("inbox", _) => match decode(e)? {
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

fn award_note(award: Award) -> Note {
    match award {
        Award::LevelUp { user_id, level } => Note {
            user: user_id,
            kind: "level_up",
            message: format!("You reached level {level}"),
        },
        Award::Badge { user_id, badge } => Note {
            user: user_id,
            kind: "badge",
            message: format!("You earned the badge “{badge}”"),
        },
    }
}

impl Filtered for InboxModel {
    const EVENT_TYPES: &'static [&'static str] = &[
        "user.registered",
        "user.profile_updated",
        "user.followed",
        "user.unfollowed",
        "user.xp_credited",
        "story.created",
        "story.details_updated",
        "story.milestone_reached",
        "chapter.created",
        "chapter.branched",
        "vote.cast",
        "vote.changed",
        "collaborator.invited",
        "pr.opened",
        "pr.reviewed",
        "notification.sent",
    ];
}

impl SqliteReadModel for InboxModel {
    fn setup(&self, tx: &Transaction<'_>) -> recount::Result<()> {
        self.progress.setup(tx)?;
        let t = &self.t;
        ddl(tx, &format!(
            "CREATE TABLE IF NOT EXISTS {t} (event_id TEXT NOT NULL, user_id TEXT NOT NULL, kind TEXT NOT NULL,
                message TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (event_id, user_id, message));
             CREATE INDEX IF NOT EXISTS {t}_user ON {t} (user_id, at);
             CREATE TABLE IF NOT EXISTS {t}_stories (story_id TEXT PRIMARY KEY, owner TEXT NOT NULL, title TEXT NOT NULL);"
        ))
    }

    fn apply(&self, tx: &Transaction<'_>, e: &RecordedEvent) -> recount::Result<()> {
        let mut notes = self.notes(tx, e)?;
        notes.extend(self.progress.apply(tx, e)?.into_iter().map(award_note));
        let sql = format!("INSERT OR IGNORE INTO {} (event_id, user_id, kind, message, at) VALUES (?1, ?2, ?3, ?4, ?5)", self.t);
        for note in notes {
            run(
                tx,
                &sql,
                (
                    e.id.to_string(),
                    &note.user,
                    note.kind,
                    &note.message,
                    at_text(&e.recorded_at),
                ),
            )?;
        }
        Ok(())
    }

    fn drop_tables(&self, tx: &Transaction<'_>) -> recount::Result<()> {
        self.progress.drop_tables(tx)?;
        ddl(
            tx,
            &format!(
                "DROP TABLE IF EXISTS {t}; DROP TABLE IF EXISTS {t}_stories;",
                t = self.t
            ),
        )
    }
}
