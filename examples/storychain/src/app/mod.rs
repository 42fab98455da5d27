//! The application service: what the CLI calls now and the HTTP API will call later.
//!
//! It owns the store and one repository per aggregate, reads the clock (aggregates never do),
//! checks rules that span aggregates (who may write in a private story) and passes what it
//! read into the commands, which decide against their own state.

mod commands;
mod contributions;
mod error;
mod runtime;

pub use error::AppError;
pub use runtime::{ProjectionStatus, Settled};

use crate::domain::{
    ChapterTree, Collaboration, Engagement, Inbox, PullRequest, Story, User, Username, Webhook,
};
use recount::sql::SqlStore;
use recount::{Aggregate, CommandContext, CommandError, Event, Repository};
use recount_postgres::PgEventStore;
use recount_sqlite::SqliteEventStore;
use std::path::Path;
use std::sync::Arc;

/// The event store StoryChain runs on, chosen at start: SQLite (one file) or PostgreSQL
/// (shared by any number of processes). Its read models are tables in the same database.
pub type Store = Arc<dyn SqlStore>;

/// A repository over the store.
pub type Repo<A> = Repository<A, Store>;

/// Where StoryChain keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file (created when missing).
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL database (`postgres://…`), migrated at start.
    Postgres(String),
}

impl Database {
    /// `DATABASE_URL` when it is set (it must be a `postgres://` or `postgresql://` URL),
    /// else the SQLite file at `path`.
    pub fn from_env_or(path: impl Into<std::path::PathBuf>) -> Result<Self, AppError> {
        match std::env::var("DATABASE_URL") {
            Ok(url) if !url.trim().is_empty() => Self::url(&url),
            _ => Ok(Database::Sqlite(path.into())),
        }
    }

    /// The database a URL names: `postgres://…` or `postgresql://…`; anything else is
    /// refused, naming what is accepted.
    pub fn url(url: &str) -> Result<Self, AppError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Database::Postgres(url.to_owned()))
        } else {
            let scheme = url.split_once("://").map_or(url, |(s, _)| s);
            Err(recount::Error::invalid(
                "DATABASE_URL",
                format!("`{scheme}` is not a PostgreSQL URL (postgres://user@host:port/database); unset it to use the SQLite file"),
            )
            .into())
        }
    }

    /// Which engine: `sqlite` or `postgres`.
    pub fn engine(&self) -> &'static str {
        match self {
            Database::Sqlite(_) => "sqlite",
            Database::Postgres(_) => "postgres",
        }
    }

    /// Opens (creating or migrating) the store.
    pub async fn open(&self) -> Result<Store, AppError> {
        Ok(match self {
            Database::Sqlite(path) => Arc::new(SqliteEventStore::open(path).await?),
            Database::Postgres(url) => {
                let options = recount_postgres::PgOptions::default().with_pool_size(pool_size()?);
                let store = PgEventStore::connect_with(url, options).await?;
                store.migrate().await?;
                Arc::new(store)
            }
        })
    }
}

/// Connections per process to PostgreSQL: `STORYCHAIN_DB_POOL` (1 to 1,000), default 16.
/// Processes sharing one server share its `max_connections`.
fn pool_size() -> Result<u32, AppError> {
    match std::env::var("STORYCHAIN_DB_POOL") {
        Err(_) => Ok(16),
        Ok(text) => text
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| {
                recount::Error::invalid(
                    "STORYCHAIN_DB_POOL",
                    format!("`{text}`: connections per process, from 1 to 1000"),
                )
                .into()
            }),
    }
}

impl std::fmt::Display for Database {
    /// The file's path, or the URL without its password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite(path) => write!(f, "{}", path.display()),
            Database::Postgres(url) => match url.split_once("://").and_then(|(scheme, rest)| {
                let (auth, host) = rest.split_once('@')?;
                let user = auth.split_once(':').map_or(auth, |(u, _)| u);
                Some(format!("{scheme}://{user}@{host}"))
            }) {
                Some(safe) => f.write_str(&safe),
                None => f.write_str(url),
            },
        }
    }
}

/// One event a command wrote: stream, version, type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenEvent {
    /// The stream, e.g. `story-0192…`.
    pub stream: String,
    /// Its version in the stream.
    pub version: u64,
    /// Its type, e.g. `story.created`.
    pub event_type: &'static str,
}

/// What an accepted command did: the id of what it made or changed, and the events written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    /// The id of the user, story, chapter or pull request concerned.
    pub id: String,
    /// The events written, in order (possibly on several streams).
    pub events: Vec<WrittenEvent>,
    /// Where the last of them sits in the global log (`None`: nothing written). A reader that
    /// waits for the read models to pass it reads its own writes.
    pub cursor: Option<recount::Cursor>,
}

impl Written {
    fn and(mut self, other: Written) -> Written {
        self.events.extend(other.events);
        self.cursor = self.cursor.max(other.cursor);
        self
    }

    fn with_id(mut self, id: impl Into<String>) -> Written {
        self.id = id.into();
        self
    }
}

/// StoryChain on one event store: repositories for every aggregate.
#[derive(Debug, Clone)]
pub struct StoryChain {
    store: Store,
    pub(crate) usernames: Repo<Username>,
    pub(crate) users: Repo<User>,
    pub(crate) stories: Repo<Story>,
    pub(crate) collaborations: Repo<Collaboration>,
    pub(crate) chapters: Repo<ChapterTree>,
    pub(crate) prs: Repo<PullRequest>,
    pub(crate) engagements: Repo<Engagement>,
    pub(crate) inboxes: Repo<Inbox>,
    pub(crate) webhooks: Repo<Webhook>,
    /// The hosts webhooks may be registered for (`None`: any).
    webhook_hosts: Option<std::sync::Arc<[String]>>,
}

