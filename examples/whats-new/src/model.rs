//! The read model: new stories per genre, with their chapters and merged pull requests, and
//! the members who joined.

use crate::contract::{ChapterPublished, PrMerged, StoryPublished, UserRegistered};
use recount::integration::IntegrationEvent;
use recount::BoxError;
use recount_relay::inbox::SqliteHandler;
use rusqlite::{Connection, Transaction};

/// The tables, created when missing.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS whats_new_stories (
    story_id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    genre TEXT NOT NULL,
    published_at TEXT NOT NULL,
    last_activity TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS whats_new_stories_by_genre
    ON whats_new_stories (genre, last_activity DESC);
CREATE TABLE IF NOT EXISTS whats_new_chapters (
    chapter_id TEXT PRIMARY KEY,
    story_id TEXT NOT NULL,
    title TEXT NOT NULL,
    published_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS whats_new_chapters_by_story ON whats_new_chapters (story_id);
CREATE TABLE IF NOT EXISTS whats_new_merges (
    pr_id TEXT PRIMARY KEY,
    story_id TEXT NOT NULL,
    merged_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS whats_new_members (
    user_id TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    display_name TEXT NOT NULL,
    registered_at TEXT NOT NULL
);
";

/// The handler the inbox calls: it applies each integration event to the tables, in the
/// inbox's transaction (so a redelivered event changes nothing).
///
/// It understands version 1 of StoryChain's four events; other names are recorded and
/// skipped (the publisher may add events), and a newer version of a known name is an error,
/// so it is retried and then dead-lettered rather than misread.
#[derive(Debug, Clone, Copy, Default)]
pub struct WhatsNew;

impl WhatsNew {
    /// Creates the tables on `conn` when missing.
    pub fn create_tables(conn: &Connection) -> rusqlite::Result<()> {
        conn.execute_batch(SCHEMA)
    }
}

fn time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn bump(tx: &Transaction<'_>, story_id: &str, at: &str) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE whats_new_stories SET last_activity = max(last_activity, ?2) WHERE story_id = ?1",
        (story_id, at),
    )
    .map(drop)
}

fn apply(tx: &Transaction<'_>, event: &IntegrationEvent) -> Result<(), BoxError> {
    let known = matches!(
        event.name.as_str(),
        "story.published" | "chapter.published" | "pr.merged" | "user.registered"
    );
    if !known {
        return Ok(());
    }
    if event.version != 1 {
        return Err(format!("{} version {} is not understood", event.name, event.version).into());
    }
    match event.name.as_str() {
        "story.published" => {
            let e: StoryPublished = event.payload_as()?;
            let at = time(&e.published_at);
            tx.execute(
                "INSERT INTO whats_new_stories (story_id, title, genre, published_at, last_activity)
                 VALUES (?1, ?2, ?3, ?4, ?4)
                 ON CONFLICT (story_id) DO UPDATE SET title = ?2, genre = ?3, published_at = ?4,
                     last_activity = max(last_activity, ?4)",
                (&e.story_id, &e.title, &e.genre, &at),
            )?;
            // Chapters may have come first: a public story's chapters are published while it
            // is still a draft.
            let latest: Option<String> = tx.query_row(
                "SELECT max(published_at) FROM whats_new_chapters WHERE story_id = ?1",
                [&e.story_id],
                |r| r.get(0),
            )?;
            if let Some(latest) = latest {
                bump(tx, &e.story_id, &latest)?;
            }
        }
        "chapter.published" => {
            let e: ChapterPublished = event.payload_as()?;
            let at = time(&e.published_at);
            tx.execute(
                "INSERT OR REPLACE INTO whats_new_chapters (chapter_id, story_id, title, published_at)
                 VALUES (?1, ?2, ?3, ?4)",
                (&e.chapter_id, &e.story_id, &e.title, &at),
            )?;
            bump(tx, &e.story_id, &at)?;
        }
        "pr.merged" => {
            let e: PrMerged = event.payload_as()?;
            let at = time(&e.merged_at);
            tx.execute(
                "INSERT OR REPLACE INTO whats_new_merges (pr_id, story_id, merged_at) VALUES (?1, ?2, ?3)",
                (&e.pr_id, &e.story_id, &at),
            )?;
            bump(tx, &e.story_id, &at)?;
        }
        _ => {
            let e: UserRegistered = event.payload_as()?;
            tx.execute(
                "INSERT OR REPLACE INTO whats_new_members (user_id, username, display_name, registered_at)
                 VALUES (?1, ?2, ?3, ?4)",
                (&e.user_id, &e.username, &e.display_name, time(&e.registered_at)),
            )?;
        }
    }
    Ok(())
}

impl SqliteHandler for WhatsNew {
    fn name(&self) -> &str {
        "whats-new"
    }

    fn handle(&self, tx: &Transaction<'_>, event: &IntegrationEvent) -> Result<(), BoxError> {
        apply(tx, event)
    }
}

/// A new story, as the model lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStory {
    /// The story's id.
    pub story_id: String,
    /// Its title.
    pub title: String,
    /// Its genre.
    pub genre: String,
    /// When it was published (RFC 3339).
    pub published_at: String,
    /// Its latest publication, chapter or merge (RFC 3339).
    pub last_activity: String,
    /// Chapters published.
    pub chapters: u64,
    /// Pull requests merged.
    pub merged: u64,
}

/// The newest stories (by latest activity) of `genre`, or of every genre, at most `limit`.
pub fn latest(
    conn: &Connection,
    genre: Option<&str>,
    limit: usize,
) -> rusqlite::Result<Vec<NewStory>> {
    let mut stmt = conn.prepare(
        "SELECT s.story_id, s.title, s.genre, s.published_at, s.last_activity,
                (SELECT count(*) FROM whats_new_chapters c WHERE c.story_id = s.story_id),
                (SELECT count(*) FROM whats_new_merges m WHERE m.story_id = s.story_id)
         FROM whats_new_stories s
         WHERE ?1 IS NULL OR s.genre = ?1
         ORDER BY s.last_activity DESC, s.story_id
         LIMIT ?2",
    )?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt.query_map((genre, limit), |r| {
        Ok(NewStory {
            story_id: r.get(0)?,
            title: r.get(1)?,
            genre: r.get(2)?,
            published_at: r.get(3)?,
            last_activity: r.get(4)?,
            chapters: r.get::<_, i64>(5)?.try_into().unwrap_or(0),
            merged: r.get::<_, i64>(6)?.try_into().unwrap_or(0),
        })
    })?;
    rows.collect()
}

/// Members who joined, newest first: `(username, display name)`, at most `limit`.
pub fn members(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare(
        "SELECT username, display_name FROM whats_new_members
         ORDER BY registered_at DESC, user_id LIMIT ?1",
    )?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt.query_map([limit], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}
