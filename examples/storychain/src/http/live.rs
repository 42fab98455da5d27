//! `GET /stream`: live events over server-sent events, resumable with `Last-Event-ID`.
//!
//! Fed by the process's one [`Fanout`] (started by `serve`). Each SSE event's `id` is the
//! event's cursor, so a client that reconnects with `Last-Event-ID` gets exactly what came
//! after the last event it saw: what it missed from the store, then live. A client that does
//! not keep up is cut off: its stream ends with an `end` event (reason and `resume_from`) and
//! it reconnects with `Last-Event-ID`.

use super::{ApiError, ApiState, Caller};
use crate::domain::{story_events, story_of, StoryStatus, Visibility};
use axum::extract::{FromRequestParts, Query, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::response::sse::{Event, KeepAlive, Sse};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use recount::live::{Fanout, LiveError, LiveFilter};
use recount::{Cursor, LogFilter, RecordedEvent};
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};

impl LiveEvent {
    /// `e` as pushed: its texts (`content`) only when `full` (members of the story).
    ///
    /// The stored payload is passed on as it is (one copy, no parsing) unless a text must be
    /// taken out: an event is pushed to every subscriber that wants it, so this runs once per
    /// delivery.
    pub(super) fn of(e: &RecordedEvent, full: bool) -> LiveEvent {
        let raw = |text: &str| serde_json::value::RawValue::from_string(text.to_owned()).ok();
        let strip = !full && e.payload.contains("\"content\"");
        let payload = if strip {
            let mut value: serde_json::Value =
                serde_json::from_str(&e.payload).unwrap_or(serde_json::Value::Null);
            if let Some(map) = value.as_object_mut() {
                map.remove("content");
            }
            serde_json::value::to_raw_value(&value).ok()
        } else {
            raw(&e.payload)
        };
        let payload = payload.or_else(|| raw("null")).expect("`null` is JSON");
        LiveEvent {
            event_type: e.event_type.clone(),
            stream: e.stream.to_string(),
            version: e.version,
            cursor: e.cursor.to_string(),
            recorded_at: e.recorded_at,
            payload,
        }
    }
}

/// Why a live stream ended: `lagged`, `unavailable` or `stopped`.
pub(super) fn end_reason(error: &LiveError) -> &'static str {
    match error {
        LiveError::Lagged { .. } => "lagged",
        LiveError::Store { .. } => "unavailable",
        _ => "stopped",
    }
}

/// How often an idle stream sends a comment, so proxies keep it open.
const HEARTBEAT: Duration = Duration::from_secs(15);

impl ApiState {
    /// The API with live streams from `fanout` (without one, `GET /stream` answers 503).
    pub fn with_live(mut self, fanout: Fanout) -> Self {
        self.live = Some(fanout);
        self
    }
}

/// What to stream: exactly one of `story` and `me`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StreamParams {
    /// A story's events: public stories for anyone, private ones for their owner and
    /// collaborators.
    pub story: Option<String>,
    /// The caller's notifications (`?me`; a token is required).
    pub me: Option<String>,
}

/// One event as streamed (the SSE `data`; the SSE `id` is its cursor).
#[derive(Debug, Serialize, ToSchema)]
pub struct LiveEvent {
    /// Its type, e.g. `comment.posted`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Its stream.
    pub stream: String,
    /// Its version in the stream.
    pub version: u64,
    /// Its position in the global log (also the SSE `id`).
    pub cursor: String,
    /// When it was recorded (RFC 3339).
    #[schema(value_type = String, format = DateTime)]
    pub recorded_at: DateTime<Utc>,
    /// The payload (without chapter and pull-request texts for callers outside the story).
    #[schema(value_type = Object)]
    pub payload: Box<serde_json::value::RawValue>,
}

/// Live events of a story (`?story=<id>`) or of the caller's inbox (`?me`), as server-sent
/// events. Resume with `Last-Event-ID`: the stream starts right after that cursor.
///
/// `?me` streams the events that notify the caller by naming them: everything in
/// `inbox-<caller>` (notifications sent by process managers, read marks), level-ups and
/// badges in `user-<caller>`, new followers, invitations, reviews and rejections of their
/// pull requests, branches of their chapters and milestones of their stories. Notifications
/// the inbox read model derives from other users' relations (a followed author's new story,
/// comments, pull requests and collaborator changes on the caller's stories) are not pushed:
/// read them from `GET /users/me/inbox`. Access to a private story is checked on connect.
#[utoipa::path(get, path = "/stream", params(StreamParams,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this cursor")),
    tag = "live", security((), ("token" = [])),
    responses((status = 200, content_type = "text/event-stream", body = LiveEvent),
        (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody),
        (status = 403, body = super::ErrorBody), (status = 404, body = super::ErrorBody),
        (status = 503, body = super::ErrorBody)))]
