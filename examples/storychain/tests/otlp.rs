//! `storychain serve` built with feature `otlp` and given `OTEL_EXPORTER_OTLP_ENDPOINT` sends
//! its spans to an OpenTelemetry collector: here a real HTTP server on a loopback port that
//! decodes the OTLP protobuf requests. A command's span is the child of its request's span in
//! one trace; the consumers' batches and the commands they send carry the correlation id.
#![cfg(feature = "otlp")]

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use prost::Message;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A span as the collector received it.
#[derive(Clone, Debug)]
struct Span {
    name: String,
    trace: Vec<u8>,
    id: Vec<u8>,
    parent: Vec<u8>,
    attributes: BTreeMap<String, String>,
    service: String,
}

type Received = Arc<Mutex<Vec<Span>>>;

fn text(value: Option<&opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(Any::StringValue(s)) => s.clone(),
        Some(Any::IntValue(i)) => i.to_string(),
        Some(Any::BoolValue(b)) => b.to_string(),
        other => format!("{other:?}"),
    }
}

async fn traces(State(received): State<Received>, body: Bytes) -> Vec<u8> {
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf request");
    let mut spans = received.lock().unwrap();
    for resource in request.resource_spans {
        let service = resource
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .map(|kv| text(kv.value.as_ref()))
            .unwrap_or_default();
        for scope in resource.scope_spans {
            for span in scope.spans {
                spans.push(Span {
                    name: span.name,
                    trace: span.trace_id,
                    id: span.span_id,
                    parent: span.parent_span_id,
                    attributes: span
                        .attributes
                        .iter()
                        .map(|kv| (kv.key.clone(), text(kv.value.as_ref())))
                        .collect(),
                    service: service.clone(),
                });
            }
        }
    }
    ExportTraceServiceResponse::default().encode_to_vec()
}

/// A collector on a loopback port: its base URL and what it received.
async fn collector() -> (String, Received) {
    let received = Received::default();
    let app = axum::Router::new()
        .route("/v1/traces", post(traces))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), received)
}

/// `storychain serve` as a child process, and the address it bound (read off its log).
struct Served {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

fn serve(envs: &[(&str, &str)]) -> Result<Served, String> {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_storychain"))
        .args(["serve", "--addr", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("storychain.db"))
        // The SQLite file above, whatever the environment says.
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "info,recount=debug")
        .env("NO_COLOR", "1")
        .envs(envs.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the child starts");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("storychain serving") {
            let at = line.find("127.0.0.1:").expect("the bound address");
            let port: String = line[at + 10..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            // Keep draining the log so the child never blocks on a full pipe.
            std::thread::spawn(move || lines.for_each(drop));
            return Ok(Served {
                child,
                base: format!("http://127.0.0.1:{port}"),
                _dir: dir,
            });
        }
    }
    let status = child.wait().unwrap();
    Err(format!("{status}: {seen}"))
}

impl Served {
    /// SIGTERM, and the exit status.
    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_an_otlp_collector_linked_by_trace_and_correlation_id() {
    let (endpoint, received) = collector().await;
    let served = serve(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)]).expect("serve starts");
    let client = reqwest::Client::new();
    let user: serde_json::Value = client
        .post(format!("{}/users", served.base))
        .json(&json!({ "username": "ada", "display_name": "Ada" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = user["token"].as_str().expect("a token").to_owned();
    let correlation = uuid::Uuid::now_v7().to_string();
    let created = client
        .post(format!("{}/stories", served.base))
        .bearer_auth(&token)
        .header("x-correlation-id", &correlation)
        .json(&json!({ "title": "Traced", "genre": "fantasy", "visibility": "public" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), reqwest::StatusCode::CREATED);

    // The awards manager credits XP for the new story in a command of its own, in the
    // request's correlation; wait until its span has been exported (the batch exporter sends
    // every few seconds), then stop: what is still buffered goes out on shutdown.
    let awarded = |spans: &[Span]| {
        spans.iter().any(|s| {
            s.name == "command"
                && s.attributes.get("category").map(String::as_str) == Some("user")
                && s.attributes.get("correlation_id") == Some(&correlation)
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !awarded(&received.lock().unwrap()) {
        assert!(
            Instant::now() < deadline,
            "the award's command span never arrived"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A last request just before SIGTERM: its span is still in the exporter's buffer (it
    // sends every 5 s) and goes out only with the flush at shutdown.
    let last = uuid::Uuid::now_v7().to_string();
    let health = client
        .get(format!("{}/health", served.base))
        .header("x-correlation-id", &last)
        .send()
        .await
        .unwrap();
    assert!(health.status().is_success());
    let status = tokio::task::spawn_blocking(move || served.terminate())
        .await
        .unwrap();
    assert!(status.success(), "serve exits cleanly: {status}");

    let spans = received.lock().unwrap().clone();
    assert!(spans.iter().all(|s| s.service == "storychain"), "{spans:?}");
    assert!(
        spans.iter().any(|s| s.name == "request"
            && s.attributes.get("correlation") == Some(&last)
            && s.attributes["route"] == "/health"),
        "the span buffered at shutdown was flushed: {spans:?}"
    );
    let requests: Vec<&Span> = spans
        .iter()
        .filter(|s| s.name == "request" && s.attributes.get("correlation") == Some(&correlation))
        .collect();
    assert_eq!(requests.len(), 1, "{spans:?}");
    let request = requests[0];
    assert_eq!(request.attributes["route"], "/stories");
    assert_eq!(request.attributes["method"], "POST");
    let story_commands: Vec<&Span> = spans
        .iter()
        .filter(|s| {
            s.name == "command" && s.attributes.get("category").map(String::as_str) == Some("story")
        })
        .collect();
    assert_eq!(story_commands.len(), 1, "{spans:?}");
    let command = story_commands[0];
    assert_eq!(
        command.trace, request.trace,
        "the command is in the request's trace"
    );
    assert_eq!(
        command.parent, request.id,
        "the command's parent is the request"
    );
    assert_eq!(command.attributes["correlation_id"], correlation);
    assert!(command.attributes["stream"].starts_with("story-"));
    assert!(
        spans.iter().any(|s| s.name == "consumer batch"
            && s.attributes.contains_key("consumer")
            && s.trace != request.trace),
        "the consumers' batches are exported too, in traces of their own: {spans:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_otlp_protocol_that_is_not_built_in_is_refused_at_start() {
    let refused = serve(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
    ]);
    let log = refused.err().expect("serve refuses to start");
    assert!(log.contains("exit status: 1"), "{log}");
    assert!(
        log.contains("OTLP protocol \"grpc\" is not supported here; only http/protobuf"),
        "{log}"
    );
}
