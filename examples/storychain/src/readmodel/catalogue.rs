//! The story catalogue: one row per story with its author, status, vote total and counts.

use super::{at_text, ddl, decode, run, EventByEvent, Filtered};
use crate::domain::{ChapterTreeEvent, EngagementEvent, StoryEvent, UserEvent};
use recount::sql::SqlTx;
use recount::{Error, RecordedEvent};

/// Table `catalogue_v<n>` (stories) and `catalogue_v<n>_users` (usernames of authors).
#[derive(Debug)]
pub(crate) struct Catalogue {
    t: String,
}

impl Catalogue {
    pub(crate) fn new(version: u32) -> Self {
        Catalogue {
            t: format!("catalogue_v{version}"),
        }
    }

    fn story(&self, tx: &mut dyn SqlTx, event: StoryEvent) -> Result<(), Error> {
        let t = &self.t;
        match event {
            StoryEvent::Created {
                story_id,
                title,
                genre,
                author,
                visibility,
                at,
            } => {
                let sql = format!(
                    "INSERT INTO {t} (story_id, title, genre, author_id, author, visibility, status, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, COALESCE((SELECT username FROM {t}_users WHERE user_id = $4), ''), $5, 'draft', $6, $6)
                     ON CONFLICT DO NOTHING"
                );
                let vis = if visibility == crate::domain::Visibility::Public {
                    "public"
                } else {
                    "private"
                };
                run(
                    tx,
                    &sql,
                    (
                        &story_id,
                        &title,
                        genre.as_str(),
                        &author,
                        vis,
                        at_text(&at),
                    ),
                )?;
            }
            StoryEvent::DetailsUpdated {
                story_id,
                title,
                genre,
                visibility,
                at,
            } => {
                let vis = if visibility == crate::domain::Visibility::Public {
                    "public"
                } else {
                    "private"
                };
                let sql = format!("UPDATE {t} SET title = $2, genre = $3, visibility = $4, updated_at = $5 WHERE story_id = $1");
                run(
                    tx,
                    &sql,
                    (&story_id, &title, genre.as_str(), vis, at_text(&at)),
                )?;
            }
            StoryEvent::Published { story_id, at, .. } => {
                self.status(tx, &story_id, "published", &at)?
            }
            StoryEvent::Archived { story_id, at } => self.status(tx, &story_id, "archived", &at)?,
            StoryEvent::MilestoneReached { .. } => {}
        }
        Ok(())
    }

    fn status(
        &self,
        tx: &mut dyn SqlTx,
        story_id: &str,
        status: &str,
        at: &chrono::DateTime<chrono::Utc>,
    ) -> Result<(), Error> {
        let sql = format!(
            "UPDATE {} SET status = $2, updated_at = $3 WHERE story_id = $1",
            self.t
        );
        run(tx, &sql, (story_id, status, at_text(at))).map(drop)
    }

    fn add(
        &self,
        tx: &mut dyn SqlTx,
        story_id: &str,
        column: &str,
        delta: i64,
    ) -> Result<(), Error> {
        let sql = format!(
            "UPDATE {} SET {column} = {column} + $2 WHERE story_id = $1",
            self.t
        );
        run(tx, &sql, (story_id, delta)).map(drop)
    }
}

impl Filtered for Catalogue {
    const EVENT_TYPES: &'static [&'static str] = &[
        "user.registered",
        "story.created",
        "story.details_updated",
        "story.published",
        "story.archived",
        "chapter.created",
        "chapter.branched",
        "vote.cast",
        "vote.changed",
        "reading.recorded",
    ];
}

impl EventByEvent for Catalogue {
    fn setup(&self, tx: &mut dyn SqlTx) -> recount::Result<()> {
        let t = &self.t;
        ddl(tx, &format!(
            "CREATE TABLE IF NOT EXISTS {t} (story_id TEXT PRIMARY KEY, title TEXT NOT NULL, genre TEXT NOT NULL,
                author_id TEXT NOT NULL, author TEXT NOT NULL, visibility TEXT NOT NULL, status TEXT NOT NULL,
                votes BIGINT NOT NULL DEFAULT 0, reads BIGINT NOT NULL DEFAULT 0, chapters BIGINT NOT NULL DEFAULT 0, branches BIGINT NOT NULL DEFAULT 0,
                created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS {t}_users (user_id TEXT PRIMARY KEY, username TEXT NOT NULL);"
        ))
    }

    fn apply(&self, tx: &mut dyn SqlTx, e: &RecordedEvent) -> recount::Result<()> {
        match e.stream.category() {
            "user" => {
                if let UserEvent::Registered {
                    user_id, username, ..
                } = decode(e)?
                {
                    let sql = format!(
                        "INSERT INTO {}_users (user_id, username) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                        self.t
                    );
                    run(tx, &sql, (&user_id, &username))?;
                }
            }
            "story" => self.story(tx, decode(e)?)?,
            "chapter" => match decode(e)? {
                ChapterTreeEvent::Created { story_id, .. } => {
                    self.add(tx, &story_id, "chapters", 1)?
                }
                ChapterTreeEvent::Branched { story_id, .. } => {
                    self.add(tx, &story_id, "branches", 1)?
                }
                _ => {}
            },
            "engagement" => match decode(e)? {
                EngagementEvent::VoteCast { target, value, .. } => {
                    self.add(tx, &target.story_id, "votes", value.into())?
                }
                EngagementEvent::VoteChanged {
                    target,
                    value,
                    previous,
                    ..
                } => self.add(
                    tx,
                    &target.story_id,
                    "votes",
                    i64::from(value) - i64::from(previous),
                )?,
                EngagementEvent::ReadingRecorded { target, .. } => {
                    self.add(tx, &target.story_id, "reads", 1)?
                }
                _ => {}
            },
            _ => {}
        }
        Ok(())
    }

    fn drop_tables(&self, tx: &mut dyn SqlTx) -> recount::Result<()> {
        ddl(
            tx,
            &format!(
                "DROP TABLE IF EXISTS {t}; DROP TABLE IF EXISTS {t}_users;",
                t = self.t
            ),
        )
    }
}
