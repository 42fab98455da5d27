//! Reading the read models: a read-only connection on the store's file, tables of the
//! versions readers are switched to.

use super::{active, PROJECTIONS};
use recount::Error;
use recount_sqlite::rusqlite::{types::Value, Connection, OpenFlags, OptionalExtension, Row};
use recount_sqlite::SqliteEventStore;
use std::collections::BTreeMap;

/// How to sort the catalogue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sort {
    /// Highest vote total first.
    #[default]
    Votes,
    /// Newest first.
    Recent,
}

/// A catalogue query: filters and order.
#[derive(Debug, Clone, Default)]
pub struct CatalogueQuery {
    /// Only this genre (`fantasy`, `sci_fi`, …).
    pub genre: Option<String>,
    /// Only stories by this username.
    pub author: Option<String>,
    /// Only this status (`draft`, `published`, `archived`).
    pub status: Option<String>,
    /// The order.
    pub sort: Sort,
    /// At most this many rows.
    pub limit: usize,
    /// Rows skipped first (a page's start).
    pub offset: usize,
}

/// One story in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoryRow {
    /// Its id.
    pub story_id: String,
    /// Its title.
    pub title: String,
    /// Its genre.
    pub genre: String,
    /// Its author's username.
    pub author: String,
    /// `draft`, `published` or `archived`.
    pub status: String,
    /// `public` or `private`.
    pub visibility: String,
    /// Net votes on the story and its chapters.
    pub votes: i64,
    /// Chapters written.
    pub chapters: i64,
    /// Chapters that are branches.
    pub branches: i64,
}

/// One chapter of a story's tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChapterRow {
    /// Its id.
    pub chapter_id: String,
    /// Its parent.
    pub parent: Option<String>,
    /// Its author's username.
    pub author: String,
    /// Its title.
    pub title: String,
    /// Its length in words.
    pub words: i64,
    /// Whether it is a branch.
    pub branched: bool,
    /// Whether it is published.
    pub published: bool,
    /// Net votes.
    pub votes: i64,
}

/// A user's profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileRow {
    /// The user id.
    pub user_id: String,
    /// The username.
    pub username: String,
    /// XP.
    pub xp: i64,
    /// Level.
    pub level: i64,
    /// Stories, chapters, branches, merged PRs, up-votes received, followers.
    pub counts: [i64; 6],
    /// Badges earned.
    pub badges: Vec<String>,
}

/// A notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// What kind (`new_follower`, `branch`, `pr_merged`, `level_up`, …).
    pub kind: String,
    /// The text.
    pub message: String,
    /// When (RFC 3339).
    pub at: String,
    /// Whether the user has read it.
    pub read: bool,
}

/// Events of one type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatRow {
    /// The type.
    pub event_type: String,
    /// How many.
    pub count: i64,
    /// When the first was recorded (RFC 3339).
    pub first_at: String,
    /// When the last was recorded (RFC 3339).
    pub last_at: String,
}

/// The read models, at the versions readers use.
#[derive(Debug)]
pub struct ReadModels {
    conn: Connection,
    versions: BTreeMap<&'static str, u32>,
}

fn story_row(r: &Row<'_>) -> recount_sqlite::rusqlite::Result<StoryRow> {
    Ok(StoryRow {
        story_id: r.get(0)?,
        title: r.get(1)?,
        genre: r.get(2)?,
        author: r.get(3)?,
        status: r.get(4)?,
        visibility: r.get(5)?,
        votes: r.get(6)?,
        chapters: r.get(7)?,
        branches: r.get(8)?,
    })
}

fn store_err(e: recount_sqlite::rusqlite::Error) -> Error {
    Error::store(e)
}

impl ReadModels {
    /// Opens a read-only connection on the store's file.
    pub async fn open(store: &SqliteEventStore) -> Result<Self, Error> {
        let mut versions = BTreeMap::new();
        for name in PROJECTIONS {
            versions.insert(name, active(store, name).await?);
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(store.path(), flags).map_err(store_err)?;
        Ok(ReadModels { conn, versions })
    }

    /// The table of `name` at its active version, if it exists yet.
    fn table(&self, name: &str, suffix: &str) -> Result<Option<String>, Error> {
        let version = self.versions.get(name).copied().unwrap_or(1);
        let table = format!("{name}_v{version}{suffix}");
        let found: Option<String> = self
            .conn
            .query_row(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [&table],
                |r| r.get(0),
            )
            .optional()
            .map_err(store_err)?;
        Ok(found)
    }

    fn rows<T>(
        &self,
        sql: &str,
        params: impl recount_sqlite::rusqlite::Params,
        f: impl Fn(&Row<'_>) -> rusqlite_result::R<T>,
    ) -> Result<Vec<T>, Error> {
        let mut stmt = self.conn.prepare(sql).map_err(store_err)?;
        let rows = stmt.query_map(params, f).map_err(store_err)?;
        rows.collect::<Result<_, _>>().map_err(store_err)
    }

    /// Net votes, reads and branches of a story, as the catalogue has them.
    pub fn story_counts(&self, story_id: &str) -> Result<Option<[i64; 3]>, Error> {
        let Some(t) = self.table("catalogue", "")? else {
            return Ok(None);
        };
        let sql = format!("SELECT votes, reads, branches FROM {t} WHERE story_id = ?1");
        Ok(self
            .rows(&sql, [story_id], |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?]))?
            .into_iter()
            .next())
    }

