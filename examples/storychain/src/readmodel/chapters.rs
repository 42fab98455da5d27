//! The chapter tree of every story: one row per chapter with its parent, author and votes.

use super::{at_text, ddl, Filtered, Keyed, Usernames};
use crate::domain::{ChapterTreeEvent, EngagementEvent, UserEvent};
use recount::sql::{SqlReadModel, SqlRow, SqlTx, SqlValue};
use recount::{Error, RecordedEvent};

/// Table `chapters_v<n>` and `chapters_v<n>_users`.
#[derive(Debug)]
pub(crate) struct Chapters {
    t: String,
    users: String,
}

/// A chapter's row.
#[derive(Debug, Clone)]
struct Chapter {
    story_id: String,
    parent: Option<String>,
    author_id: String,
    author: String,
    title: String,
    words: i64,
    published: bool,
    branched: bool,
    votes: i64,
    created_at: String,
}

const COLUMNS: [&str; 11] = [
    "chapter_id",
    "story_id",
    "parent",
    "author_id",
    "author",
    "title",
    "words",
    "published",
    "branched",
    "votes",
    "created_at",
];

impl Chapter {
    fn from_row(r: &SqlRow) -> Result<(String, Chapter), Error> {
        Ok((
            r.get(0)?,
            Chapter {
                story_id: r.get(1)?,
                parent: r.get(2)?,
                author_id: r.get(3)?,
                author: r.get(4)?,
                title: r.get(5)?,
                words: r.get(6)?,
                published: r.get(7)?,
                branched: r.get(8)?,
                votes: r.get(9)?,
                created_at: r.get(10)?,
            },
        ))
    }

    fn values<'a>(&'a self, id: &'a str) -> Vec<SqlValue<'a>> {
        vec![
            id.into(),
            (&self.story_id).into(),
            (&self.parent).into(),
            (&self.author_id).into(),
            (&self.author).into(),
            (&self.title).into(),
            self.words.into(),
            self.published.into(),
            self.branched.into(),
            self.votes.into(),
            (&self.created_at).into(),
        ]
    }
}

/// What an event does to the tree, decoded once per batch.
enum Change {
    User(String, String),
    Chapter(ChapterTreeEvent),
    Vote(String, i64),
}

impl Chapters {
    pub(crate) fn new(version: u32) -> Self {
        let t = format!("chapters_v{version}");
        Chapters {
            users: format!("{t}_users"),
            t,
        }
    }

    fn change(e: &RecordedEvent) -> Result<Option<Change>, Error> {
        Ok(match e.stream.category() {
            "user" => match e.decode()? {
                UserEvent::Registered {
                    user_id, username, ..
                } => Some(Change::User(user_id, username)),
                _ => None,
            },
            "chapter" => Some(Change::Chapter(e.decode()?)),
            "engagement" => {
                let (target, delta) = match e.decode()? {
                    EngagementEvent::VoteCast { target, value, .. } => (target, i64::from(value)),
                    EngagementEvent::VoteChanged {
                        target,
                        value,
                        previous,
                        ..
                    } => (target, i64::from(value) - i64::from(previous)),
                    _ => return Ok(None),
                };
                target.chapter_id.map(|c| Change::Vote(c, delta))
            }
            _ => None,
        })
    }

    fn chapter(chapters: &mut Keyed<Chapter>, names: &Usernames, event: ChapterTreeEvent) {
        match event {
            ChapterTreeEvent::Created {
                story_id,
                chapter_id,
                author,
                title,
                content,
                parent,
                at,
            } => chapters.insert_new(
                chapter_id,
                Chapter {
                    story_id,
                    parent,
                    author: names.get(&author).unwrap_or_default().to_owned(),
                    author_id: author,
                    title,
                    words: content.split_whitespace().count() as i64,
                    published: false,
                    branched: false,
                    votes: 0,
                    created_at: at_text(&at),
                },
            ),
            ChapterTreeEvent::Branched { chapter_id, .. } => {
                if let Some(c) = chapters.get_mut(&chapter_id) {
                    c.branched = true;
                }
            }
            ChapterTreeEvent::Edited {
                chapter_id,
                title,
                content,
                ..
            } => {
                if let Some(c) = chapters.get_mut(&chapter_id) {
                    c.title = title;
                    c.words = content.split_whitespace().count() as i64;
                }
            }
            ChapterTreeEvent::Published { chapter_id, .. } => {
                if let Some(c) = chapters.get_mut(&chapter_id) {
                    c.published = true;
                }
            }
        }
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

impl SqlReadModel for Chapters {
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

    /// Loads the chapters the batch touches and the authors it names (two queries), applies
    /// the batch in memory, and writes what changed back (two statements).
    fn apply_batch(&self, tx: &mut dyn SqlTx, events: &[RecordedEvent]) -> recount::Result<()> {
        let changes = events
            .iter()
            .filter_map(|e| Self::change(e).transpose())
            .collect::<Result<Vec<_>, _>>()?;
        let mut chapter_ids = Vec::new();
        let mut authors = Vec::new();
        for c in &changes {
            match c {
                Change::Chapter(ChapterTreeEvent::Created {
                    chapter_id, author, ..
                }) => {
                    chapter_ids.push(chapter_id.as_str());
                    authors.push(author.as_str());
                }
                Change::Chapter(
                    ChapterTreeEvent::Branched { chapter_id, .. }
                    | ChapterTreeEvent::Edited { chapter_id, .. }
                    | ChapterTreeEvent::Published { chapter_id, .. },
                )
                | Change::Vote(chapter_id, _) => chapter_ids.push(chapter_id.as_str()),
                Change::User(..) => {}
            }
        }
        let select = format!("SELECT {} FROM {}", COLUMNS.join(", "), self.t);
        let mut chapters = Keyed::load(tx, &select, "chapter_id", &chapter_ids, Chapter::from_row)?;
        let mut names = Usernames::load(tx, &self.users, &authors)?;
        for change in changes {
            match change {
                Change::User(user_id, username) => names.register(user_id, username),
                Change::Chapter(event) => Self::chapter(&mut chapters, &names, event),
                Change::Vote(chapter_id, delta) => {
                    if let Some(c) = chapters.get_mut(&chapter_id) {
                        c.votes += delta;
                    }
                }
            }
        }
        names.write(tx)?;
        chapters.write(tx, &self.t, &COLUMNS, Chapter::values)
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
