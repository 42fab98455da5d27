//! Query routes: read models, read-your-writes by cursor, pages.

use super::{ApiError, ApiState, AppJson, Caller};
use crate::readmodel::{CatalogueQuery, ReadModels, Sort, StoryRow, PROJECTIONS};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use recount::Cursor;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};

/// How long a query waits for the read models to reach `after` before answering 503.
const READ_YOUR_WRITES: Duration = Duration::from_secs(5);
/// The largest page.
const MAX_LIMIT: usize = 100;

/// Waits until every read model has passed `after` (from `?after=` or `X-After-Cursor`).
async fn read_your_writes(
    s: &ApiState,
    after: Option<&str>,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    let header = headers.get("x-after-cursor").and_then(|v| v.to_str().ok());
    let Some(text) = after.or(header) else {
        return Ok(());
    };
    let cursor: Cursor = text
        .parse()
        .map_err(|_| ApiError::invalid(format!("`after` is not a cursor: `{text}`")))?;
    if crate::readmodel::reached(s.app.store(), &PROJECTIONS, cursor, READ_YOUR_WRITES).await? {
        Ok(())
    } else {
        Err(ApiError::unavailable(format!(
            "the read models did not reach cursor {cursor} within {READ_YOUR_WRITES:?}"
        )))
    }
}

async fn models(s: &ApiState) -> Result<ReadModels, ApiError> {
    Ok(ReadModels::open(s.app.store()).await?)
}

/// A page token: where the next page starts.
fn offset(cursor: Option<&str>) -> Result<usize, ApiError> {
    match cursor {
        None => Ok(0),
        Some(c) => c
            .strip_prefix('p')
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| ApiError::invalid(format!("`cursor` is not a page token: `{c}`"))),
    }
}

fn limit(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit.unwrap_or(20) {
        0 => Err(ApiError::invalid("`limit` must be 1 to 100")),
        n if n > MAX_LIMIT => Err(ApiError::invalid("`limit` must be 1 to 100")),
        n => Ok(n),
    }
}

fn next_page(offset: usize, limit: usize, got: usize) -> Option<String> {
    (got == limit).then(|| format!("p{}", offset + got))
}

/// Catalogue filters, order and page.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CatalogueParams {
    /// Only this genre.
    pub genre: Option<String>,
    /// Only stories by this username.
    pub author: Option<String>,
    /// `draft`, `published` or `archived`.
    pub status: Option<String>,
    /// `votes` (default) or `recent`.
    pub sort: Option<String>,
    /// 1 to 100 (default 20).
    pub limit: Option<usize>,
    /// The `next` token of the previous page.
    pub cursor: Option<String>,
    /// Read your writes: wait until the read models passed this cursor.
    pub after: Option<String>,
}

/// One story in the catalogue.
#[derive(Debug, Serialize, ToSchema)]
pub struct StoryItem {
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

impl From<StoryRow> for StoryItem {
    fn from(r: StoryRow) -> Self {
        StoryItem {
            story_id: r.story_id,
            title: r.title,
            genre: r.genre,
            author: r.author,
            status: r.status,
            visibility: r.visibility,
            votes: r.votes,
            chapters: r.chapters,
            branches: r.branches,
        }
    }
}

/// A page of the catalogue.
#[derive(Debug, Serialize, ToSchema)]
pub struct CataloguePage {
    /// The stories.
    pub stories: Vec<StoryItem>,
    /// The token of the next page (`null`: last page).
    pub next: Option<String>,
}

/// The catalogue: filter by genre, author, status; sort by votes or recency; pages.
#[utoipa::path(get, path = "/stories", params(CatalogueParams), tag = "queries",
    responses((status = 200, body = CataloguePage), (status = 400, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn catalogue(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Query(p): Query<CatalogueParams>,
) -> Result<AppJson<CataloguePage>, ApiError> {
    read_your_writes(&s, p.after.as_deref(), &headers).await?;
    let sort = match p.sort.as_deref() {
        None | Some("votes") => Sort::Votes,
        Some("recent") => Sort::Recent,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "`sort` must be `votes` or `recent`, not `{other}`"
            )))
        }
    };
    let (limit, offset) = (limit(p.limit)?, offset(p.cursor.as_deref())?);
    let q = CatalogueQuery {
        genre: p.genre,
        author: p.author,
        status: p.status,
        sort,
        limit,
        offset,
    };
    let rows = models(&s).await?.catalogue(&q).await?;
    let next = next_page(offset, limit, rows.len());
    let stories = rows.into_iter().map(StoryItem::from).collect();
    Ok(AppJson(CataloguePage { stories, next }))
}

/// `?after=` alone.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct After {
    /// Read your writes: wait until the read models passed this cursor.
    pub after: Option<String>,
}

/// One chapter of a story's tree.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChapterItem {
    /// Its id.
    pub chapter_id: String,
    /// The chapter it continues.
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

/// A story with its chapter tree.
#[derive(Debug, Serialize, ToSchema)]
pub struct StoryView {
    /// The story as the catalogue shows it.
    pub story: StoryItem,
    /// Its chapters, oldest first (parents name the tree).
    pub chapters: Vec<ChapterItem>,
}

