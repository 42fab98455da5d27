//! StoryChain as a service: the HTTP API (axum), its OpenAPI document, and `serve`.
//!
//! [`app`] builds the router from an [`ApiState`], so tests run the real app on a loopback
//! port. Handlers are short: extract (the caller from their token, the body through
//! [`AppJson`]), call the application service ([`StoryChain`]), map the result. Refusals
//! share one JSON shape ([`ApiError`]). Every request runs with a correlation id (`X-Correlation-Id`,
//! or a new one), returned in the response and carried into every event it causes.

pub mod admin;
mod auth;
pub mod commands;
mod error;
pub mod events;
pub mod live;
pub mod metrics;
pub mod queries;
mod serve;
pub mod types;
pub mod ws;

pub use auth::{Admin, Caller};
pub use error::{ApiError, AppJson, ErrorBody, ErrorDetail};
pub use serve::{serve, workers, ServeOptions, WebhookOptions};

use crate::StoryChain;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put};
use axum::Router;
use recount::projection::Supervised;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;
use tracing::Instrument;
use utoipa::OpenApi;
use uuid::Uuid;

/// The largest request body (bytes): chapters are long, but not this long.
pub const BODY_LIMIT: usize = 256 * 1024;

/// What every handler shares: cheap to clone.
#[derive(Debug, Clone)]
pub struct ApiState {
    app: StoryChain,
    admin_token_hash: Option<String>,
    /// Every consumer's runner (running here when `workers`, else kept for operations).
    consumers: Arc<Vec<Arc<dyn Supervised>>>,
    workers: bool,
    /// Rebuild jobs started through the admin API, by id.
    jobs: admin::Jobs,
    /// The process's live fan-out, for `GET /stream` (set by [`ApiState::with_live`]).
    live: Option<recount::live::Fanout>,
    /// Who is in which story's room (`GET /ws`).
    rooms: ws::Rooms,
}

impl ApiState {
    /// The API over `app`; `admin_token`: the operator's token (`None`: admin routes off;
    /// only its hash is kept). `consumers`: the runners of the app's consumers, for the
    /// operations routes; `workers`: whether they run in this process.
    pub fn new(
        app: StoryChain,
        admin_token: Option<&str>,
        consumers: Vec<Arc<dyn Supervised>>,
        workers: bool,
    ) -> Self {
        ApiState {
            app,
            admin_token_hash: admin_token
                .filter(|t| !t.is_empty())
                .map(|t| crate::token::hash_secret(t.as_bytes())),
            consumers: Arc::new(consumers),
            workers,
            jobs: admin::Jobs::default(),
            live: None,
            rooms: ws::Rooms::default(),
        }
    }

    /// The application service.
    pub fn app(&self) -> &StoryChain {
        &self.app
    }
}

/// The OpenAPI document, generated from the handlers' annotations.
#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "StoryChain", description = "A collaborative-fiction platform built on Recount."),
    paths(
        commands::register, commands::update_profile, commands::follow, commands::unfollow,
        commands::mark_read,
        commands::create_story, commands::update_story, commands::publish_story,
        commands::archive_story, commands::add_chapter, commands::edit_chapter,
        commands::publish_chapter, commands::invite, commands::join, commands::leave,
        commands::change_role, commands::open_pr, commands::review_pr, commands::merge_pr,
        commands::reject_pr, commands::vote, commands::comment, commands::bookmark,
        commands::progress, commands::register_webhook, commands::remove_webhook,
        queries::catalogue, queries::story, queries::profile,
        queries::inbox, queries::stats, admin::health, admin::consumers,
        admin::dead_letters, admin::retry_dead_letter, admin::rebuild, admin::job,
        admin::replay, metrics::metrics,
        events::events, events::event,
        events::correlation, events::stats, live::stream, ws::ws,
    ),
    modifiers(&Security)
)]
pub struct ApiDoc;

#[derive(Debug)]
struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build();
        components.add_security_scheme("token", SecurityScheme::Http(bearer.clone()));
        components.add_security_scheme("admin", SecurityScheme::Http(bearer));
    }
}

