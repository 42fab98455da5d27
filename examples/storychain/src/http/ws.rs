//! `GET /ws`: a WebSocket per user: story rooms with presence, and the user's notifications.
//!
//! The upgrade takes the user's token (`Authorization: Bearer <token>`; 401 without). Then
//! every message is a JSON object with a `type`.
//!
//! From the client:
//!
//! | `type` | fields | what |
//! |---|---|---|
//! | `join` | `story_id`, `mode` (`reading` or `writing`, default `reading`), `after` (a cursor, optional) | enter the story's room: its events from then (or after `after`: what was missed first), and who else is there |
//! | `leave` | `story_id` | leave the room |
//!
//! From the server:
//!
//! | `type` | fields | when |
//! |---|---|---|
//! | `joined` | `story_id`, `present` (`user_id`, `username`, `mode` of each) | the room was entered |
//! | `presence` | `story_id`, `user_id`, `username`, `mode`, `change` (`joined` or `left`) | someone else entered or left (a dropped connection leaves every room) |
//! | `event` | `story_id`, `cursor`, `event` | one of the story's events (as `GET /stream` sends it) |
//! | `notification` | `cursor`, `event` | an event that notifies this user (as `GET /stream?me` sends it) |
//! | `resume` | `story_id` (absent for notifications), `resume_from` | the room's or the notifications' feed was cut off (a slow client): join again with `after` |
//! | `error` | `code`, `message` | a message was refused (`invalid_input`, `forbidden`, `not_found`, …) |
//!
//! The notifications start live, or after the cursor given as `?after=` on the upgrade.
//! Private stories' rooms admit their owner and collaborators only. Presence is this
//! process's: with several API processes, each knows the connections it holds.

use super::live::{end_reason, inbox_filter, story_filter, LiveEvent};
use super::{ApiError, ApiState, Caller};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use recount::live::{LiveFilter, Subscription};
use recount::Cursor;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use utoipa::IntoParams;
use uuid::Uuid;

/// Messages queued for one connection before its feeds wait (a slow client slows only its
/// own feeds, which are then cut off by the fan-out and told to resume).
const OUTBOX: usize = 256;

/// Who is in which story's room, in this process.
#[derive(Debug, Clone, Default)]
pub struct Rooms(Arc<Mutex<HashMap<String, BTreeMap<Uuid, Member>>>>);

#[derive(Debug, Clone)]
struct Member {
    user_id: String,
    username: String,
    mode: String,
    outbox: mpsc::Sender<Value>,
}

impl Member {
    fn describe(&self) -> Value {
        json!({ "user_id": self.user_id, "username": self.username, "mode": self.mode })
    }
}

impl Rooms {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, BTreeMap<Uuid, Member>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Puts `conn` in `story`'s room; tells the others; returns who is there (with it).
    fn join(&self, story: &str, conn: Uuid, member: Member) -> Vec<Value> {
        let mut rooms = self.lock();
        let room = rooms.entry(story.to_owned()).or_default();
        let change = presence(story, &member, "joined");
        for (_, other) in room.iter().filter(|(c, _)| **c != conn) {
            // Presence is best effort for a client that does not read: never wait on it.
            let _ = other.outbox.try_send(change.clone());
        }
        room.insert(conn, member);
        room.values().map(Member::describe).collect()
    }

    /// Takes `conn` out of `story`'s room and tells the others.
    fn leave(&self, story: &str, conn: Uuid) {
        let mut rooms = self.lock();
        let Some(room) = rooms.get_mut(story) else {
            return;
        };
        if let Some(member) = room.remove(&conn) {
            let change = presence(story, &member, "left");
            for other in room.values() {
                let _ = other.outbox.try_send(change.clone());
            }
        }
        if room.is_empty() {
            rooms.remove(story);
        }
    }

    /// Users present in `story`'s room.
    pub fn present(&self, story: &str) -> usize {
        self.lock().get(story).map_or(0, BTreeMap::len)
    }
}

fn presence(story: &str, member: &Member, change: &str) -> Value {
    json!({
        "type": "presence",
        "story_id": story,
        "user_id": member.user_id,
        "username": member.username,
        "mode": member.mode,
        "change": change,
    })
}

/// The upgrade's parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct WsParams {
    /// Notifications after this cursor first (default: live from now).
    pub after: Option<String>,
}

/// A message from the client.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Inbound {
    Join {
        story_id: String,
        #[serde(default)]
        mode: Mode,
        #[serde(default)]
        after: Option<String>,
    },
    Leave {
        story_id: String,
    },
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Mode {
    #[default]
    Reading,
    Writing,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Reading => "reading",
            Mode::Writing => "writing",
        }
    }
}

