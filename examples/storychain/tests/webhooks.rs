//! Webhooks end to end: a real server, a real receiver on another loopback port, real POSTs.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use recount::{EventStore, StreamId};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use storychain::http::{ServeOptions, WebhookOptions};
use storychain::webhooks::{verify, Envelope};

mod common;
use common::{error_code, Server, ADMIN};

const SECRET: &str = "a-secret-of-some-length";

/// One POST the receiver got.
#[derive(Debug, Clone)]
struct Delivery {
    event_id: String,
    signed: bool,
    accepted: bool,
    envelope: Envelope,
}

/// A webhook receiver: fails the first `fail_first` attempts of each event id, or every
/// attempt while `down`; checks each signature.
#[derive(Default)]
struct Receiver {
    fail_first: u32,
    down: AtomicBool,
    seen: Mutex<HashMap<String, u32>>,
    log: Mutex<Vec<Delivery>>,
}

impl Receiver {
    fn deliveries(&self) -> Vec<Delivery> {
        self.log.lock().unwrap().clone()
    }

    fn accepted(&self, event_id: &str) -> usize {
        self.deliveries()
            .iter()
            .filter(|d| d.event_id == event_id && d.accepted)
            .count()
    }
}

async fn receive(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> AxumStatus {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let event_id = header("x-storychain-event-id");
    let signed = verify(SECRET.as_bytes(), &body, &header("x-storychain-signature"));
    let envelope: Envelope = serde_json::from_slice(&body).expect("an envelope");
    let attempt = {
        let mut seen = r.seen.lock().unwrap();
        let n = seen.entry(event_id.clone()).or_default();
        *n += 1;
        *n
    };
    let accepted = signed && !r.down.load(Ordering::SeqCst) && attempt > r.fail_first;
    r.log.lock().unwrap().push(Delivery {
        event_id,
        signed,
        accepted,
        envelope,
    });
    if accepted {
        AxumStatus::NO_CONTENT
    } else {
        AxumStatus::SERVICE_UNAVAILABLE
    }
}

/// Starts `receiver` on a free loopback port; returns its URL.
async fn listen(receiver: Arc<Receiver>) -> String {
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(receiver);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/hook")
}

/// A server whose webhook attempts are quick to retry (4 attempts, 10 to 50 ms apart), and
/// go to this machine only.
async fn server() -> Server {
    Server::start_with(ServeOptions {
        webhooks: WebhookOptions {
            timeout: Duration::from_secs(5),
            attempts: 4,
            backoff: (Duration::from_millis(10), Duration::from_millis(50)),
            allowed_hosts: Some(vec!["127.0.0.1".into()]),
        },
        ..ServeOptions::default()
    })
    .await
}

/// Waits for `done`; fails after 20 s.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The id of the last event a command wrote.
async fn event_id(s: &Server, written: &Value) -> String {
    let last = written["events"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    let stream = StreamId::parse(last["stream"].as_str().unwrap()).unwrap();
    let version = last["version"].as_u64().unwrap();
    let events = s
        .app
        .store()
        .read_stream(&stream, version, 1)
        .await
        .unwrap();
    events[0].id.to_string()
}

async fn comment(s: &Server, token: &str, story: &str, text: &str) -> Value {
    let body = json!({ "target": { "story_id": story }, "text": text });
    let (status, v) = s.post("/comments", token, body).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_webhook_is_delivered_signed_once_in_effect_through_two_failures() {
    let receiver = Arc::new(Receiver {
        fail_first: 2,
        ..Receiver::default()
    });
    let url = listen(receiver.clone()).await;
    let s = server().await;
    let (_, owner) = s.register("owner").await;
    let (_, reader) = s.register("reader").await;
    let (story, _) = s.story_with_root(&owner, "Hooked", "mystery").await;
    let path = format!("/stories/{story}/webhooks");
    let hook = json!({ "url": url, "event_types": ["comment.posted"], "secret": SECRET });

    // Refusals write nothing.
    s.settled().await;
    let before = s.log().await.len();
    let (status, v) = s.post(&path, &reader, hook.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "not the owner: {v}");
    let mut bad = hook.clone();
    bad["event_types"] = json!(["user.registered"]);
    let (status, v) = s.post(&path, &owner, bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        error_code(&v) == "invalid_input" && v.to_string().contains("event_types"),
        "{v}"
    );
    let mut bad = hook.clone();
    bad["url"] = json!("file:///etc/passwd");
    let (status, v) = s.post(&path, &owner, bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    let mut bad = hook.clone();
    bad["url"] = json!("https://example.com/hook");
    let (status, v) = s.post(&path, &owner, bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "not an allowed host: {v}");
    assert!(v.to_string().contains("example.com"), "{v}");
    let mut bad = hook.clone();
    bad["secret"] = json!("short");
    let (status, v) = s.post(&path, &owner, bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    s.settled().await;
    assert_eq!(
        s.log().await.len(),
        before,
        "a refused registration wrote nothing"
    );

    let (status, v) = s.post(&path, &owner, hook).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["events"][0]["type"], "webhook.registered");
    let webhook_id = v["id"].as_str().unwrap().to_owned();

    let written = comment(&s, &reader, &story, "What a twist").await;
    let id = event_id(&s, &written).await;
    // Not asked for: a vote on the same story.
    let vote = json!({ "target": { "story_id": story }, "value": 1 });
    let (status, v) = s
        .call(reqwest::Method::PUT, "/votes", Some(&reader), Some(vote))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    until("the comment accepted", || receiver.accepted(&id) == 1).await;
    s.settled().await;

    let deliveries = receiver.deliveries();
    let attempts: Vec<&Delivery> = deliveries.iter().filter(|d| d.event_id == id).collect();
    assert_eq!(attempts.len(), 3, "two failed attempts, then one accepted");
    assert_eq!(
        attempts.iter().map(|d| d.accepted).collect::<Vec<_>>(),
        [false, false, true]
    );
    for d in &attempts {
        assert!(d.signed, "every attempt carries a valid signature");
        assert_eq!(d.envelope.id.to_string(), id, "the same event id each time");
        assert_eq!(d.envelope.event_type, "comment.posted");
        assert_eq!(d.envelope.story_id, story);
        assert_eq!(d.envelope.webhook_id, webhook_id);
        assert_eq!(d.envelope.payload["text"], "What a twist");
    }
    assert_eq!(
        deliveries.len(),
        3,
        "nothing else was delivered: the vote was not asked for"
    );
    let (status, letters) = s.get("/admin/dead-letters", Some(ADMIN)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(letters, json!([]), "delivered: nothing parked");

    // The secret is nowhere in the events API.
    let (status, events) = s.get("/events?category=webhook", Some(ADMIN)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(events["events"][0]["payload"]["secret"], "<hidden>");
    assert!(!events.to_string().contains(SECRET));

    // Removed: later comments are not delivered; only the owner may remove it.
    let remove = format!("/webhooks/{webhook_id}");
    let (status, v) = s
        .call(reqwest::Method::DELETE, &remove, Some(&reader), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    let (status, v) = s
        .call(reqwest::Method::DELETE, &remove, Some(&owner), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    comment(&s, &reader, &story, "Still here?").await;
    s.settled().await;
    assert_eq!(receiver.deliveries().len(), 3, "nothing after the removal");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_receiver_that_always_fails_ends_in_dead_letters_retried_and_replayed_by_admin() {
    let receiver = Arc::new(Receiver::default());
    receiver.down.store(true, Ordering::SeqCst);
    let url = listen(receiver.clone()).await;
    let s = server().await;
    let (_, owner) = s.register("owner").await;
    let (_, reader) = s.register("reader").await;
    let (story, _) = s.story_with_root(&owner, "Unreachable", "horror").await;
    let hook = json!({ "url": url, "event_types": ["comment.posted"], "secret": SECRET });
    let (status, v) = s
        .post(&format!("/stories/{story}/webhooks"), &owner, hook)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");

    let written = comment(&s, &reader, &story, "Hello?").await;
    let id = event_id(&s, &written).await;
    let letters = s
        .eventually("/admin/dead-letters", Some(ADMIN), |v| {
            v.as_array().is_some_and(|a| !a.is_empty())
        })
        .await;
    let letters = letters.as_array().unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["letter"]["event_id"], id.as_str());
    assert_eq!(letters[0]["letter"]["event_type"], "comment.posted");
    assert!(letters[0]["consumer"]
        .as_str()
        .unwrap()
        .contains("webhooks"));
    assert!(
        letters[0]["letter"]["error"]
            .as_str()
            .unwrap()
            .contains("503"),
        "{letters:?}"
    );
    let attempts = receiver.deliveries().len();
    assert!(attempts >= 4, "every attempt was made: {attempts}");
    assert_eq!(receiver.accepted(&id), 0);

    // Still down: the retry leaves it parked.
    let retry = format!("/admin/dead-letters/{id}/retry");
    let (status, v) = s.post(&retry, ADMIN, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["resolved"], 0);
    let (_, still) = s.get("/admin/dead-letters", Some(ADMIN)).await;
    assert_eq!(still.as_array().unwrap().len(), 1);

    // The receiver is back: the retry delivers it, once.
    receiver.down.store(false, Ordering::SeqCst);
    let (status, v) = s.post(&retry, "not-the-admin-token", json!({})).await;
    assert!(
        matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN),
        "{status} {v}"
    );
    let (status, v) = s.post(&retry, ADMIN, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["resolved"], 1);
    assert_eq!(receiver.accepted(&id), 1);
    let (_, none) = s.get("/admin/dead-letters", Some(ADMIN)).await;
    assert_eq!(none, json!([]));
    let (status, _) = s.post(&retry, ADMIN, json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no longer parked");

    // A replay of the handler delivers it again, with the same event id.
    let replay = json!({ "event_types": ["comment.posted"] });
    let (status, v) = s
        .post("/admin/handlers/webhooks/replay", &reader, replay.clone())
        .await;
    assert!(
        matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN),
        "a user token: {status} {v}"
    );
    let (status, v) = s
        .post("/admin/handlers/catalogue/replay", ADMIN, replay.clone())
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a projection is not a handler: {v}"
    );
    let (status, v) = s
        .post(
            "/admin/handlers/webhooks/replay",
            ADMIN,
            json!({ "after": "not-a-cursor" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    s.settled().await;
    let (status, v) = s
        .post("/admin/handlers/webhooks/replay", ADMIN, replay)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["replayed"], 1, "{v}");
    assert_eq!(receiver.accepted(&id), 2, "delivered again by the replay");
    let last = receiver.deliveries().pop().unwrap();
    assert!(last.signed && last.envelope.id.to_string() == id);
    s.stop().await;
}