    /// Stories matching `q`.
    pub fn catalogue(&self, q: &CatalogueQuery) -> Result<Vec<StoryRow>, Error> {
        let Some(t) = self.table("catalogue", "")? else {
            return Ok(Vec::new());
        };
        let order = match q.sort {
            Sort::Votes => "votes DESC, created_at DESC",
            Sort::Recent => "created_at DESC",
        };
        let sql = format!(
            "SELECT story_id, title, genre, author, status, visibility, votes, chapters, branches FROM {t}
             WHERE (?1 IS NULL OR genre = ?1) AND (?2 IS NULL OR author = ?2) AND (?3 IS NULL OR status = ?3)
             ORDER BY {order}, story_id LIMIT ?4 OFFSET ?5"
        );
        let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
        let offset = i64::try_from(q.offset).unwrap_or(i64::MAX);
        self.rows(
            &sql,
            (&q.genre, &q.author, &q.status, limit, offset),
            story_row,
        )
    }

    /// One story of the catalogue.
    pub fn story(&self, story_id: &str) -> Result<Option<StoryRow>, Error> {
        let Some(t) = self.table("catalogue", "")? else {
            return Ok(None);
        };
        let sql = format!(
            "SELECT story_id, title, genre, author, status, visibility, votes, chapters, branches FROM {t}
             WHERE story_id = ?1"
        );
        Ok(self.rows(&sql, [story_id], story_row)?.into_iter().next())
    }

    /// The chapters of a story, oldest first.
    pub fn chapter_tree(&self, story_id: &str) -> Result<Vec<ChapterRow>, Error> {
        let Some(t) = self.table("chapters", "")? else {
            return Ok(Vec::new());
        };
        let sql = format!(
            "SELECT chapter_id, parent, author, title, words, branched, published, votes FROM {t}
             WHERE story_id = ?1 ORDER BY created_at, chapter_id"
        );
        self.rows(&sql, [story_id], |r| {
            Ok(ChapterRow {
                chapter_id: r.get(0)?,
                parent: r.get(1)?,
                author: r.get(2)?,
                title: r.get(3)?,
                words: r.get(4)?,
                branched: r.get(5)?,
                published: r.get(6)?,
                votes: r.get(7)?,
            })
        })
    }

    /// Profiles of the given users (all when empty), highest XP first.
    pub fn profiles(&self, users: &[String], limit: usize) -> Result<Vec<ProfileRow>, Error> {
        let (Some(t), Some(b)) = (
            self.table("profiles", "_users")?,
            self.table("profiles", "_badges")?,
        ) else {
            return Ok(Vec::new());
        };
        let sql = format!(
            "SELECT user_id, username, xp, level, stories, chapters, branches, merged_prs, upvotes, followers,
                (SELECT group_concat(badge, ',') FROM (SELECT badge FROM {b} WHERE {b}.user_id = {t}.user_id ORDER BY badge))
             FROM {t} ORDER BY xp DESC, username"
        );
        let all = self.rows(&sql, [], |r| {
            let badges: Option<String> = r.get(10)?;
            Ok(ProfileRow {
                user_id: r.get(0)?,
                username: r.get(1)?,
                xp: r.get(2)?,
                level: r.get(3)?,
                counts: [
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                ],
                badges: badges
                    .map(|b| b.split(',').map(str::to_owned).collect())
                    .unwrap_or_default(),
            })
        })?;
        Ok(all
            .into_iter()
            .filter(|p| users.is_empty() || users.contains(&p.user_id))
            .take(limit)
            .collect())
    }

    /// One user's level and badges in the profiles model (`None`: not there yet).
    pub fn level_and_badges(&self, user_id: &str) -> Result<Option<(i64, Vec<String>)>, Error> {
        let (Some(t), Some(b)) = (
            self.table("profiles", "_users")?,
            self.table("profiles", "_badges")?,
        ) else {
            return Ok(None);
        };
        let level = self.rows(
            &format!("SELECT level FROM {t} WHERE user_id = ?1"),
            [user_id],
            |r| r.get::<_, i64>(0),
        )?;
        let Some(level) = level.first().copied() else {
            return Ok(None);
        };
        let badges = self.rows(
            &format!("SELECT badge FROM {b} WHERE user_id = ?1 ORDER BY badge"),
            [user_id],
            |r| r.get::<_, String>(0),
        )?;
        Ok(Some((level, badges)))
    }

