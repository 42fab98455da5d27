//! `GET /metrics`: Prometheus text format, from the `metrics` facade: Recount's own metrics
//! (appends, consumers, relays; see `recount::telemetry`) and the service's: HTTP requests by
//! route and status (`http_requests_total`) with a latency histogram
//! (`http_request_duration_seconds`), live subscribers (`storychain_live_subscribers`, read
//! at each scrape) and open WebSocket connections (`storychain_ws_connections`).

use super::{Admin, ApiError, ApiState};
use axum::extract::State;
use axum::extract::{MatchedPath, Request};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Instant;

/// Latency buckets (seconds) of every histogram: 1 ms to 10 s.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process's Prometheus recorder (once; `serve` calls it before serving, so
/// everything the process does is counted). `None` when another recorder was installed
/// first: then `/metrics` answers 503.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new().set_buckets(&BUCKETS).ok()?;
            match builder.install_recorder() {
                Ok(handle) => Some(handle),
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .as_ref()
}

/// Every metric in Prometheus text format (admin token). Scrape it with a bearer token.
#[utoipa::path(get, path = "/metrics", tag = "operations", security(("admin" = [])),
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"), (status = 401, body = super::ErrorBody), (status = 403, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn metrics(State(s): State<ApiState>, _: Admin) -> Response {
    match install() {
        Some(handle) => {
            if let Some(live) = &s.live {
                metrics::gauge!("storychain_live_subscribers").set(live.live_subscribers() as f64);
            }
            handle.run_upkeep();
            (
                [(CONTENT_TYPE, "text/plain; version=0.0.4")],
                handle.render(),
            )
                .into_response()
        }
        None => ApiError::unavailable("metrics are not recorded in this process").into_response(),
    }
}

/// Counts a routed request (`http_requests_total` by method, route and status) and its
/// latency (`http_request_duration_seconds` by method and route). The route is the
/// matched pattern, never the raw path, so ids do not become labels; its parameters are
/// written `:story_id` (`/stories/:story_id`), since some text-format parsers mishandle
/// braces inside label values.
pub async fn record(request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "<unmatched>".to_owned(), |p| route_label(p.as_str()));
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let took = started.elapsed().as_secs_f64();
    metrics::counter!("http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route)
        .record(took);
    response
}

/// `/stories/{story_id}` as `/stories/:story_id`.
fn route_label(pattern: &str) -> String {
    pattern.replace('{', ":").replace('}', "")
}

#[cfg(test)]
mod tests {
    #[test]
    fn route_labels_have_no_braces() {
        assert_eq!(
            super::route_label("/stories/{story_id}/chapters/{chapter_id}"),
            "/stories/:story_id/chapters/:chapter_id"
        );
        assert_eq!(super::route_label("/users"), "/users");
    }
}
