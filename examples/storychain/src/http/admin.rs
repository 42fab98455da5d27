//! Operations (admin token only): consumers' status, dead letters; and the public health.

use super::{Admin, ApiError, ApiState, AppJson};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use recount::projection::{ConsumerStatus, DeadLetter, RunState};
use serde::Serialize;
use std::time::Duration;
use utoipa::ToSchema;

/// Every consumer's status.
#[derive(Debug, Serialize, ToSchema)]
pub struct Consumers {
    /// One per consumer (and partition): name, kind, version, checkpoint, lag, events/s over
    /// the last minute, lease holder, state, last error, parked count, counters.
    #[schema(value_type = Vec<Object>)]
    pub consumers: Vec<ConsumerStatus>,
}

/// Each consumer's status, its lag counted now.
#[utoipa::path(get, path = "/admin/consumers", tag = "operations", security(("admin" = [])),
    responses((status = 200, body = Consumers), (status = 401, body = super::ErrorBody), (status = 403, body = super::ErrorBody), (status = 400, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn consumers(
    State(s): State<ApiState>,
    _: Admin,
) -> Result<AppJson<Consumers>, ApiError> {
    let mut consumers = Vec::new();
    for runner in s.consumers.iter() {
        let mut status = runner.status();
        status.lag = Some(runner.lag().await?);
        consumers.push(status);
    }
    Ok(AppJson(Consumers { consumers }))
}

/// A parked event and the consumer it is parked for.
#[derive(Debug, Serialize, ToSchema)]
pub struct Parked {
    /// The consumer (its checkpoint name).
    pub consumer: String,
    /// The parked event: id, stream, version, type, last error, attempts.
    #[schema(value_type = Object)]
    pub letter: DeadLetter,
}

/// Every consumer's parked events, oldest first.
#[utoipa::path(get, path = "/admin/dead-letters", tag = "operations", security(("admin" = [])),
    responses((status = 200, body = Vec<Parked>), (status = 401, body = super::ErrorBody), (status = 403, body = super::ErrorBody), (status = 400, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn dead_letters(
    State(s): State<ApiState>,
    _: Admin,
) -> Result<AppJson<Vec<Parked>>, ApiError> {
    let mut out = Vec::new();
    for runner in s.consumers.iter() {
        let consumer = runner.status().checkpoint_name;
        for letter in runner.parked().await? {
            out.push(Parked {
                consumer: consumer.clone(),
                letter,
            });
        }
    }
    Ok(AppJson(out))
}

/// How many parked events a retry resolved.
#[derive(Debug, Serialize, ToSchema)]
pub struct Retried {
    /// Resolved now (handled by their consumer); the others stay parked.
    pub resolved: usize,
}

/// Hands the parked event to its consumer again; resolved when it succeeds.
#[utoipa::path(post, path = "/admin/dead-letters/{event_id}/retry", tag = "operations", security(("admin" = [])),
    params(("event_id" = String, Path, description = "The parked event's id")),
    responses((status = 200, body = Retried), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody), (status = 403, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn retry_dead_letter(
    State(s): State<ApiState>,
    _: Admin,
    Path(event_id): Path<String>,
) -> Result<AppJson<Retried>, ApiError> {
    let id: uuid::Uuid = event_id
        .parse()
        .map_err(|_| ApiError::invalid(format!("`{event_id}` is not an event id")))?;
    let mut found = false;
    let mut resolved = 0;
    for runner in s.consumers.iter() {
        if runner.parked().await?.iter().any(|l| l.event_id == id) {
            found = true;
            resolved += runner.retry_parked_where(&|l| l.event_id == id).await?;
        }
    }
    if !found {
        return Err(ApiError::not_found("parked event"));
    }
    Ok(AppJson(Retried { resolved }))
}

/// The service's health.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `degraded` with the reasons.
    pub status: &'static str,
    /// What is wrong (empty when healthy).
    pub reasons: Vec<String>,
    /// Each consumer run by this process: name, state, lag as last measured.
    pub consumers: Vec<ConsumerHealth>,
}

/// One consumer's health.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsumerHealth {
    /// Its checkpoint name.
    pub name: String,
    /// `running`, `waiting_for_lease`, `backing_off`, `stopped`, `idle`.
    #[schema(value_type = String)]
    pub state: RunState,
    /// Events still to handle, as last measured.
    pub lag: Option<u64>,
}

/// Health: the store answers within a second, and no consumer run here has stopped. 200 or
/// 503 with the reasons.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn health(State(s): State<ApiState>) -> (StatusCode, AppJson<Health>) {
    use recount::EventStore;
    let mut reasons = Vec::new();
    let probe = s.app.store().load_checkpoint("health");
    match tokio::time::timeout(Duration::from_secs(1), probe).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => reasons.push(format!("the store failed: {e}")),
        Err(_) => reasons.push("the store did not answer within 1 s".into()),
    }
    let consumers: Vec<ConsumerHealth> = s
        .consumers
        .iter()
        .map(|r| r.status())
        .filter(|_| s.workers)
        .map(|st| {
            if st.state == RunState::Stopped {
                reasons.push(format!(
                    "consumer `{}` stopped: {}",
                    st.checkpoint_name,
                    st.last_error.as_deref().unwrap_or("no error recorded")
                ));
            }
            ConsumerHealth {
                name: st.checkpoint_name,
                state: st.state,
                lag: st.lag,
            }
        })
        .collect();
    let status = if reasons.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Health {
        status: if reasons.is_empty() { "ok" } else { "degraded" },
        reasons,
        consumers,
    };
    (status, AppJson(body))
}
