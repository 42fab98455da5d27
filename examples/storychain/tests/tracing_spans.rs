//! Spans: a request's span and the spans of the commands it sends carry one correlation id.

use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

mod common;
use common::Server;

/// Spans as created: name and fields.
type Spans = Arc<Mutex<Vec<(String, BTreeMap<String, String>)>>>;

struct Capture(Spans);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        let name = attrs.metadata().name().to_owned();
        self.0.lock().unwrap().push((name, fields));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_and_its_commands_share_the_correlation_id_in_their_spans() {
    let spans = Spans::default();
    let subscriber = tracing_subscriber::registry().with(Capture(spans.clone()));
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    let s = Server::start().await;
    let (_, token) = s.register("ada").await;
    let correlation = uuid::Uuid::now_v7().to_string();
    let response = s
        .client
        .post(s.url("/stories"))
        .bearer_auth(&token)
        .header("x-correlation-id", &correlation)
        .json(&json!({ "title": "Traced", "genre": "fantasy", "visibility": "public" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::CREATED);
    s.settled().await;
    s.stop().await;

    let spans = spans.lock().unwrap().clone();
    let with = |name: &str, key: &str| -> Vec<BTreeMap<String, String>> {
        spans
            .iter()
            .filter(|(n, f)| n == name && f.get(key) == Some(&correlation))
            .map(|(_, f)| f.clone())
            .collect()
    };
    let requests = with("request", "correlation");
    assert_eq!(requests.len(), 1, "{spans:?}");
    assert_eq!(requests[0]["route"], "/stories");
    assert_eq!(requests[0]["method"], "POST");
    // The request's command, and the one the awards manager sent because of it (the XP for
    // a new story), in the same correlation.
    let commands = with("command", "correlation_id");
    let categories: Vec<&str> = commands.iter().map(|c| c["category"].as_str()).collect();
    assert_eq!(categories, ["story", "user"], "{spans:?}");
    assert!(commands[0]["stream"].starts_with("story-"));
    assert!(
        spans.iter().any(|(n, _)| n == "consumer batch"),
        "the consumers' batches have spans too"
    );
}
