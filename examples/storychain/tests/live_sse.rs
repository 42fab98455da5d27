//! `GET /stream` end to end: a real server on a loopback port, a real HTTP client reading
//! server-sent events, a disconnect and a resume with `Last-Event-ID`.
//!
//! Waits are bounded by a hang guard only; nothing asserts on how long anything took.

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

mod common;
use common::Server;

const GUARD: Duration = Duration::from_secs(10);

/// POSTs `body`, which must succeed; the answer's body.
async fn post(s: &Server, path: &str, token: Option<&str>, body: Value) -> Value {
    let (status, value) = s.call(reqwest::Method::POST, path, token, Some(body)).await;
    assert!(status.is_success(), "{path}: {status} {value}");
    value
}

async fn comment(s: &Server, token: &str, story: &str, text: &str) {
    let body = json!({ "target": { "story_id": story }, "text": text });
    post(s, "/comments", Some(token), body).await;
}

async fn connect(s: &Server, query: &str, last_event_id: Option<&str>) -> reqwest::Response {
    let mut request = s.client.get(s.url(&format!("/stream?{query}")));
    if let Some(id) = last_event_id {
        request = request.header("Last-Event-ID", id);
    }
    request.send().await.unwrap()
}

/// One server-sent event.
#[derive(Debug)]
struct Frame {
    id: Option<String>,
    event: Option<String>,
    data: Value,
}

/// Reads SSE frames from a response body.
struct Frames {
    response: reqwest::Response,
    buffer: String,
}

impl Frames {
    fn new(response: reqwest::Response) -> Self {
        assert_eq!(response.status(), StatusCode::OK);
        let kind = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(kind.starts_with("text/event-stream"), "{kind}");
        Frames {
            response,
            buffer: String::new(),
        }
    }

    /// The next frame with data (comments, i.e. heartbeats, skipped), within the guard.
    async fn next(&mut self) -> Frame {
        tokio::time::timeout(GUARD, self.read())
            .await
            .expect("hang guard: an SSE frame")
    }

    async fn read(&mut self) -> Frame {
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (None, None, String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim_start().to_owned());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event = Some(v.trim_start().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if !data.is_empty() {
                    let data = serde_json::from_str(&data).expect("JSON data");
                    return Frame { id, event, data };
                }
            }
            let chunk = self
                .response
                .chunk()
                .await
                .unwrap()
                .expect("the stream is open");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_story_stream_delivers_live_and_resumes_after_last_event_id_with_exactly_what_was_missed()
{
    let server = Server::start().await;
    let user = post(
        &server,
        "/users",
        None,
        json!({ "username": "ada", "display_name": "Ada" }),
    )
    .await;
    let token = user["token"].as_str().unwrap().to_owned();
    let story = post(
        &server,
        "/stories",
        Some(&token),
        json!({ "title": "Live", "genre": "fantasy", "visibility": "public" }),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let query = format!("story={story}");

    // Live: a comment made through the API arrives.
    let mut frames = Frames::new(connect(&server, &query, None).await);
    comment(&server, &token, &story, "first").await;
    // A stream without `Last-Event-ID` starts where the process's follower is, so it may
    // begin with the story's creation if the follower had not handed that out yet.
    let first = loop {
        let frame = frames.next().await;
        if frame.data["type"] != "story.created" {
            break frame;
        }
    };
    assert_eq!(first.data["type"], "comment.posted");
    assert_eq!(first.data["payload"]["text"], "first");
    assert_eq!(first.data["payload"]["target"]["story_id"], story.as_str());
    let last_id = first.id.clone().expect("an SSE id");
    assert_eq!(first.data["cursor"], last_id.as_str());
    drop(frames); // the client goes away

    for n in 0..50 {
        comment(&server, &token, &story, &format!("missed {n}")).await;
    }

    // Resume: exactly the 50 missed, in order, then live again.
    let mut frames = Frames::new(connect(&server, &query, Some(&last_id)).await);
    let mut previous: recount::Cursor = last_id.parse().unwrap();
    for n in 0..50 {
        let frame = frames.next().await;
        assert_eq!(frame.data["type"], "comment.posted", "{frame:?}");
        assert_eq!(frame.data["payload"]["text"], format!("missed {n}"));
        let cursor: recount::Cursor = frame.id.as_deref().unwrap().parse().unwrap();
        assert!(cursor > previous, "in log order, each once");
        previous = cursor;
    }
    // A reader's bookmark is theirs, not the story's: never pushed.
    let bookmark = json!({ "target": { "story_id": story } });
    post(&server, "/bookmarks", Some(&token), bookmark).await;
    comment(&server, &token, &story, "live again").await;
    let live = frames.next().await;
    assert_eq!(live.data["payload"]["text"], "live again");
    assert!(live.event.is_none());
    drop(frames);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_requests_are_checked() {
    let server = Server::start().await;
    let error_code = |v: Value| v["error"]["code"].as_str().unwrap_or_default().to_owned();
    let user = post(
        &server,
        "/users",
        None,
        json!({ "username": "bob", "display_name": "Bob" }),
    )
    .await;
    let token = user["token"].as_str().unwrap().to_owned();
    let private = post(
        &server,
        "/stories",
        Some(&token),
        json!({ "title": "Secret", "genre": "mystery", "visibility": "private" }),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let bad = connect(&server, &format!("story={private}"), Some("not-a-cursor")).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(bad.json().await.unwrap()), "invalid_input");
    let anonymous = connect(&server, &format!("story={private}"), None).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let me = connect(&server, "me", None).await;
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
    let neither = connect(&server, "", None).await;
    assert_eq!(neither.status(), StatusCode::BAD_REQUEST);

    // The owner streams their private story; `?me` with a token streams notifications.
    let owner = server
        .client
        .get(server.url(&format!("/stream?story={private}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(owner.status(), StatusCode::OK);
    drop(owner);
    let inbox = server
        .client
        .get(server.url("/stream?me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(inbox.status(), StatusCode::OK);
    drop(inbox);
    server.stop().await;
}
