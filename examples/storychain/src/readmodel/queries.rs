//! Reading the read models: queries on a read connection of the store (either engine),
//! tables of the versions readers are switched to.

use super::{active, PROJECTIONS};
use crate::app::Store;
use recount::sql::{SqlEngine, SqlRow, SqlStore, SqlValue};
use recount::Error;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

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

/// The read models, at the versions readers use. Each query runs on a read connection of
/// the store; tables once seen to exist are not looked up again. A long-lived `ReadModels`
/// (a process manager's) reads the active versions again when they are more than a second
/// old, so it follows a rebuild's switch as the runners do.
#[derive(Debug, Clone)]
pub struct ReadModels {
    store: Store,
    versions: Arc<Mutex<(std::time::Instant, BTreeMap<&'static str, u32>)>>,
    seen: Arc<Mutex<std::collections::HashSet<String>>>,
}

/// How long the active versions are trusted before they are read again.
const VERSIONS_FOR: std::time::Duration = std::time::Duration::from_secs(1);

async fn versions(store: &Store) -> Result<BTreeMap<&'static str, u32>, Error> {
    let mut versions = BTreeMap::new();
    for name in PROJECTIONS {
        versions.insert(name, active(store, name).await?);
    }
    Ok(versions)
}

fn story_row(r: &SqlRow) -> Result<StoryRow, Error> {
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

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn text(s: &str) -> SqlValue<'static> {
    SqlValue::from(s.to_owned())
}

impl ReadModels {
    /// The read models of `store` at the versions readers use now.
    pub async fn open(store: &Store) -> Result<Self, Error> {
        Ok(ReadModels {
            store: store.clone(),
            versions: Arc::new(Mutex::new((
                std::time::Instant::now(),
                versions(store).await?,
            ))),
            seen: Arc::default(),
        })
    }

    /// The version readers use of `name`, read again when the last read is over a second old.
    async fn version(&self, name: &str) -> Result<u32, Error> {
        let stale = {
            let v = self.versions.lock().unwrap_or_else(|p| p.into_inner());
            v.0.elapsed() > VERSIONS_FOR
        };
        if stale {
            let fresh = versions(&self.store).await?;
            *self.versions.lock().unwrap_or_else(|p| p.into_inner()) =
                (std::time::Instant::now(), fresh);
        }
        let v = self.versions.lock().unwrap_or_else(|p| p.into_inner());
        Ok(v.1.get(name).copied().unwrap_or(1))
    }

