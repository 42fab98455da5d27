//! Operations (admin token only): consumers' status, dead letters; and the public health.

use super::{Admin, ApiError, ApiState, AppJson};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use recount::projection::{ConsumerKind, ConsumerStatus, DeadLetter, RunState};
use recount::{Cursor, EventQuery, LogFilter};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use utoipa::ToSchema;
use uuid::Uuid;

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

/// `POST /admin/handlers/{name}/replay`: which events to hand to the handler again.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Replay {
    /// Only events after this cursor (as the events API shows it).
    #[serde(default)]
    pub after: Option<String>,
    /// Only events recorded at or after this time (RFC 3339).
    #[serde(default)]
    pub from: Option<String>,
    /// Only events of these types (default: every type the handler takes).
    #[serde(default)]
    pub event_types: Vec<String>,
}

/// What a replay did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Replayed {
    /// The handler.
    pub handler: String,
    /// Events handed to it again.
    pub replayed: u64,
}

/// Hands the events chosen (from a cursor or a time, of chosen types) to a side-effect
/// handler or relay again, up to its checkpoint (later events are its live work): webhooks
/// are delivered again, with the same event ids. Projections are rebuilt, not replayed.
#[utoipa::path(post, path = "/admin/handlers/{name}/replay", request_body = Replay, tag = "operations", security(("admin" = [])),
    params(("name" = String, Path, description = "The handler, e.g. `webhooks`")),
    responses((status = 200, body = Replayed), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody), (status = 403, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 413, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn replay(
    State(s): State<ApiState>,
    _: Admin,
    Path(name): Path<String>,
    AppJson(body): AppJson<Replay>,
) -> Result<AppJson<Replayed>, ApiError> {
    let handler = s
        .consumers
        .iter()
        .find(|r| {
            let st = r.status();
            st.name == name && matches!(st.kind, ConsumerKind::SideEffect | ConsumerKind::Relay)
        })
        .ok_or_else(|| ApiError::not_found("handler"))?;
    let after = super::events::parse::<Cursor>("after", body.after.as_deref())?;
    let from = super::events::time("from", body.from.as_deref())?;
    let filter = body
        .event_types
        .iter()
        .fold(LogFilter::all(), |f, t| f.event_type(t));
    let query = EventQuery::after(after.unwrap_or(Cursor::START))
        .filter(filter)
        .recorded(from, None);
    let replayed = handler.replay(&query).await?;
    tracing::info!(handler = %name, replayed, "handler replayed");
    Ok(AppJson(Replayed {
        handler: name,
        replayed,
    }))
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

/// A rebuild started through the admin API.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Job {
    /// Its id.
    pub id: String,
    /// The projection rebuilt.
    pub projection: String,
    /// `running`, `done` or `failed`.
    pub state: &'static str,
    /// The version being replaced (`null` until the job has read it).
    pub from_version: Option<u32>,
    /// Events handled so far.
    pub done: u64,
    /// Events still to handle (grows while appends go on).
    pub remaining: u64,
    /// Events per second so far.
    pub per_sec: f64,
    /// Estimated seconds left at that rate.
    pub eta_secs: Option<f64>,
    /// Percent done.
    pub percent: f64,
    /// Whether the old version's tables were dropped (they are kept while a process still
    /// runs it).
    pub old_dropped: bool,
    /// Why it failed.
    pub error: Option<String>,
}

/// The rebuild jobs of this process, by id.
#[derive(Debug, Clone, Default)]
pub struct Jobs(Arc<Mutex<HashMap<Uuid, Job>>>);

impl Jobs {
    fn update(&self, id: Uuid, f: impl FnOnce(&mut Job)) {
        if let Some(job) = self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(&id)
        {
            f(job);
        }
    }

    fn get(&self, id: Uuid) -> Option<Job> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
    }

    /// Registers a job for `projection` unless one is running for it.
    fn start(&self, projection: &str) -> Option<(Uuid, Job)> {
        let mut jobs = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if jobs
            .values()
            .any(|j| j.projection == projection && j.state == "running")
        {
            return None;
        }
        let id = Uuid::now_v7();
        let job = Job {
            id: id.to_string(),
            projection: projection.to_owned(),
            state: "running",
            from_version: None,
            done: 0,
            remaining: 0,
            per_sec: 0.0,
            eta_secs: None,
            percent: 0.0,
            old_dropped: false,
            error: None,
        };
        jobs.insert(id, job.clone());
        Some((id, job))
    }
}

/// Events per batch of an admin rebuild.
const REBUILD_BATCH: usize = 1_000;
/// How long an admin rebuild waits for every process to stop the old version.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Starts rebuilding a projection beside the live one; readers switch when it has caught up,
/// with no downtime. Poll the job with `GET /admin/jobs/{id}`.
#[utoipa::path(post, path = "/admin/projections/{name}/rebuild", tag = "operations", security(("admin" = [])),
    params(("name" = String, Path, description = "catalogue, chapters, profiles, stats or inbox")),
    responses((status = 202, body = Job), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody), (status = 403, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn rebuild(
    State(s): State<ApiState>,
    _: Admin,
    Path(name): Path<String>,
) -> Result<(StatusCode, AppJson<Job>), ApiError> {
    if !crate::readmodel::PROJECTIONS.contains(&name.as_str()) {
        return Err(ApiError::not_found("projection"));
    }
    let Some((id, job)) = s.jobs.start(&name) else {
        return Err(ApiError::conflict(format!(
            "a rebuild of `{name}` is already running"
        )));
    };
    let (app, jobs) = (s.app.clone(), s.jobs.clone());
    tokio::spawn(async move {
        if let Ok(from) = crate::readmodel::active(app.store(), &name).await {
            jobs.update(id, |j| j.from_version = Some(from));
        }
        let progress_jobs = jobs.clone();
        let outcome = app
            .rebuild_live(&name, REBUILD_BATCH, STOP_TIMEOUT, move |p| {
                progress_jobs.update(id, |j| {
                    j.done = p.done;
                    j.remaining = p.remaining;
                    j.per_sec = p.per_sec;
                    j.eta_secs = p.eta.map(|d| d.as_secs_f64());
                    let total = (p.done + p.remaining).max(1);
                    j.percent = 100.0 * p.done as f64 / total as f64;
                });
            })
            .await;
        jobs.update(id, |j| match outcome {
            Ok((_, _, _, dropped)) => {
                j.state = "done";
                j.percent = 100.0;
                j.remaining = 0;
                j.old_dropped = dropped;
            }
            Err(e) => {
                tracing::error!(job = %id, error = %e, "rebuild failed");
                j.state = "failed";
                j.error = Some(e.to_string());
            }
        });
    });
    Ok((StatusCode::ACCEPTED, AppJson(job)))
}

/// A rebuild job's progress: done, remaining, events/s, ETA, state.
#[utoipa::path(get, path = "/admin/jobs/{job_id}", tag = "operations", security(("admin" = [])),
    params(("job_id" = String, Path, description = "The job's id")),
    responses((status = 200, body = Job), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody), (status = 403, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn job(
    State(s): State<ApiState>,
    _: Admin,
    Path(job_id): Path<String>,
) -> Result<AppJson<Job>, ApiError> {
    let id: Uuid = job_id
        .parse()
        .map_err(|_| ApiError::invalid(format!("`job_id` is not a job id: `{job_id}`")))?;
    s.jobs
        .get(id)
        .map(AppJson)
        .ok_or_else(|| ApiError::not_found("job"))
}