/// A story and its chapter tree.
#[utoipa::path(get, path = "/stories/{story_id}", params(("story_id" = String, Path), After), tag = "queries",
    responses((status = 200, body = StoryView), (status = 400, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn story(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Path(story_id): Path<String>,
    Query(p): Query<After>,
) -> Result<AppJson<StoryView>, ApiError> {
    read_your_writes(&s, p.after.as_deref(), &headers).await?;
    let models = models(&s).await?;
    let row = models
        .story(&story_id)
        .await?
        .ok_or_else(|| ApiError::not_found("story"))?;
    let chapters = models
        .chapter_tree(&story_id)
        .await?
        .into_iter()
        .map(|c| ChapterItem {
            chapter_id: c.chapter_id,
            parent: c.parent,
            author: c.author,
            title: c.title,
            words: c.words,
            branched: c.branched,
            published: c.published,
            votes: c.votes,
        })
        .collect();
    Ok(AppJson(StoryView {
        story: row.into(),
        chapters,
    }))
}

/// A user's profile.
#[derive(Debug, Serialize, ToSchema)]
pub struct Profile {
    /// The user id.
    pub user_id: String,
    /// The username.
    pub username: String,
    /// XP.
    pub xp: i64,
    /// Level.
    pub level: i64,
    /// Stories written.
    pub stories: i64,
    /// Chapters written.
    pub chapters: i64,
    /// Branches written.
    pub branches: i64,
    /// Pull requests merged.
    pub merged_prs: i64,
    /// Up-votes received.
    pub upvotes: i64,
    /// Followers.
    pub followers: i64,
    /// Badges earned.
    pub badges: Vec<String>,
}

/// A user's profile: XP, level, badges, counts.
#[utoipa::path(get, path = "/users/{user_id}", params(("user_id" = String, Path), After), tag = "queries",
    responses((status = 200, body = Profile), (status = 400, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn profile(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Path(user_id): Path<String>,
    Query(p): Query<After>,
) -> Result<AppJson<Profile>, ApiError> {
    read_your_writes(&s, p.after.as_deref(), &headers).await?;
    let row = models(&s)
        .await?
        .profiles(std::slice::from_ref(&user_id), 1)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::not_found("user"))?;
    let [stories, chapters, branches, merged_prs, upvotes, followers] = row.counts;
    Ok(AppJson(Profile {
        user_id: row.user_id,
        username: row.username,
        xp: row.xp,
        level: row.level,
        stories,
        chapters,
        branches,
        merged_prs,
        upvotes,
        followers,
        badges: row.badges,
    }))
}

/// Inbox page parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct InboxParams {
    /// 1 to 100 (default 20).
    pub limit: Option<usize>,
    /// The `next` token of the previous page.
    pub cursor: Option<String>,
    /// Read your writes: wait until the read models passed this cursor.
    pub after: Option<String>,
}

/// A notification.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationItem {
    /// What kind (`new_follower`, `branch`, `pr_merged`, `level_up`, …).
    pub kind: String,
    /// The text.
    pub message: String,
    /// When (RFC 3339); pass it to `POST /users/me/inbox/read` to mark it and everything
    /// before it read.
    pub at: String,
    /// Whether the caller has read it.
    pub read: bool,
}

/// A page of the caller's inbox.
#[derive(Debug, Serialize, ToSchema)]
pub struct InboxPage {
    /// The notifications, oldest first.
    pub notifications: Vec<NotificationItem>,
    /// The token of the next page (`null`: last page).
    pub next: Option<String>,
    /// How many of all the caller's notifications are unread.
    pub unread: u64,
}

/// The caller's inbox, oldest first, in pages.
#[utoipa::path(get, path = "/users/me/inbox", params(InboxParams), tag = "queries", security(("token" = [])),
    responses((status = 200, body = InboxPage), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn inbox(
    State(s): State<ApiState>,
    me: Caller,
    headers: HeaderMap,
    Query(p): Query<InboxParams>,
) -> Result<AppJson<InboxPage>, ApiError> {
    read_your_writes(&s, p.after.as_deref(), &headers).await?;
    let (limit, offset) = (limit(p.limit)?, offset(p.cursor.as_deref())?);
    let models = models(&s).await?;
    let rows = models.inbox_page(&me.user_id, limit, offset).await?;
    let unread = models.unread(&me.user_id).await?;
    let next = next_page(offset, limit, rows.len());
    let notifications = rows
        .into_iter()
        .map(|n| NotificationItem {
            kind: n.kind,
            message: n.message,
            at: n.at,
            read: n.read,
        })
        .collect();
    Ok(AppJson(InboxPage {
        notifications,
        next,
        unread,
    }))
}

/// Events of one type.
#[derive(Debug, Serialize, ToSchema)]
pub struct TypeCount {
    /// The event type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// How many are in the log.
    pub count: i64,
}

/// Event counts per type, most frequent first.
#[utoipa::path(get, path = "/stats", params(After), tag = "queries",
    responses((status = 200, body = Vec<TypeCount>), (status = 400, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn stats(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Query(p): Query<After>,
) -> Result<AppJson<Vec<TypeCount>>, ApiError> {
    read_your_writes(&s, p.after.as_deref(), &headers).await?;
    let rows = models(&s).await?.stats().await?;
    Ok(AppJson(
        rows.into_iter()
            .map(|r| TypeCount {
                event_type: r.event_type,
                count: r.count,
            })
            .collect(),
    ))
}
