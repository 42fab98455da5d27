//! Request and response bodies (their JSON schemas are in the OpenAPI document).

use crate::domain::{Genre, Role, Verdict, Visibility};
use crate::Written;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One event a command wrote.
#[derive(Debug, Serialize, ToSchema)]
pub struct WrittenEventBody {
    /// The stream, e.g. `story-0192…`.
    pub stream: String,
    /// Its version in the stream.
    pub version: u64,
    /// Its type, e.g. `story.created`.
    #[serde(rename = "type")]
    pub event_type: String,
}

/// What an accepted command wrote.
#[derive(Debug, Serialize, ToSchema)]
pub struct CommandResponse {
    /// The id of what the command made or changed (user, story, chapter, pull request).
    pub id: String,
    /// The events written, in order.
    pub events: Vec<WrittenEventBody>,
    /// The global-log cursor of the last event written (`null` when nothing was written).
    /// Pass it as `?after=` (or the `X-After-Cursor` header) to a query to read your writes.
    pub cursor: Option<String>,
}

impl From<Written> for CommandResponse {
    fn from(w: Written) -> Self {
        CommandResponse {
            id: w.id,
            events: w
                .events
                .into_iter()
                .map(|e| WrittenEventBody {
                    stream: e.stream,
                    version: e.version,
                    event_type: e.event_type.to_owned(),
                })
                .collect(),
            cursor: w.cursor.map(|c| c.to_string()),
        }
    }
}

/// `POST /users`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Register {
    /// 3 to 20 characters: lowercase letters, digits, `_`.
    pub username: String,
    /// 1 to 60 characters.
    pub display_name: String,
}

/// A registered user and their API token (shown once; only its hash is stored).
#[derive(Debug, Serialize, ToSchema)]
pub struct Registered {
    /// The new user's id.
    pub user_id: String,
    /// `Authorization: Bearer <token>` for every acting route.
    pub token: String,
    /// What the registration wrote.
    pub written: CommandResponse,
}

/// `PATCH /users/me`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProfile {
    /// 1 to 60 characters.
    pub display_name: String,
    /// Free text.
    #[serde(default)]
    pub bio: String,
}

/// `POST /users/me/following`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Follow {
    /// The user to follow.
    pub user_id: String,
}

/// `POST /stories`, `PATCH /stories/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StoryDetails {
    /// 1 to 120 characters.
    pub title: String,
    /// The genre.
    #[schema(value_type = String, example = "fantasy")]
    pub genre: Genre,
    /// Who may write.
    #[schema(value_type = String, example = "public")]
    pub visibility: Visibility,
}

/// `POST /stories/{id}/chapters`: the first chapter (no parent), a continuation, or a branch
/// (a parent that already has a continuation).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewChapterBody {
    /// The title.
    pub title: String,
    /// The text.
    pub content: String,
    /// The chapter it continues (`null` for the first).
    #[serde(default)]
    pub parent: Option<String>,
}

/// `PATCH /stories/{id}/chapters/{chapter_id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditChapter {
    /// The title.
    pub title: String,
    /// The text.
    pub content: String,
}

/// `POST /stories/{id}/collaborators`, `PUT /stories/{id}/collaborators/{user_id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Invite {
    /// Who (ignored by `PUT`, which names the user in its path).
    #[serde(default)]
    pub user_id: Option<String>,
    /// `editor` or `writer`.
    #[schema(value_type = String, example = "writer")]
    pub role: Role,
}

/// `POST /stories/{id}/pulls`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenPull {
    /// The chapter the proposed chapter continues.
    pub base_chapter: String,
    /// The title.
    pub title: String,
    /// The text.
    pub content: String,
}

/// `POST /pulls/{id}/reviews`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Review {
    /// `approve` or `request_changes`.
    #[schema(value_type = String, example = "approve")]
    pub verdict: Verdict,
    /// A comment.
    #[serde(default)]
    pub comment: String,
}

/// `POST /pulls/{id}/reject`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reject {
    /// Why.
    pub reason: String,
}

/// What engagement is about: a story, or one of its chapters.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetBody {
    /// The story.
    pub story_id: String,
    /// The chapter, when the target is a chapter.
    #[serde(default)]
    pub chapter_id: Option<String>,
}

/// `PUT /votes`: +1 or -1; voting again replaces the vote.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Vote {
    /// What is voted on.
    pub target: TargetBody,
    /// `1` or `-1`.
    pub value: i8,
}

/// `POST /comments`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Comment {
    /// What is commented on.
    pub target: TargetBody,
    /// 1 to 2,000 characters.
    pub text: String,
}

/// `POST /bookmarks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Bookmark {
    /// What is bookmarked.
    pub target: TargetBody,
}

/// `PUT /progress`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Progress {
    /// The chapter read.
    pub target: TargetBody,
    /// 0 to 100.
    pub percent: u8,
}

/// Mark notifications read.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkRead {
    /// Every notification at or before this time (RFC 3339, a notification's `at`) is read;
    /// absent: all of them, as of now.
    pub through: Option<String>,
}

/// `POST /stories/{id}/webhooks`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterWebhook {
    /// Where deliveries are POSTed: an absolute `http` or `https` URL.
    #[schema(example = "https://example.com/hooks/storychain")]
    pub url: String,
    /// The event types to receive (at least one), e.g. `pr.merged`, `comment.posted`.
    pub event_types: Vec<String>,
    /// 16 to 256 bytes; each delivery carries `X-StoryChain-Signature: sha256=<hex>`, the
    /// HMAC-SHA256 of the body under it. Never shown again.
    pub secret: String,
}

impl std::fmt::Debug for RegisterWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterWebhook")
            .field("url", &self.url)
            .field("event_types", &self.event_types)
            .field("secret", &"<hidden>")
            .finish()
    }
}
