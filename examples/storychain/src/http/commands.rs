//! Command routes: extract, call the application service, answer what was written.

use super::types::*;
use super::{ApiError, ApiState, AppJson, Caller};
use crate::domain::Target;
use axum::extract::{Path, State};
use axum::http::StatusCode;

type Done = Result<AppJson<CommandResponse>, ApiError>;

fn done(written: crate::Written) -> Done {
    Ok(AppJson(written.into()))
}

fn target(t: TargetBody) -> Target {
    Target {
        story_id: t.story_id,
        chapter_id: t.chapter_id,
    }
}

/// Registers a user; the answer carries the user's API token, shown this once.
#[utoipa::path(post, path = "/users", request_body = Register, tag = "users",
    responses((status = 201, body = Registered), (status = 400, body = super::ErrorBody), (status = 409, body = super::ErrorBody), (status = 413, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn register(
    State(s): State<ApiState>,
    AppJson(body): AppJson<Register>,
) -> Result<(StatusCode, AppJson<Registered>), ApiError> {
    let (written, token) = s
        .app
        .register_with_token(&body.username, &body.display_name)
        .await?;
    let registered = Registered {
        user_id: written.id.clone(),
        token,
        written: written.into(),
    };
    Ok((StatusCode::CREATED, AppJson(registered)))
}

/// Updates the caller's profile.
#[utoipa::path(patch, path = "/users/me", request_body = UpdateProfile, tag = "users",
    security(("token" = [])), responses((status = 200, body = CommandResponse), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody), (status = 413, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn update_profile(
    State(s): State<ApiState>,
    me: Caller,
    AppJson(body): AppJson<UpdateProfile>,
) -> Done {
    done(
        s.app
            .update_profile(&me.user_id, &body.display_name, &body.bio)
            .await?,
    )
}

/// The caller follows a user.
#[utoipa::path(post, path = "/users/me/following", request_body = Follow, tag = "users",
    security(("token" = [])), responses((status = 200, body = CommandResponse), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody), (status = 413, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn follow(State(s): State<ApiState>, me: Caller, AppJson(body): AppJson<Follow>) -> Done {
    done(s.app.follow(&me.user_id, &body.user_id).await?)
}

/// Marks the caller's notifications read up to `through` (default: all of them).
#[utoipa::path(post, path = "/users/me/inbox/read", request_body = MarkRead, tag = "users",
    security(("token" = [])), responses((status = 200, body = CommandResponse), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody), (status = 413, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn mark_read(
    State(s): State<ApiState>,
    me: Caller,
    AppJson(body): AppJson<MarkRead>,
) -> Done {
    let through = body
        .through
        .as_deref()
        .map(|t| {
            chrono::DateTime::parse_from_rfc3339(t)
                .map(|d| d.with_timezone(&chrono::Utc))
                .map_err(|_| ApiError::invalid(format!("`through` is not an RFC 3339 time: `{t}`")))
        })
        .transpose()?;
    done(s.app.mark_inbox_read(&me.user_id, through).await?)
}

/// The caller stops following a user.
#[utoipa::path(delete, path = "/users/me/following/{user_id}", tag = "users",
    params(("user_id" = String, Path, description = "The user followed")),
    security(("token" = [])), responses((status = 200, body = CommandResponse), (status = 401, body = super::ErrorBody), (status = 409, body = super::ErrorBody), (status = 400, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn unfollow(State(s): State<ApiState>, me: Caller, Path(user_id): Path<String>) -> Done {
    done(s.app.unfollow(&me.user_id, &user_id).await?)
}

/// The caller creates a story (a draft).
#[utoipa::path(post, path = "/stories", request_body = StoryDetails, tag = "stories",
    security(("token" = [])), responses((status = 201, body = CommandResponse), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody), (status = 413, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn create_story(
    State(s): State<ApiState>,
    me: Caller,
    AppJson(body): AppJson<StoryDetails>,
) -> Result<(StatusCode, AppJson<CommandResponse>), ApiError> {
    let written = s
        .app
        .create_story(&me.user_id, &body.title, body.genre, body.visibility)
        .await?;
    Ok((StatusCode::CREATED, AppJson(written.into())))
}

/// The owner updates a story's details.
#[utoipa::path(patch, path = "/stories/{story_id}", request_body = StoryDetails, tag = "stories",
    params(("story_id" = String, Path)), security(("token" = [])),
    responses((status = 200, body = CommandResponse), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody), (status = 403, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody), (status = 413, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn update_story(
    State(s): State<ApiState>,
    me: Caller,
    Path(story_id): Path<String>,
    AppJson(body): AppJson<StoryDetails>,
) -> Done {
    s.app.existing_story(&story_id).await?;
    done(
        s.app
            .update_story(
                &story_id,
                &me.user_id,
                &body.title,
                body.genre,
                body.visibility,
            )
            .await?,
    )
}

/// The owner publishes a story.
#[utoipa::path(post, path = "/stories/{story_id}/publish", tag = "stories",
    params(("story_id" = String, Path)), security(("token" = [])),
    responses((status = 200, body = CommandResponse), (status = 401, body = super::ErrorBody), (status = 403, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody), (status = 400, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn publish_story(
    State(s): State<ApiState>,
    me: Caller,
    Path(story_id): Path<String>,
) -> Done {
    s.app.existing_story(&story_id).await?;
    done(s.app.publish_story(&story_id, &me.user_id).await?)
}

/// The owner archives a story.
#[utoipa::path(post, path = "/stories/{story_id}/archive", tag = "stories",
    params(("story_id" = String, Path)), security(("token" = [])),
    responses((status = 200, body = CommandResponse), (status = 401, body = super::ErrorBody), (status = 403, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody), (status = 400, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn archive_story(
    State(s): State<ApiState>,
    me: Caller,
    Path(story_id): Path<String>,
) -> Done {
    s.app.existing_story(&story_id).await?;
    done(s.app.archive_story(&story_id, &me.user_id).await?)
}

/// The caller writes a chapter: the first, a continuation, or a branch.
#[utoipa::path(post, path = "/stories/{story_id}/chapters", request_body = NewChapterBody, tag = "chapters",
    params(("story_id" = String, Path)), security(("token" = [])),
    responses((status = 201, body = CommandResponse), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody), (status = 403, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody), (status = 413, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn add_chapter(
    State(s): State<ApiState>,
    me: Caller,
    Path(story_id): Path<String>,
    AppJson(body): AppJson<NewChapterBody>,
) -> Result<(StatusCode, AppJson<CommandResponse>), ApiError> {
    s.app.existing_story(&story_id).await?;
    let written = s
        .app
        .add_chapter(
            &story_id,
            &me.user_id,
            &body.title,
            &body.content,
            body.parent.as_deref(),
        )
        .await?;
    Ok((StatusCode::CREATED, AppJson(written.into())))
}

/// The author edits a chapter.
#[utoipa::path(patch, path = "/stories/{story_id}/chapters/{chapter_id}", request_body = EditChapter, tag = "chapters",
    params(("story_id" = String, Path), ("chapter_id" = String, Path)), security(("token" = [])),
    responses((status = 200, body = CommandResponse), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody), (status = 403, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody), (status = 413, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn edit_chapter(
    State(s): State<ApiState>,
    me: Caller,
    Path((story_id, chapter_id)): Path<(String, String)>,
    AppJson(body): AppJson<EditChapter>,
) -> Done {
    s.app.existing_story(&story_id).await?;
    done(
        s.app
            .edit_chapter(
                &story_id,
                &chapter_id,
                &me.user_id,
                &body.title,
                &body.content,
            )
            .await?,
    )
}

/// The author publishes a chapter.
#[utoipa::path(post, path = "/stories/{story_id}/chapters/{chapter_id}/publish", tag = "chapters",
    params(("story_id" = String, Path), ("chapter_id" = String, Path)), security(("token" = [])),
    responses((status = 200, body = CommandResponse), (status = 401, body = super::ErrorBody), (status = 403, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody), (status = 400, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn publish_chapter(
    State(s): State<ApiState>,
    me: Caller,
    Path((story_id, chapter_id)): Path<(String, String)>,
) -> Done {
    s.app.existing_story(&story_id).await?;
    done(
        s.app
            .publish_chapter(&story_id, &chapter_id, &me.user_id)
            .await?,
    )
}

/// The owner or an editor invites a collaborator.
#[utoipa::path(post, path = "/stories/{story_id}/collaborators", request_body = Invite, tag = "collaboration",
    params(("story_id" = String, Path)), security(("token" = [])),
    responses((status = 200, body = CommandResponse), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody), (status = 403, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody), (status = 413, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn invite(
    State(s): State<ApiState>,
    me: Caller,
    Path(story_id): Path<String>,
    AppJson(body): AppJson<Invite>,
) -> Done {
    let user = body
        .user_id
        .ok_or_else(|| ApiError::invalid("missing field `user_id`"))?;
    done(
        s.app
            .invite(&story_id, &me.user_id, &user, body.role)
            .await?,
    )
}

/// The story's owner registers a webhook for the story's events; the answer's `id` is the
/// webhook's. Deliveries are POSTs of a JSON envelope signed with the secret.
#[utoipa::path(post, path = "/stories/{story_id}/webhooks", request_body = RegisterWebhook, tag = "webhooks",
    params(("story_id" = String, Path)), security(("token" = [])),
    responses((status = 201, body = CommandResponse), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody), (status = 403, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 413, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn register_webhook(
    State(s): State<ApiState>,
    me: Caller,
    Path(story_id): Path<String>,
    AppJson(body): AppJson<RegisterWebhook>,
) -> Result<(StatusCode, AppJson<CommandResponse>), ApiError> {
    let written = s
        .app
        .register_webhook(
            &story_id,
            &me.user_id,
            &body.url,
            &body.event_types,
            &body.secret,
        )
        .await?;
    Ok((StatusCode::CREATED, AppJson(written.into())))
}

/// The webhook's owner removes it: nothing recorded after this is delivered to it.
#[utoipa::path(delete, path = "/webhooks/{webhook_id}", tag = "webhooks",
    params(("webhook_id" = String, Path)), security(("token" = [])),
    responses((status = 200, body = CommandResponse), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody), (status = 403, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn remove_webhook(
    State(s): State<ApiState>,
    me: Caller,
    Path(webhook_id): Path<String>,
) -> Done {
    done(s.app.remove_webhook(&webhook_id, &me.user_id).await?)
}

/// The caller accepts an invitation.
#[utoipa::path(post, path = "/stories/{story_id}/collaborators/me", tag = "collaboration",
    params(("story_id" = String, Path)), security(("token" = [])),
    responses((status = 200, body = CommandResponse), (status = 401, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody), (status = 400, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn join(State(s): State<ApiState>, me: Caller, Path(story_id): Path<String>) -> Done {
    s.app.existing_story(&story_id).await?;
    done(s.app.join(&story_id, &me.user_id).await?)
}

/// The caller leaves a story's collaborators.
#[utoipa::path(delete, path = "/stories/{story_id}/collaborators/me", tag = "collaboration",
    params(("story_id" = String, Path)), security(("token" = [])),
    responses((status = 200, body = CommandResponse), (status = 401, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody), (status = 400, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn leave(State(s): State<ApiState>, me: Caller, Path(story_id): Path<String>) -> Done {
    s.app.existing_story(&story_id).await?;
    done(s.app.leave(&story_id, &me.user_id).await?)
}

/// The owner changes a collaborator's role.
#[utoipa::path(put, path = "/stories/{story_id}/collaborators/{user_id}", request_body = Invite, tag = "collaboration",
    params(("story_id" = String, Path), ("user_id" = String, Path)), security(("token" = [])),
    responses((status = 200, body = CommandResponse), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody), (status = 403, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody), (status = 413, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn change_role(
    State(s): State<ApiState>,
    me: Caller,
    Path((story_id, user_id)): Path<(String, String)>,
    AppJson(body): AppJson<Invite>,
) -> Done {
    done(
        s.app
            .change_role(&story_id, &me.user_id, &user_id, body.role)
            .await?,
    )
}

/// The caller proposes a chapter as a pull request.
#[utoipa::path(post, path = "/stories/{story_id}/pulls", request_body = OpenPull, tag = "pull requests",
    params(("story_id" = String, Path)), security(("token" = [])),
    responses((status = 201, body = CommandResponse), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody), (status = 413, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn open_pr(
    State(s): State<ApiState>,
    me: Caller,
    Path(story_id): Path<String>,
    AppJson(body): AppJson<OpenPull>,
) -> Result<(StatusCode, AppJson<CommandResponse>), ApiError> {
    let written = s
        .app
        .open_pr(
            &story_id,
            &body.base_chapter,
            &me.user_id,
            &body.title,
            &body.content,
        )
        .await?;
    Ok((StatusCode::CREATED, AppJson(written.into())))
}

/// The caller reviews a pull request.
#[utoipa::path(post, path = "/pulls/{pr_id}/reviews", request_body = Review, tag = "pull requests",
    params(("pr_id" = String, Path)), security(("token" = [])),
    responses((status = 200, body = CommandResponse), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody), (status = 403, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody), (status = 413, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn review_pr(
    State(s): State<ApiState>,
    me: Caller,
    Path(pr_id): Path<String>,
    AppJson(body): AppJson<Review>,
) -> Done {
    s.app.existing_pr(&pr_id).await?;
    done(
        s.app
            .review_pr(&pr_id, &me.user_id, body.verdict, &body.comment)
            .await?,
    )
}

/// A maintainer merges an approved pull request.
#[utoipa::path(post, path = "/pulls/{pr_id}/merge", tag = "pull requests",
    params(("pr_id" = String, Path)), security(("token" = [])),
    responses((status = 200, body = CommandResponse), (status = 401, body = super::ErrorBody), (status = 403, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody), (status = 400, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn merge_pr(State(s): State<ApiState>, me: Caller, Path(pr_id): Path<String>) -> Done {
    done(s.app.merge_pr(&pr_id, &me.user_id).await?)
}

/// A maintainer rejects a pull request.
#[utoipa::path(post, path = "/pulls/{pr_id}/reject", request_body = Reject, tag = "pull requests",
    params(("pr_id" = String, Path)), security(("token" = [])),
    responses((status = 200, body = CommandResponse), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody), (status = 403, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody), (status = 413, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn reject_pr(
    State(s): State<ApiState>,
    me: Caller,
    Path(pr_id): Path<String>,
    AppJson(body): AppJson<Reject>,
) -> Done {
    done(s.app.reject_pr(&pr_id, &me.user_id, &body.reason).await?)
}

/// The caller votes on a story or chapter; voting again replaces the vote.
#[utoipa::path(put, path = "/votes", request_body = Vote, tag = "engagement", security(("token" = [])),
    responses((status = 200, body = CommandResponse), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody), (status = 413, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn vote(State(s): State<ApiState>, me: Caller, AppJson(body): AppJson<Vote>) -> Done {
    s.app.existing_target(&body.target.story_id).await?;
    done(
        s.app
            .vote(&me.user_id, &target(body.target), body.value)
            .await?,
    )
}

/// The caller comments on a story or chapter.
#[utoipa::path(post, path = "/comments", request_body = Comment, tag = "engagement", security(("token" = [])),
    responses((status = 200, body = CommandResponse), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 413, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn comment(
    State(s): State<ApiState>,
    me: Caller,
    AppJson(body): AppJson<Comment>,
) -> Done {
    s.app.existing_target(&body.target.story_id).await?;
    done(
        s.app
            .comment(&me.user_id, &target(body.target), &body.text)
            .await?,
    )
}

/// The caller bookmarks a story or chapter.
#[utoipa::path(post, path = "/bookmarks", request_body = Bookmark, tag = "engagement", security(("token" = [])),
    responses((status = 200, body = CommandResponse), (status = 401, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody), (status = 400, body = super::ErrorBody), (status = 413, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn bookmark(
    State(s): State<ApiState>,
    me: Caller,
    AppJson(body): AppJson<Bookmark>,
) -> Done {
    s.app.existing_target(&body.target.story_id).await?;
    done(s.app.bookmark(&me.user_id, &target(body.target)).await?)
}

/// The caller records reading progress on a chapter.
#[utoipa::path(put, path = "/progress", request_body = Progress, tag = "engagement", security(("token" = [])),
    responses((status = 200, body = CommandResponse), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody), (status = 413, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn progress(
    State(s): State<ApiState>,
    me: Caller,
    AppJson(body): AppJson<Progress>,
) -> Done {
    s.app.existing_target(&body.target.story_id).await?;
    done(
        s.app
            .read(&me.user_id, &target(body.target), body.percent)
            .await?,
    )
}