/// Decisions again after a conflict. A story's chapter tree is one stream that many writers
/// may continue at once; every round of a race lets one writer through, so the bound must
/// exceed the number of concurrent writers expected on one story.
const CONFLICT_RETRIES: u32 = 64;

fn repo<A: Aggregate>(store: &Store) -> Repo<A> {
    Repository::new(store.clone()).with_max_conflict_retries(CONFLICT_RETRIES)
}

impl StoryChain {
    /// StoryChain over an open store.
    pub fn new(store: Store) -> Self {
        StoryChain {
            usernames: repo(&store),
            users: repo(&store),
            stories: repo(&store),
            collaborations: repo(&store),
            chapters: repo(&store),
            prs: repo(&store),
            engagements: repo(&store),
            inboxes: repo(&store),
            webhooks: repo(&store),
            webhook_hosts: None,
            store,
        }
    }

    /// Opens (creating if needed) the SQLite database at `path`.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, AppError> {
        Ok(Self::new(Arc::new(
            SqliteEventStore::open(path.as_ref()).await?,
        )))
    }

    /// Opens `database` (SQLite or PostgreSQL).
    pub async fn open_database(database: &Database) -> Result<Self, AppError> {
        Ok(Self::new(database.open().await?))
    }

    /// Only accepts webhooks whose URL's host is one of `hosts` (`None`: any host; the
    /// default). Keeps a public service from being made to POST into its own network.
    pub fn with_webhook_hosts(mut self, hosts: Option<Vec<String>>) -> Self {
        self.webhook_hosts = hosts.map(Into::into);
        self
    }

    /// The hosts webhooks may be registered for (`None`: any).
    pub fn webhook_hosts(&self) -> Option<&[String]> {
        self.webhook_hosts.as_deref()
    }

    /// The event store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Loads a user.
    pub async fn user(&self, user_id: &str) -> Result<User, AppError> {
        Ok(self.users.load(user_id).await?.state)
    }

    /// Loads a story.
    pub async fn story(&self, story_id: &str) -> Result<Story, AppError> {
        Ok(self.stories.load(story_id).await?.state)
    }

    /// Loads a story's chapter tree.
    pub async fn chapter_tree(&self, story_id: &str) -> Result<ChapterTree, AppError> {
        Ok(self.chapters.load(story_id).await?.state)
    }

    /// Loads a pull request.
    pub async fn pull_request(&self, pr_id: &str) -> Result<PullRequest, AppError> {
        Ok(self.prs.load(pr_id).await?.state)
    }

    /// Commands decided again after a version conflict, over every repository: how often
    /// optimistic concurrency had to step in.
    pub fn conflict_retries(&self) -> u64 {
        [
            self.usernames.stats(),
            self.users.stats(),
            self.stories.stats(),
            self.collaborations.stats(),
            self.chapters.stats(),
            self.prs.stats(),
            self.engagements.stats(),
            self.inboxes.stats(),
            self.webhooks.stats(),
        ]
        .iter()
        .map(|s| s.conflict_retries)
        .sum()
    }

    /// A pull request that exists.
    pub(crate) async fn existing_pr(&self, pr_id: &str) -> Result<PullRequest, AppError> {
        let pr = self.pull_request(pr_id).await?;
        if pr.story_id.is_empty() {
            return Err(AppError::NotFound("pull request"));
        }
        Ok(pr)
    }

    /// The story engagement is about, when it exists.
    pub(crate) async fn existing_target(&self, story_id: &str) -> Result<Story, AppError> {
        self.existing_story(story_id).await
    }

    /// The user id holding `username`, if reserved.
    pub async fn user_id_of(&self, username: &str) -> Result<Option<String>, AppError> {
        Ok(self.usernames.load(username).await?.state.owner)
    }
}

tokio::task_local! {
    /// The correlation id of the request being served, if any.
    static CORRELATION: uuid::Uuid;
}

/// Runs `work` with `correlation` as the correlation id of every command it sends (the HTTP
/// layer wraps each request in it), so everything a request causes shares one id.
pub async fn with_correlation<F: std::future::Future>(
    correlation: uuid::Uuid,
    work: F,
) -> F::Output {
    CORRELATION.scope(correlation, work).await
}

/// A context for a command sent by `actor`, in the current request's correlation.
pub fn by(actor: &str) -> CommandContext {
    let ctx = CommandContext::new().with_user(actor);
    match CORRELATION.try_with(|c| *c) {
        Ok(correlation) => ctx.with_correlation_id(correlation),
        Err(_) => ctx,
    }
}

/// Executes a command and reports the events it wrote with their stream versions.
pub async fn exec<A, F>(
    repo: &Repo<A>,
    id: &str,
    ctx: &CommandContext,
    mut decide: F,
) -> Result<Written, CommandError<A::Error>>
where
    A: Aggregate,
    F: FnMut(&A) -> Result<Vec<A::Event>, A::Error> + Send,
{
    let mut types = Vec::new();
    let done = repo
        .execute(id, ctx, |state| {
            let events = decide(state)?;
            types = events.iter().map(Event::event_type).collect();
            Ok(events)
        })
        .await?;
    let stream = repo.stream_id(id)?.to_string();
    let n = done.event_ids.len() as u64;
    let first = done.version + 1 - n.min(done.version + 1);
    let events = if n == 0 { Vec::new() } else { types };
    Ok(Written {
        id: id.to_owned(),
        cursor: done.cursor,
        events: events
            .into_iter()
            .enumerate()
            .map(|(i, event_type)| WrittenEvent {
                stream: stream.clone(),
                version: first + i as u64,
                event_type,
            })
            .collect(),
    })
}
