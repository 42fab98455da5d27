//! The story catalogue: one row per story with its author, status, vote total and counts.

use super::{at_text, ddl, Filtered, Keyed, Usernames};
use crate::domain::{ChapterTreeEvent, EngagementEvent, StoryEvent, UserEvent, Visibility};
use recount::sql::{SqlReadModel, SqlRow, SqlTx, SqlValue};
use recount::{Error, RecordedEvent};

/// Table `catalogue_v<n>` (stories) and `catalogue_v<n>_users` (usernames of authors).
#[derive(Debug)]
pub(crate) struct Catalogue {
    t: String,
    users: String,
}

/// A story's row.
#[derive(Debug, Clone)]
struct Story {
    title: String,
    genre: String,
    author_id: String,
    author: String,
    visibility: &'static str,
    status: &'static str,
    votes: i64,
    reads: i64,
    chapters: i64,
    branches: i64,
    created_at: String,
    updated_at: String,
}

const COLUMNS: [&str; 13] = [
    "story_id",
    "title",
    "genre",
    "author_id",
    "author",
    "visibility",
    "status",
    "votes",
    "reads",
    "chapters",
    "branches",
    "created_at",
    "updated_at",
];

fn visibility(v: Visibility) -> &'static str {
    if v == Visibility::Public {
        "public"
    } else {
        "private"
    }
}

fn known(text: &str, of: &[&'static str]) -> &'static str {
    of.iter().find(|k| **k == text).copied().unwrap_or("")
}

impl Story {
    fn from_row(r: &SqlRow) -> Result<(String, Story), Error> {
        let vis: String = r.get(5)?;
        let status: String = r.get(6)?;
        Ok((
            r.get(0)?,
            Story {
                title: r.get(1)?,
                genre: r.get(2)?,
                author_id: r.get(3)?,
                author: r.get(4)?,
                visibility: known(&vis, &["public", "private"]),
                status: known(&status, &["draft", "published", "archived"]),
                votes: r.get(7)?,
                reads: r.get(8)?,
                chapters: r.get(9)?,
                branches: r.get(10)?,
                created_at: r.get(11)?,
                updated_at: r.get(12)?,
            },
        ))
    }

    fn values<'a>(&'a self, id: &'a str) -> Vec<SqlValue<'a>> {
        vec![
            id.into(),
            (&self.title).into(),
            (&self.genre).into(),
            (&self.author_id).into(),
            (&self.author).into(),
            self.visibility.into(),
            self.status.into(),
            self.votes.into(),
            self.reads.into(),
            self.chapters.into(),
            self.branches.into(),
            (&self.created_at).into(),
            (&self.updated_at).into(),
        ]
    }
}

/// What an event does to the catalogue, decoded once per batch.
enum Change {
    User(String, String),
    Story(StoryEvent),
    Add(String, Counter, i64),
}

#[derive(Clone, Copy)]
enum Counter {
    Votes,
    Reads,
    Chapters,
    Branches,
}

impl Catalogue {
    pub(crate) fn new(version: u32) -> Self {
        let t = format!("catalogue_v{version}");
        Catalogue {
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
            "story" => Some(Change::Story(e.decode()?)),
            "chapter" => match e.decode()? {
                ChapterTreeEvent::Created { story_id, .. } => {
                    Some(Change::Add(story_id, Counter::Chapters, 1))
                }
                ChapterTreeEvent::Branched { story_id, .. } => {
                    Some(Change::Add(story_id, Counter::Branches, 1))
                }
                _ => None,
            },
            "engagement" => match e.decode()? {
                EngagementEvent::VoteCast { target, value, .. } => {
                    Some(Change::Add(target.story_id, Counter::Votes, value.into()))
                }
                EngagementEvent::VoteChanged {
                    target,
                    value,
                    previous,
                    ..
                } => Some(Change::Add(
                    target.story_id,
                    Counter::Votes,
                    i64::from(value) - i64::from(previous),
                )),
                EngagementEvent::ReadingRecorded { target, .. } => {
                    Some(Change::Add(target.story_id, Counter::Reads, 1))
                }
                _ => None,
            },
            _ => None,
        })
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

impl SqlReadModel for Catalogue {
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

    /// Loads the stories the batch touches and the authors it names (two queries), applies
    /// the batch to them in memory, and writes what changed back (two statements).
    fn apply_batch(&self, tx: &mut dyn SqlTx, events: &[RecordedEvent]) -> recount::Result<()> {
        let changes = events
            .iter()
            .filter_map(|e| Self::change(e).transpose())
            .collect::<Result<Vec<_>, _>>()?;
        let mut story_ids = Vec::new();
        let mut authors = Vec::new();
        for c in &changes {
            match c {
                Change::Story(StoryEvent::Created {
                    story_id, author, ..
                }) => {
                    story_ids.push(story_id.as_str());
                    authors.push(author.as_str());
                }
                Change::Story(
                    StoryEvent::DetailsUpdated { story_id, .. }
                    | StoryEvent::Published { story_id, .. }
                    | StoryEvent::Archived { story_id, .. },
                )
                | Change::Add(story_id, ..) => story_ids.push(story_id.as_str()),
                _ => {}
            }
        }
        let select = format!("SELECT {} FROM {}", COLUMNS.join(", "), self.t);
        let mut stories = Keyed::load(tx, &select, "story_id", &story_ids, Story::from_row)?;
        let mut names = Usernames::load(tx, &self.users, &authors)?;
        for change in changes {
            match change {
                Change::User(user_id, username) => names.register(user_id, username),
                Change::Story(event) => self.story(&mut stories, &names, event),
                Change::Add(story_id, counter, delta) => {
                    if let Some(s) = stories.get_mut(&story_id) {
                        *match counter {
                            Counter::Votes => &mut s.votes,
                            Counter::Reads => &mut s.reads,
                            Counter::Chapters => &mut s.chapters,
                            Counter::Branches => &mut s.branches,
                        } += delta;
                    }
                }
            }
        }
        names.write(tx)?;
        stories.write(tx, &self.t, &COLUMNS, Story::values)
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

impl Catalogue {
    fn story(&self, stories: &mut Keyed<Story>, names: &Usernames, event: StoryEvent) {
        match event {
            StoryEvent::Created {
                story_id,
                title,
                genre,
                author,
                visibility: vis,
                at,
            } => {
                let at = at_text(&at);
                stories.insert_new(
                    story_id,
                    Story {
                        title,
                        genre: genre.as_str().to_owned(),
                        author: names.get(&author).unwrap_or_default().to_owned(),
                        author_id: author,
                        visibility: visibility(vis),
                        status: "draft",
                        votes: 0,
                        reads: 0,
                        chapters: 0,
                        branches: 0,
                        created_at: at.clone(),
                        updated_at: at,
                    },
                );
            }
            StoryEvent::DetailsUpdated {
                story_id,
                title,
                genre,
                visibility: vis,
                at,
            } => {
                if let Some(s) = stories.get_mut(&story_id) {
                    s.title = title;
                    s.genre = genre.as_str().to_owned();
                    s.visibility = visibility(vis);
                    s.updated_at = at_text(&at);
                }
            }
            StoryEvent::Published { story_id, at, .. } => {
                if let Some(s) = stories.get_mut(&story_id) {
                    s.status = "published";
                    s.updated_at = at_text(&at);
                }
            }
            StoryEvent::Archived { story_id, at } => {
                if let Some(s) = stories.get_mut(&story_id) {
                    s.status = "archived";
                    s.updated_at = at_text(&at);
                }
            }
            StoryEvent::MilestoneReached { .. } => {}
        }
    }
}