/// A WebSocket for the caller: story rooms with presence and the caller's notifications
/// (the messages are described in the module docs).
#[utoipa::path(get, path = "/ws", tag = "live", params(WsParams), security(("token" = [])),
    responses((status = 101, description = "Switching to the WebSocket protocol"), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn ws(
    State(s): State<ApiState>,
    me: Caller,
    Query(p): Query<WsParams>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let upgrade = upgrade
        .map_err(|e| ApiError::invalid(format!("not a WebSocket upgrade: {}", e.body_text())))?;
    let after = super::events::parse::<Cursor>("after", p.after.as_deref())?;
    if s.live.is_none() {
        return Err(ApiError::unavailable("live streams are not running"));
    }
    Ok(upgrade.on_upgrade(move |socket| session(s, me, after, socket)))
}

/// Forwards `feed` to `outbox` as messages made by `wrap`, until it ends (then a `resume`
/// message) or the connection goes.
fn forward(
    mut feed: Subscription,
    outbox: mpsc::Sender<Value>,
    story: Option<String>,
    full: bool,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(item) = feed.next().await {
            let message = match item {
                Ok(e) => {
                    let event = LiveEvent::of(&e, full);
                    match &story {
                        Some(id) => {
                            json!({ "type": "event", "story_id": id, "cursor": event.cursor, "event": event })
                        }
                        None => {
                            json!({ "type": "notification", "cursor": event.cursor, "event": event })
                        }
                    }
                }
                Err(error) => {
                    let _ = outbox
                        .send(json!({
                            "type": "resume",
                            "story_id": story,
                            "reason": end_reason(&error),
                            "resume_from": error.resume_from().to_string(),
                        }))
                        .await;
                    return;
                }
            };
            if outbox.send(message).await.is_err() {
                return;
            }
        }
    })
}

fn error_message(e: ApiError) -> Value {
    json!({ "type": "error", "code": e.code(), "message": e.message() })
}

/// One connection, from upgrade to close.
async fn session(s: ApiState, me: Caller, after: Option<Cursor>, socket: WebSocket) {
    let Some(fanout) = s.live.clone() else {
        return;
    };
    let conn = Uuid::now_v7();
    let connections = metrics::gauge!("storychain_ws_connections");
    connections.increment(1.0);
    let username = s
        .app
        .user(&me.user_id)
        .await
        .map(|u| u.username)
        .unwrap_or_default();
    let (mut sink, mut inbound) = socket.split();
    let (outbox, mut queued) = mpsc::channel::<Value>(OUTBOX);
    let writer = tokio::spawn(async move {
        while let Some(message) = queued.recv().await {
            if sink
                .send(Message::Text(message.to_string().into()))
                .await
                .is_err()
            {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let notifications = forward(
        fanout.subscribe(after, inbox_filter(&me.user_id)),
        outbox.clone(),
        None,
        true,
    );
    let mut joined: HashMap<String, JoinHandle<()>> = HashMap::new();
    while let Some(Ok(message)) = inbound.next().await {
        let text = match message {
            Message::Text(text) => text,
            Message::Close(_) => break,
            _ => continue,
        };
        let reply = match serde_json::from_str::<Inbound>(&text) {
            Err(e) => Some(error_message(ApiError::invalid(format!(
                "not a message this socket takes: {e}"
            )))),
            Ok(Inbound::Leave { story_id }) => {
                if let Some(feed) = joined.remove(&story_id) {
                    feed.abort();
                    s.rooms.leave(&story_id, conn);
                }
                None
            }
            Ok(Inbound::Join {
                story_id,
                mode,
                after,
            }) => match join(&s, &me, &story_id, after.as_deref()).await {
                Err(e) => Some(error_message(e)),
                Ok((filter, full, from)) => {
                    if let Some(previous) = joined.remove(&story_id) {
                        previous.abort();
                    }
                    let member = Member {
                        user_id: me.user_id.clone(),
                        username: username.clone(),
                        mode: mode.as_str().to_owned(),
                        outbox: outbox.clone(),
                    };
                    let present = s.rooms.join(&story_id, conn, member);
                    let feed = fanout.subscribe(from, filter);
                    let task = forward(feed, outbox.clone(), Some(story_id.clone()), full);
                    joined.insert(story_id.clone(), task);
                    Some(json!({ "type": "joined", "story_id": story_id, "present": present }))
                }
            },
        };
        if let Some(reply) = reply {
            if outbox.send(reply).await.is_err() {
                break;
            }
        }
    }
    // Closed or dropped: out of every room, feeds stopped.
    for (story_id, feed) in joined {
        feed.abort();
        s.rooms.leave(&story_id, conn);
    }
    notifications.abort();
    drop(outbox);
    let _ = writer.await;
    connections.decrement(1.0);
}

/// Checks a join: the story's feed, whether the caller sees texts, and where to start.
async fn join(
    s: &ApiState,
    me: &Caller,
    story_id: &str,
    after: Option<&str>,
) -> Result<(LiveFilter, bool, Option<Cursor>), ApiError> {
    let from = super::events::parse::<Cursor>("after", after)?;
    let (filter, full) = story_filter(s, story_id, Some(me)).await?;
    Ok((filter, full, from))
}
