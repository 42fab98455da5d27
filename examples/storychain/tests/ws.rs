//! `GET /ws` end to end: a real server, real WebSocket clients (tokio-tungstenite).
//!
//! Waits are bounded by a hang guard only; nothing asserts on how long anything took.

use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

mod common;
use common::Server;

const GUARD: Duration = Duration::from_secs(10);

/// One user's socket and everything it received.
struct Client {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    seen: Vec<Value>,
}

impl Client {
    async fn connect(s: &Server, token: &str) -> Client {
        let url = s.url("/ws").replace("http://", "ws://");
        let mut request = url.into_client_request().unwrap();
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let (socket, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("upgraded");
        assert_eq!(response.status(), 101);
        Client {
            socket,
            seen: Vec::new(),
        }
    }

    async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
            .unwrap();
    }

    /// Reads until a message for which `want` holds; returns it (all are kept in `seen`).
    async fn until(&mut self, what: &str, want: impl Fn(&Value) -> bool) -> Value {
        loop {
            let next = tokio::time::timeout(GUARD, self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("never came: {what}; seen {:#?}", self.seen));
            let Some(Ok(Message::Text(text))) = next else {
                continue;
            };
            let value: Value = serde_json::from_str(&text).unwrap();
            self.seen.push(value.clone());
            if want(&value) {
                return value;
            }
        }
    }

    async fn join(&mut self, story: &str, mode: &str) -> Value {
        self.send(json!({ "type": "join", "story_id": story, "mode": mode }))
            .await;
        self.until("joined or an error", |v| {
            (v["type"] == "joined" && v["story_id"] == story) || v["type"] == "error"
        })
        .await
    }
}

fn is(kind: &'static str) -> impl Fn(&Value) -> bool {
    move |v| v["type"] == kind
}

fn present(joined: &Value) -> Vec<String> {
    let mut users: Vec<String> = joined["present"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["username"].as_str().unwrap().to_owned())
        .collect();
    users.sort();
    users
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn story_rooms_share_presence_and_chapters_and_each_user_gets_only_their_notifications() {
    let s = Server::start().await;
    let (ada_id, ada) = s.register("ada").await;
    let (bob_id, bob) = s.register("bob").await;
    let (_, eve) = s.register("eve").await;
    // A private story of Ada's, with Bob as a collaborator.
    let body = json!({ "title": "Rooms", "genre": "fantasy", "visibility": "private" });
    let (status, v) = s.post("/stories", &ada, body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let story = v["id"].as_str().unwrap().to_owned();
    let root = json!({ "title": "Root", "content": "the start" });
    let (status, v) = s
        .post(&format!("/stories/{story}/chapters"), &ada, root)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let root = v["id"].as_str().unwrap().to_owned();
    let invite = json!({ "user_id": bob_id, "role": "writer" });
    let (status, v) = s
        .post(&format!("/stories/{story}/collaborators"), &ada, invite)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, v) = s
        .post(
            &format!("/stories/{story}/collaborators/me"),
            &bob,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");

    // Both in the room: each sees the other arrive.
    let mut a = Client::connect(&s, &ada).await;
    let joined = a.join(&story, "writing").await;
    assert_eq!(present(&joined), ["ada"], "{joined}");
    let mut b = Client::connect(&s, &bob).await;
    let joined = b.join(&story, "reading").await;
    assert_eq!(present(&joined), ["ada", "bob"], "{joined}");
    let arrived = a.until("bob's arrival", is("presence")).await;
    assert_eq!(
        (&arrived["username"], &arrived["change"], &arrived["mode"]),
        (&json!("bob"), &json!("joined"), &json!("reading"))
    );

    // A non-collaborator cannot enter the private story's room.
    let mut e = Client::connect(&s, &eve).await;
    let refused = e.join(&story, "reading").await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["code"], "forbidden", "{refused}");
    let unknown = e.join("no-such-story", "reading").await;
    assert_eq!(unknown["code"], "not_found", "{unknown}");
    e.send(json!({ "type": "shout" })).await;
    let bad = e.until("a refusal", is("error")).await;
    assert_eq!(bad["code"], "invalid_input", "{bad}");

    // Each sees the other's new chapters.
    for (token, title) in [(&bob, "Bob's branch"), (&ada, "Ada's branch")] {
        let branch = json!({ "title": title, "content": "words", "parent": root });
        let (status, v) = s
            .post(&format!("/stories/{story}/chapters"), token, branch)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
    }
    for client in [&mut a, &mut b] {
        for title in ["Bob's branch", "Ada's branch"] {
            let got = client
                .until(title, |v| {
                    v["type"] == "event" && v["event"]["payload"]["title"] == title
                })
                .await;
            assert_eq!(got["story_id"], story.as_str());
            assert_eq!(got["event"]["type"], "chapter.created");
            assert_eq!(got["cursor"], got["event"]["cursor"]);
        }
    }

    // Notifications go to the user they are for, and no one else.
    for (follower, followee) in [(&eve, &ada_id), (&eve, &bob_id)] {
        let (status, v) = s
            .post(
                "/users/me/following",
                follower,
                json!({ "user_id": followee }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }
    for (client, me) in [(&mut a, &ada_id), (&mut b, &bob_id)] {
        let note = client
            .until("a follower's notification", |v| {
                v["type"] == "notification" && v["event"]["type"] == "user.followed"
            })
            .await;
        assert_eq!(note["event"]["payload"]["followee"], me.as_str());
    }
    for (client, me) in [(&a, &ada_id), (&b, &bob_id)] {
        for note in client.seen.iter().filter(|v| v["type"] == "notification") {
            let p = &note["event"]["payload"];
            let mine = [
                &p["followee"],
                &p["user_id"],
                &p["author"],
                &p["parent_author"],
                &p["owner"],
            ]
            .iter()
            .any(|v| v.as_str() == Some(me.as_str()));
            assert!(mine, "{me} got another user's notification: {note}");
        }
    }
    assert!(
        e.seen.iter().all(|v| v["type"] != "notification"),
        "eve is notified of nothing: {:?}",
        e.seen
    );

    // Bob's connection drops (no close frame): Ada sees him leave.
    drop(b);
    let left = a
        .until("bob's departure", |v| {
            v["type"] == "presence" && v["change"] == "left"
        })
        .await;
    assert_eq!(left["username"], "bob");
    let mut b = Client::connect(&s, &bob).await;
    let joined = b.join(&story, "reading").await;
    assert_eq!(
        present(&joined),
        ["ada", "bob"],
        "bob once, not twice: {joined}"
    );
    b.send(json!({ "type": "leave", "story_id": story })).await;
    let left = a
        .until("bob leaving on purpose", |v| {
            v["type"] == "presence" && v["change"] == "left"
        })
        .await;
    assert_eq!(left["username"], "bob");
    drop((a, b, e));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_socket_takes_a_user_token() {
    let s = Server::start().await;
    let url = s.url("/ws").replace("http://", "ws://");
    match tokio_tungstenite::connect_async(url.as_str()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 401);
        }
        other => panic!("upgraded without a token: {:?}", other.map(|r| r.1)),
    }
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", "Bearer u.not-a-token".parse().unwrap());
    assert!(matches!(
        tokio_tungstenite::connect_async(request).await,
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 401
    ));
    // A plain GET with a valid token is no upgrade: a 400 in the app's error shape.
    let (_, token) = s.register("plain").await;
    let (status, v) = s.get("/ws", Some(&token)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(common::error_code(&v), "invalid_input", "{v}");
    s.stop().await;
}