pub async fn stream(
    State(s): State<ApiState>,
    mut parts: Parts,
    Query(p): Query<StreamParams>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let from = match parts.headers.get("last-event-id") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|t| t.trim().parse::<Cursor>().ok())
                .ok_or_else(|| ApiError::invalid("`Last-Event-ID` is not a cursor"))?,
        ),
    };
    let caller = if parts.headers.contains_key(AUTHORIZATION) {
        Some(Caller::from_request_parts(&mut parts, &s).await?)
    } else {
        None
    };
    let (filter, full) = match (p.story, p.me, caller) {
        (Some(story), None, caller) => story_filter(&s, &story, caller.as_ref()).await?,
        (None, Some(_), Some(me)) => (inbox_filter(&me.user_id), true),
        (None, Some(_), None) => return Err(ApiError::unauthorized()),
        _ => return Err(ApiError::invalid("give exactly one of `story` and `me`")),
    };
    let fanout = s
        .live
        .as_ref()
        .ok_or_else(|| ApiError::unavailable("live streams are not running"))?;
    let events = fanout
        .subscribe(from, filter)
        .into_stream()
        .scan(false, move |ended, item| {
            let out = if *ended {
                None
            } else {
                *ended = item.is_err();
                Some(Ok(sse_event(item, full)))
            };
            futures::future::ready(out)
        });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(HEARTBEAT)))
}

/// A story's events, if the caller may read it; and whether they see the texts.
pub(super) async fn story_filter(
    s: &ApiState,
    story_id: &str,
    caller: Option<&Caller>,
) -> Result<(LiveFilter, bool), ApiError> {
    let story = s.app.story(story_id).await?;
    if story.status == StoryStatus::None {
        return Err(ApiError::not_found("story"));
    }
    let member = match caller {
        Some(c) => s.app.role_of(&story, story_id, &c.user_id).await?.is_some(),
        None => false,
    };
    if story.visibility != Some(Visibility::Public) && !member {
        return Err(match caller {
            None => ApiError::unauthorized(),
            Some(_) => ApiError::forbidden("the story is private"),
        });
    }
    let id = story_id.to_owned();
    // The story's public events only: never a reader's bookmarks or reading progress.
    let filter =
        LiveFilter::from(story_events()).when(move |e| story_of(e).as_deref() == Some(&*id));
    Ok((filter, member))
}

/// The events that notify `user_id` by naming them (see [`stream`]).
pub(super) fn inbox_filter(user_id: &str) -> LiveFilter {
    const TYPES: [&str; 9] = [
        "notification.sent",
        "inbox.read",
        "user.leveled_up",
        "user.badge_earned",
        "user.followed",
        "collaborator.invited",
        "pr.reviewed",
        "pr.rejected",
        "chapter.branched",
    ];
    let log = TYPES
        .into_iter()
        .chain(["story.milestone_reached"])
        .fold(LogFilter::all(), LogFilter::event_type);
    let me = user_id.to_owned();
    LiveFilter::from(log).when(move |e| notifies(e, &me))
}

fn notifies(e: &RecordedEvent, me: &str) -> bool {
    #[derive(Deserialize)]
    struct Names {
        followee: Option<String>,
        user_id: Option<String>,
        author: Option<String>,
        parent_author: Option<String>,
        owner: Option<String>,
    }
    let own_stream = |category| e.stream.category() == category && e.stream.id() == me;
    let Ok(n) = serde_json::from_str::<Names>(&e.payload) else {
        return false;
    };
    let is = |v: &Option<String>| v.as_deref() == Some(me);
    match e.event_type.as_str() {
        "notification.sent" | "inbox.read" => own_stream("inbox"),
        "user.leveled_up" | "user.badge_earned" => own_stream("user"),
        "user.followed" => is(&n.followee),
        "collaborator.invited" => is(&n.user_id),
        "pr.reviewed" | "pr.rejected" => is(&n.author),
        "chapter.branched" => is(&n.parent_author) && !is(&n.author),
        "story.milestone_reached" => is(&n.owner),
        _ => false,
    }
}

/// One SSE event: a logged event (id = its cursor), or the `end` of the stream.
fn sse_event(item: Result<std::sync::Arc<RecordedEvent>, LiveError>, full: bool) -> Event {
    match item {
        Ok(e) => {
            let item = LiveEvent::of(&e, full);
            let data = serde_json::to_string(&item).unwrap_or_else(|_| "{}".to_owned());
            Event::default().id(e.cursor.to_string()).data(data)
        }
        Err(error) => {
            let reason = end_reason(&error);
            tracing::info!(%error, "live stream ended");
            let data = serde_json::json!({
                "reason": reason,
                "resume_from": error.resume_from().to_string(),
            });
            Event::default().event("end").data(data.to_string())
        }
    }
}