/// The router: every route, the OpenAPI document at `/openapi.json`, and the layers (request
/// log with correlation id, body limit (a larger body is a 413 in the app's error shape),
/// timeout, panics answered in the app's error shape).
pub fn app(state: ApiState) -> Router {
    Router::new()
        .route("/users", post(commands::register))
        .route("/users/me", patch(commands::update_profile))
        .route("/users/me/following", post(commands::follow))
        .route("/users/me/following/{user_id}", delete(commands::unfollow))
        .route("/users/me/inbox", get(queries::inbox))
        .route("/users/me/inbox/read", post(commands::mark_read))
        .route("/users/{user_id}", get(queries::profile))
        .route(
            "/stories",
            post(commands::create_story).get(queries::catalogue),
        )
        .route(
            "/stories/{story_id}",
            patch(commands::update_story).get(queries::story),
        )
        .route("/stories/{story_id}/publish", post(commands::publish_story))
        .route("/stories/{story_id}/archive", post(commands::archive_story))
        .route("/stories/{story_id}/chapters", post(commands::add_chapter))
        .route(
            "/stories/{story_id}/chapters/{chapter_id}",
            patch(commands::edit_chapter),
        )
        .route(
            "/stories/{story_id}/chapters/{chapter_id}/publish",
            post(commands::publish_chapter),
        )
        .route("/stories/{story_id}/collaborators", post(commands::invite))
        .route(
            "/stories/{story_id}/collaborators/me",
            post(commands::join).delete(commands::leave),
        )
        .route(
            "/stories/{story_id}/collaborators/{user_id}",
            put(commands::change_role),
        )
        .route("/stories/{story_id}/pulls", post(commands::open_pr))
        .route(
            "/stories/{story_id}/webhooks",
            post(commands::register_webhook),
        )
        .route("/webhooks/{webhook_id}", delete(commands::remove_webhook))
        .route("/pulls/{pr_id}/reviews", post(commands::review_pr))
        .route("/pulls/{pr_id}/merge", post(commands::merge_pr))
        .route("/pulls/{pr_id}/reject", post(commands::reject_pr))
        .route("/votes", put(commands::vote))
        .route("/comments", post(commands::comment))
        .route("/bookmarks", post(commands::bookmark))
        .route("/progress", put(commands::progress))
        .route("/stats", get(queries::stats))
        .route("/health", get(admin::health))
        .route("/admin/consumers", get(admin::consumers))
        .route("/admin/dead-letters", get(admin::dead_letters))
        .route(
            "/admin/dead-letters/{event_id}/retry",
            post(admin::retry_dead_letter),
        )
        .route("/admin/projections/{name}/rebuild", post(admin::rebuild))
        .route("/admin/handlers/{name}/replay", post(admin::replay))
        .route("/admin/jobs/{job_id}", get(admin::job))
        .route("/events", get(events::events))
        .route("/events/stats", get(events::stats))
        .route(
            "/events/correlation/{correlation_id}",
            get(events::correlation),
        )
        .route("/events/{event_id}", get(events::event))
        .route("/stream", get(live::stream))
        .route("/ws", get(ws::ws))
        .route("/openapi.json", get(openapi))
        .route("/metrics", get(metrics::metrics))
        .route_layer(axum::middleware::from_fn(metrics::record))
        .fallback(|| async { ApiError::not_found("route") })
        .with_state(state)
        .layer(axum::middleware::from_fn(correlate))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(30),
        ))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("a handler panicked");
            ApiError::internal().into_response()
        }))
}

async fn openapi() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}

const CORRELATION: HeaderName = HeaderName::from_static("x-correlation-id");

/// Runs the request with its correlation id (given as a UUID, or new), answers it in the
/// response, and logs one line: method, route, status, latency, correlation id.
async fn correlate(request: Request, next: Next) -> Response {
    let correlation = request
        .headers()
        .get(&CORRELATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<Uuid>().ok())
        .unwrap_or_else(Uuid::now_v7);
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().map_or_else(
        || request.uri().path().to_owned(),
        |p| p.as_str().to_owned(),
    );
    let started = Instant::now();
    let span = tracing::info_span!("request", %method, %route, %correlation);
    let mut response = crate::app::with_correlation(correlation, next.run(request))
        .instrument(span)
        .await;
    if let Ok(value) = HeaderValue::from_str(&correlation.to_string()) {
        response.headers_mut().insert(CORRELATION, value);
    }
    let status = response.status();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!(%method, %route, status = status.as_u16(), latency_ms, %correlation, "request");
    } else {
        tracing::info!(%method, %route, status = status.as_u16(), latency_ms, %correlation, "request");
    }
    response
}