    /// The table of `name` at its active version, if it exists yet.
    async fn table(&self, name: &str, suffix: &str) -> Result<Option<String>, Error> {
        let version = self.version(name).await?;
        let table = format!("{name}_v{version}{suffix}");
        let known = self
            .seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&table);
        if known || self.store.sql_table_exists(&table).await? {
            self.seen
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(table.clone());
            return Ok(Some(table));
        }
        Ok(None)
    }

    async fn rows(&self, sql: &str, params: Vec<SqlValue<'static>>) -> Result<Vec<SqlRow>, Error> {
        self.store.query_sql(sql, params).await
    }

    /// Net votes, reads and branches of a story, as the catalogue has them.
    pub async fn story_counts(&self, story_id: &str) -> Result<Option<[i64; 3]>, Error> {
        let Some(t) = self.table("catalogue", "").await? else {
            return Ok(None);
        };
        let sql = format!("SELECT votes, reads, branches FROM {t} WHERE story_id = $1");
        self.rows(&sql, vec![text(story_id)])
            .await?
            .first()
            .map(|r| Ok([r.get(0)?, r.get(1)?, r.get(2)?]))
            .transpose()
    }

    /// Stories matching `q`.
    pub async fn catalogue(&self, q: &CatalogueQuery) -> Result<Vec<StoryRow>, Error> {
        let Some(t) = self.table("catalogue", "").await? else {
            return Ok(Vec::new());
        };
        let order = match q.sort {
            Sort::Votes => "votes DESC, created_at DESC",
            Sort::Recent => "created_at DESC",
        };
        // Only the filters given are in the statement: `$1 IS NULL OR …` would need a typed
        // NULL on PostgreSQL.
        let mut filters = Vec::new();
        let mut params = Vec::new();
        for (column, value) in [
            ("genre", &q.genre),
            ("author", &q.author),
            ("status", &q.status),
        ] {
            if let Some(v) = value {
                params.push(text(v));
                filters.push(format!("{column} = ${}", params.len()));
            }
        }
        let filter = if filters.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", filters.join(" AND "))
        };
        params.push(limit(q.limit).into());
        params.push(limit(q.offset).into());
        let (l, o) = (params.len() - 1, params.len());
        let sql = format!(
            "SELECT story_id, title, genre, author, status, visibility, votes, chapters, branches FROM {t}
             {filter} ORDER BY {order}, story_id LIMIT ${l} OFFSET ${o}"
        );
        self.rows(&sql, params)
            .await?
            .iter()
            .map(story_row)
            .collect()
    }

    /// One story of the catalogue.
    pub async fn story(&self, story_id: &str) -> Result<Option<StoryRow>, Error> {
        let Some(t) = self.table("catalogue", "").await? else {
            return Ok(None);
        };
        let sql = format!(
            "SELECT story_id, title, genre, author, status, visibility, votes, chapters, branches FROM {t}
             WHERE story_id = $1"
        );
        self.rows(&sql, vec![text(story_id)])
            .await?
            .first()
            .map(story_row)
            .transpose()
    }

    /// The chapters of a story, oldest first.
    pub async fn chapter_tree(&self, story_id: &str) -> Result<Vec<ChapterRow>, Error> {
        let Some(t) = self.table("chapters", "").await? else {
            return Ok(Vec::new());
        };
        let sql = format!(
            "SELECT chapter_id, parent, author, title, words, branched, published, votes FROM {t}
             WHERE story_id = $1 ORDER BY created_at, chapter_id"
        );
        self.rows(&sql, vec![text(story_id)])
            .await?
            .iter()
            .map(|r| {
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
            .collect()
    }

    /// Profiles of the given users (all when empty), highest XP first.
    pub async fn profiles(&self, users: &[String], limit: usize) -> Result<Vec<ProfileRow>, Error> {
        let (Some(t), Some(b)) = (
            self.table("profiles", "_users").await?,
            self.table("profiles", "_badges").await?,
        ) else {
            return Ok(Vec::new());
        };
        let mut badges = BTreeMap::<String, Vec<String>>::new();
        let sql = format!("SELECT user_id, badge FROM {b} ORDER BY user_id, badge");
        for r in self.rows(&sql, Vec::new()).await? {
            badges.entry(r.get(0)?).or_default().push(r.get(1)?);
        }
        let sql = format!(
            "SELECT user_id, username, xp, level, stories, chapters, branches, merged_prs, upvotes, followers
             FROM {t} ORDER BY xp DESC, username"
        );
        let mut out = Vec::new();
        for r in self.rows(&sql, Vec::new()).await? {
            let user_id: String = r.get(0)?;
            if !users.is_empty() && !users.contains(&user_id) {
                continue;
            }
            if out.len() == limit {
                break;
            }
            out.push(ProfileRow {
                badges: badges.remove(&user_id).unwrap_or_default(),
                user_id,
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
            });
        }
        Ok(out)
    }

    /// One user's level and badges in the profiles model (`None`: not there yet).
    pub async fn level_and_badges(
        &self,
        user_id: &str,
    ) -> Result<Option<(i64, Vec<String>)>, Error> {
        let (Some(t), Some(b)) = (
            self.table("profiles", "_users").await?,
            self.table("profiles", "_badges").await?,
        ) else {
            return Ok(None);
        };
        // One query: the level, and each badge (NULL when none).
        let sql = format!(
            "SELECT {t}.level, {b}.badge FROM {t} LEFT JOIN {b} ON {b}.user_id = {t}.user_id
             WHERE {t}.user_id = $1 ORDER BY {b}.badge"
        );
        let rows = self.rows(&sql, vec![text(user_id)]).await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let badges = rows
            .iter()
            .filter_map(|r| r.get::<Option<String>>(1).transpose())
            .collect::<Result<_, _>>()?;
        Ok(Some((first.get(0)?, badges)))
    }

    /// The author of a story or chapter, as the profiles model knows it.
    pub async fn author_of(&self, target: &str) -> Result<Option<String>, Error> {
        let Some(t) = self.table("profiles", "_authors").await? else {
            return Ok(None);
        };
        let sql = format!("SELECT author FROM {t} WHERE target = $1");
        self.rows(&sql, vec![text(target)])
            .await?
            .first()
            .map(|r| r.get(0))
            .transpose()
    }

    /// A user's notifications, oldest first.
    pub async fn inbox(&self, user_id: &str, limit: usize) -> Result<Vec<Notification>, Error> {
        self.inbox_page(user_id, limit, 0).await
    }

    /// A page of a user's notifications, oldest first: `limit` rows after the first `offset`.
    pub async fn inbox_page(
        &self,
        user_id: &str,
        page: usize,
        offset: usize,
    ) -> Result<Vec<Notification>, Error> {
        let Some(t) = self.table("inbox", "").await? else {
            return Ok(Vec::new());
        };
        let read = self.read_through_sql(&t).await?;
        let sql = format!(
            "SELECT kind, message, at, CASE WHEN at <= {read} THEN 1 ELSE 0 END FROM {t}
             WHERE user_id = $1 ORDER BY at, event_id, message LIMIT $2 OFFSET $3"
        );
        self.rows(
            &sql,
            vec![text(user_id), limit(page).into(), limit(offset).into()],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(Notification {
                kind: r.get(0)?,
                message: r.get(1)?,
                at: r.get(2)?,
                read: r.get(3)?,
            })
        })
        .collect()
    }

    /// How many of the user's notifications are unread.
    pub async fn unread(&self, user_id: &str) -> Result<u64, Error> {
        let Some(t) = self.table("inbox", "").await? else {
            return Ok(0);
        };
        let read = self.read_through_sql(&t).await?;
        let sql = format!("SELECT count(*) FROM {t} WHERE user_id = $1 AND NOT (at <= {read})");
        self.rows(&sql, vec![text(user_id)])
            .await?
            .first()
            .map_or(Ok(0), |r| r.get(0))
    }

    /// SQL for the user's read-through time, `''` (before everything) when none; an inbox
    /// built before read marks existed has no `_read` table.
    async fn read_through_sql(&self, inbox: &str) -> Result<String, Error> {
        Ok(match self.table("inbox", "_read").await? {
            Some(r) => format!(
                "coalesce((SELECT through FROM {r} WHERE {r}.user_id = {inbox}.user_id), '')"
            ),
            None => "''".to_owned(),
        })
    }

    /// Event counts per type, most frequent first.
    pub async fn stats(&self) -> Result<Vec<StatRow>, Error> {
        let Some(t) = self.table("stats", "").await? else {
            return Ok(Vec::new());
        };
        let sql = format!(
            "SELECT event_type, count, first_at, last_at FROM {t} ORDER BY count DESC, event_type"
        );
        self.rows(&sql, Vec::new())
            .await?
            .iter()
            .map(|r| {
                Ok(StatRow {
                    event_type: r.get(0)?,
                    count: r.get(1)?,
                    first_at: r.get(2)?,
                    last_at: r.get(3)?,
                })
            })
            .collect()
    }

    /// Every row of every table of projection `name` at `version`, as sorted text lines with
    /// the version taken out of the table names: two builds of a model compare equal when
    /// their dumps do.
    pub async fn dump(&self, name: &str, version: u32) -> Result<Vec<String>, Error> {
        let base = format!("{name}_v{version}");
        // The one statement that differs by engine: listing tables.
        let list = match self.store.sql_engine() {
            SqlEngine::Postgres => {
                "SELECT table_name::text FROM information_schema.tables
                 WHERE table_schema = current_schema() AND (table_name = $1 OR table_name LIKE $1 || '\\_%' ESCAPE '\\')
                 ORDER BY table_name"
            }
            _ => {
                "SELECT name FROM sqlite_master
                 WHERE type = 'table' AND (name = $1 OR name LIKE $1 || '\\_%' ESCAPE '\\') ORDER BY name"
            }
        };
        let tables = self
            .rows(list, vec![text(&base)])
            .await?
            .iter()
            .map(|r| r.get::<String>(0))
            .collect::<Result<Vec<_>, _>>()?;
        let mut lines = Vec::new();
        for table in tables {
            let label = table.replacen(&base, name, 1);
            for row in self
                .rows(&format!("SELECT * FROM {table}"), Vec::new())
                .await?
            {
                lines.push(format!("{label}: {:?}", row.values()));
            }
        }
        lines.sort();
        Ok(lines)
    }
}
