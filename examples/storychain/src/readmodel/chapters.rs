//! The chapter tree of every story: one row per chapter with its parent, author and votes.

use super::{at_text, ddl, decode, run, EventByEvent, Filtered};
use crate::domain::{ChapterTreeEvent, EngagementEvent, UserEvent};
use recount::sql::SqlTx;
use recount::{Error, RecordedEvent};

/// Table `chapters_v<n>` and `chapters_v<n>_users`.
#[derive(Debug)]
pub(crate) struct Chapters {
    t: String,
}

impl Chapters {
    pub(crate) fn new(version: u32) -> Self {
        Chapters {
            t: format!("chapters_v{version}"),
        }
    }

    fn chapter(&self, tx: &mut dyn SqlTx, event: ChapterTreeEvent) -> Result<(), Error> {
        let t = &self.t;
        match event {
            ChapterTreeEvent::Created {
                story_id,
                chapter_id,
                author,
                title,
                content,
                parent,
                at,
            } => {
                let sql = format!(
                    "INSERT INTO {t} (chapter_id, story_id, parent, author_id, author, title, words, created_at)
                     VALUES ($1, $2, $3, $4, COALESCE((SELECT username FROM {t}_users WHERE user_id = $4), ''), $5, $6, $7)
                     ON CONFLICT DO NOTHING"
                );
                let words = content.split_whitespace().count() as i64;
                run(
                    tx,
                    &sql,
                    (
                        &chapter_id,
                        &story_id,
                        &parent,
                        &author,
                        &title,
                        words,
                        at_text(&at),
                    ),
                )?;
            }
            ChapterTreeEvent::Branched { chapter_id, .. } => {
                run(
                    tx,
                    &format!("UPDATE {t} SET branched = 1 WHERE chapter_id = $1"),
                    [&chapter_id],
                )?;
            }
            ChapterTreeEvent::Edited {
                chapter_id,
                title,
                content,
                ..
            } => {
                let words = content.split_whitespace().count() as i64;
                run(
                    tx,
                    &format!("UPDATE {t} SET title = $2, words = $3 WHERE chapter_id = $1"),
                    (&chapter_id, &title, words),
                )?;
            }
            ChapterTreeEvent::Published { chapter_id, .. } => {
                run(
                    tx,
                    &format!("UPDATE {t} SET published = 1 WHERE chapter_id = $1"),
                    [&chapter_id],
                )?;
            }
        }
        Ok(())
    }
}

impl Filtered for Chapters {
    const EVENT_TYPES: &'static [&'static str] = &[
        "user.registered",
        "chapter.created",
        "chapter.branched",
        "chapter.edited",
        "chapter.published",
        "vote.cast",
        "vote.changed",
    ];
}

impl EventByEvent for Chapters {
    fn setup(&self, tx: &mut dyn SqlTx) -> recount::Result<()> {
        let t = &self.t;
        ddl(tx, &format!(
            "CREATE TABLE IF NOT EXISTS {t} (chapter_id TEXT PRIMARY KEY, story_id TEXT NOT NULL, parent TEXT,
                author_id TEXT NOT NULL, author TEXT NOT NULL, title TEXT NOT NULL, words BIGINT NOT NULL,
                published BIGINT NOT NULL DEFAULT 0, branched BIGINT NOT NULL DEFAULT 0,
                votes BIGINT NOT NULL DEFAULT 0, created_at TEXT NOT NULL);
             CREATE INDEX IF NOT EXISTS {t}_story ON {t} (story_id, created_at);
             CREATE TABLE IF NOT EXISTS {t}_users (user_id TEXT PRIMARY KEY, username TEXT NOT NULL);"
        ))
    }

    fn apply(&self, tx: &mut dyn SqlTx, e: &RecordedEvent) -> recount::Result<()> {
        let t = &self.t;
        match e.stream.category() {
            "user" => {
                if let UserEvent::Registered {
                    user_id, username, ..
                } = decode(e)?
                {
                    run(
                        tx,
                        &format!(
                            "INSERT INTO {t}_users (user_id, username) VALUES ($1, $2) ON CONFLICT DO NOTHING"
                        ),
                        (&user_id, &username),
                    )?;
                }
            }
            "chapter" => self.chapter(tx, decode(e)?)?,
            "engagement" => {
                let (target, delta) = match decode(e)? {
                    EngagementEvent::VoteCast { target, value, .. } => (target, i64::from(value)),
                    EngagementEvent::VoteChanged {
                        target,
                        value,
                        previous,
                        ..
                    } => (target, i64::from(value) - i64::from(previous)),
                    _ => return Ok(()),
                };
                if let Some(chapter) = target.chapter_id {
                    run(
                        tx,
                        &format!("UPDATE {t} SET votes = votes + $2 WHERE chapter_id = $1"),
                        (&chapter, delta),
                    )?;
                }
            }
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