    /// The author of a story or chapter, as the profiles model knows it.
    pub fn author_of(&self, target: &str) -> Result<Option<String>, Error> {
        let Some(t) = self.table("profiles", "_authors")? else {
            return Ok(None);
        };
        let found = self.rows(
            &format!("SELECT author FROM {t} WHERE target = ?1"),
            [target],
            |r| r.get::<_, String>(0),
        )?;
        Ok(found.into_iter().next())
    }

    /// A user's notifications, oldest first.
    pub fn inbox(&self, user_id: &str, limit: usize) -> Result<Vec<Notification>, Error> {
        self.inbox_page(user_id, limit, 0)
    }

    /// A page of a user's notifications, oldest first: `limit` rows after the first `offset`.
    pub fn inbox_page(
        &self,
        user_id: &str,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<Notification>, Error> {
        let Some(t) = self.table("inbox", "")? else {
            return Ok(Vec::new());
        };
        let read = self.read_through_sql(&t)?;
        let sql = format!("SELECT kind, message, at, at <= {read} FROM {t} WHERE user_id = ?1 ORDER BY at, event_id, message LIMIT ?2 OFFSET ?3");
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        self.rows(&sql, (user_id, limit, offset), |r| {
            Ok(Notification {
                kind: r.get(0)?,
                message: r.get(1)?,
                at: r.get(2)?,
                read: r.get(3)?,
            })
        })
    }

    /// How many of the user's notifications are unread.
    pub fn unread(&self, user_id: &str) -> Result<u64, Error> {
        let Some(t) = self.table("inbox", "")? else {
            return Ok(0);
        };
        let read = self.read_through_sql(&t)?;
        let sql = format!("SELECT count(*) FROM {t} WHERE user_id = ?1 AND NOT (at <= {read})");
        let n = self.rows(&sql, [user_id], |r| r.get::<_, i64>(0))?;
        Ok(n.first().copied().unwrap_or(0).try_into().unwrap_or(0))
    }

    /// SQL for the user's (`?1`) read-through time, `''` (before everything) when none; an
    /// inbox built before read marks existed has no `_read` table.
    fn read_through_sql(&self, inbox: &str) -> Result<String, Error> {
        Ok(match self.table("inbox", "_read")? {
            Some(r) => format!(
                "coalesce((SELECT through FROM {r} WHERE {r}.user_id = {inbox}.user_id), '')"
            ),
            None => "''".to_owned(),
        })
    }

    /// Event counts per type, most frequent first.
    pub fn stats(&self) -> Result<Vec<StatRow>, Error> {
        let Some(t) = self.table("stats", "")? else {
            return Ok(Vec::new());
        };
        let sql = format!(
            "SELECT event_type, count, first_at, last_at FROM {t} ORDER BY count DESC, event_type"
        );
        self.rows(&sql, [], |r| {
            Ok(StatRow {
                event_type: r.get(0)?,
                count: r.get(1)?,
                first_at: r.get(2)?,
                last_at: r.get(3)?,
            })
        })
    }

    /// Every row of every table of projection `name` at `version`, as sorted text lines with
    /// the version taken out of the table names: two builds of a model compare equal when
    /// their dumps do.
    pub fn dump(&self, name: &str, version: u32) -> Result<Vec<String>, Error> {
        let base = format!("{name}_v{version}");
        let tables = self.rows(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND (name = ?1 OR name LIKE ?1 || '\\_%' ESCAPE '\\') ORDER BY name",
            [&base],
            |r| r.get::<_, String>(0),
        )?;
        let mut lines = Vec::new();
        for table in tables {
            let label = table.replacen(&base, name, 1);
            let mut stmt = self
                .conn
                .prepare(&format!("SELECT * FROM {table}"))
                .map_err(store_err)?;
            let n = stmt.column_count();
            let rows = stmt
                .query_map([], |r| {
                    (0..n)
                        .map(|i| r.get::<_, Value>(i))
                        .collect::<Result<Vec<_>, _>>()
                })
                .map_err(store_err)?;
            for row in rows {
                lines.push(format!("{label}: {:?}", row.map_err(store_err)?));
            }
        }
        lines.sort();
        Ok(lines)
    }
}

mod rusqlite_result {
    pub(super) type R<T> = Result<T, recount_sqlite::rusqlite::Error>;
}
