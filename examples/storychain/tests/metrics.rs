//! `/metrics` after a scripted run, parsed as Prometheus text format: the counters agree with
//! the work done. One test in its own process, so the process's recorder counts only it.

use prometheus_parse::{Sample, Scrape, Value as Metric};
use reqwest::StatusCode;
use serde_json::json;
use std::collections::BTreeMap;

mod common;
use common::{Server, ADMIN};

fn value(s: &Sample) -> f64 {
    match &s.value {
        Metric::Counter(v) | Metric::Gauge(v) | Metric::Untyped(v) => *v,
        Metric::Histogram(h) => h.iter().map(|b| b.count).fold(0.0, f64::max),
        Metric::Summary(_) => f64::NAN,
    }
}

/// Sums of `metric` by the value of `label`.
fn by_label(scrape: &Scrape, metric: &str, label: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for s in scrape.samples.iter().filter(|s| s.metric == metric) {
        let key = s.labels.get(label).unwrap_or_default().to_owned();
        *out.entry(key).or_default() += value(s);
    }
    out
}

async fn scrape(s: &Server) -> Scrape {
    let response = s
        .client
        .get(s.url("/metrics"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text format")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_after_a_scripted_run_agree_with_the_log_and_the_requests() {
    let s = Server::start().await;
    let (_, user_token) = s.register("reader").await;
    let (status, _) = s.get("/metrics", Some(&user_token)).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a user token does not read metrics"
    );

    // The script: 3 users, a story with a root chapter and 4 branches, 2 votes, 3 comments.
    let (_, ada) = s.register("ada").await;
    let (_, bob) = s.register("bob").await;
    let (story, root) = s.story_with_root(&ada, "Counted", "sci_fi").await;
    let (status, _) = s
        .post(&format!("/stories/{story}/publish"), &ada, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    for i in 0..4 {
        let branch = json!({ "title": format!("Branch {i}"), "content": "more", "parent": root });
        let (status, v) = s
            .post(&format!("/stories/{story}/chapters"), &ada, branch)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
    }
    for token in [&bob, &user_token] {
        let vote = json!({ "target": { "story_id": story }, "value": 1 });
        let (status, v) = s
            .call(reqwest::Method::PUT, "/votes", Some(token), Some(vote))
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }
    for text in ["one", "two", "three"] {
        let body = json!({ "target": { "story_id": story }, "text": text });
        let (status, _) = s.post("/comments", &bob, body).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, _) = s.get("/stories/not-a-story", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    s.settled().await;

    let scrape = scrape(&s).await;
    let log = s.log().await;

    // Appends: events counted by category equal the events in the log by category.
    let mut in_log: BTreeMap<String, f64> = BTreeMap::new();
    for e in &log {
        *in_log.entry(e.stream.category().to_owned()).or_default() += 1.0;
    }
    let counted = by_label(&scrape, "recount_events_appended_total", "category");
    assert_eq!(counted, in_log, "events appended, by category");
    let appends = by_label(&scrape, "recount_appends_total", "category");
    assert!(appends.values().sum::<f64>() >= 1.0);
    assert!(
        appends.values().sum::<f64>() <= log.len() as f64,
        "an append writes at least one event"
    );

    // Consumers: every projection handled events; the catalogue saw every story event.
    let handled = by_label(&scrape, "recount_consumer_events_total", "consumer");
    for name in ["catalogue", "chapters", "profiles", "stats", "inbox"] {
        let n = handled
            .iter()
            .filter(|(k, _)| k.contains(name))
            .map(|(_, v)| *v)
            .sum::<f64>();
        assert!(n > 0.0, "projection {name} handled events: {handled:?}");
    }
    let batches = by_label(&scrape, "recount_consumer_batches_total", "consumer");
    assert!(batches.values().all(|b| *b >= 1.0), "{batches:?}");
    let lag = by_label(&scrape, "recount_consumer_lag", "consumer");
    assert!(lag.values().all(|l| *l == 0.0), "settled: no lag {lag:?}");

    // HTTP: requests by route and status, as sent.
    let requests: Vec<&Sample> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "http_requests_total")
        .collect();
    let count = |method: &str, route: &str, status: &str| -> f64 {
        requests
            .iter()
            .filter(|s| {
                s.labels.get("method") == Some(method)
                    && s.labels.get("route") == Some(route)
                    && s.labels.get("status") == Some(status)
            })
            .map(|s| value(s))
            .sum()
    };
    let seen: Vec<String> = requests
        .iter()
        .map(|s| format!("{:?} {}", s.labels, value(s)))
        .collect();
    assert_eq!(count("POST", "/users", "201"), 3.0, "{seen:#?}");
    assert_eq!(count("PUT", "/votes", "200"), 2.0);
    assert_eq!(count("POST", "/comments", "200"), 3.0);
    assert_eq!(
        count("POST", "/stories/:story_id/chapters", "201"),
        5.0,
        "{seen:#?}"
    );
    assert_eq!(count("GET", "/stories/:story_id", "404"), 1.0);
    assert_eq!(count("GET", "/metrics", "401"), 1.0);
    assert!(
        requests
            .iter()
            .all(|s| !s.labels.get("route").unwrap_or_default().contains(&story)),
        "ids never become labels"
    );
    let latency = scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == "http_request_duration_seconds"
                && s.labels.get("route") == Some("/comments")
        })
        .expect("a latency histogram for /comments");
    assert!(
        matches!(&latency.value, Metric::Histogram(b) if b.iter().map(|b| b.count).fold(0.0, f64::max) == 3.0),
        "{latency:?}"
    );
    s.stop().await;
}
