//! One error shape for every refusal: `{"error": {"code": "...", "message": "..."}}`.

use crate::AppError;
use axum::extract::rejection::JsonRejection;
use axum::extract::FromRequest;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// An error's code and message.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable, machine-readable code: `invalid_input`, `unauthorized`, `forbidden`,
    /// `not_found`, `conflict`, `payload_too_large`, `unavailable`, `internal`.
    pub code: &'static str,
    /// A sentence for people. Internal failures say only that something failed; their
    /// details go to the log.
    pub message: String,
}

/// Why a request was refused, with its HTTP status.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    /// The machine-readable code, e.g. `invalid_input`, `forbidden`.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The message for people.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// 400: the request is malformed or a field is invalid (the message names it).
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_input", message)
    }

    /// 401: no token, or one that is not valid.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid `Authorization: Bearer <token>` header is required",
        )
    }

    /// 403: the caller may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404: nothing by that id.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// 413: the body is over the limit.
    pub fn too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the body is over the size limit",
        )
    }

    /// 409: a state rule refused it, or a conflict outlived the retries.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 503: the store or the read models did not answer in time.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// 500: the server failed (details go to the log, never to the client).
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed; the failure is logged",
        )
    }

    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
            },
        };
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        let message = e.to_string();
        match kind(&e) {
            Kind::NotFound => ApiError::new(StatusCode::NOT_FOUND, "not_found", message),
            Kind::Forbidden => ApiError::forbidden(message),
            Kind::Invalid => ApiError::invalid(message),
            Kind::State => ApiError::conflict(message),
            Kind::Store => match e {
                AppError::Store(recount::Error::InvalidInput { .. }) => ApiError::invalid(message),
                AppError::Store(recount::Error::Conflict { .. }) => ApiError::conflict(
                    "the resource changed too often while the command was retried; try again",
                ),
                AppError::Store(store) if store.is_retriable() => {
                    tracing::warn!(error = %store, "store unavailable");
                    ApiError::unavailable("the store is unavailable; try again")
                }
                other => {
                    tracing::error!(error = %other, "store failure");
                    ApiError::internal()
                }
            },
        }
    }
}

/// What a refusal is about.
enum Kind {
    /// An id that names nothing.
    NotFound,
    /// The caller lacks the rights.
    Forbidden,
    /// A value of the request is invalid.
    Invalid,
    /// A rule of the current state (already merged, vote already cast).
    State,
    /// Not the domain's: the store's.
    Store,
}

fn kind(e: &AppError) -> Kind {
    use crate::domain::{
        ChapterError as C, CollaborationError as K, EngagementError as G, InboxError as I,
        PullRequestError as P, StoryError as S, UserError as U, UsernameError as N,
        WebhookError as W,
    };
    match e {
        AppError::NotFound(_)
        | AppError::Story(S::NotFound)
        | AppError::PullRequest(P::NotFound)
        | AppError::Webhook(W::NotFound)
        | AppError::Chapter(C::UnknownChapter(_) | C::UnknownParent(_)) => Kind::NotFound,
        AppError::Story(S::NotOwner)
        | AppError::Chapter(C::NotCollaborator | C::NotAuthor)
        | AppError::Collaboration(K::NotAllowedToInvite | K::NotOwner)
        | AppError::Webhook(W::NotOwner)
        | AppError::PullRequest(P::NotMaintainer | P::CannotReviewOwn) => Kind::Forbidden,
        AppError::Username(N::Invalid(_))
        | AppError::User(U::InvalidDisplayName | U::CannotFollowSelf | U::InvalidCredit)
        | AppError::Story(S::InvalidTitle | S::NotAMilestone(_))
        | AppError::Chapter(C::Empty)
        | AppError::Collaboration(K::InvalidRole)
        | AppError::PullRequest(P::Empty)
        | AppError::Engagement(
            G::InvalidVote(_) | G::InvalidComment | G::InvalidProgress(_) | G::NotAChapter,
        )
        | AppError::Webhook(
            W::InvalidUrl(_)
            | W::HostNotAllowed(_)
            | W::NoEventTypes
            | W::UnknownEventType(_)
            | W::InvalidSecret,
        )
        | AppError::Inbox(I::Empty) => Kind::Invalid,
        AppError::Store(_) => Kind::Store,
        _ => Kind::State,
    }
}

impl From<recount::Error> for ApiError {
    fn from(e: recount::Error) -> Self {
        AppError::Store(e).into()
    }
}

/// `axum::Json` with the app's own error body for a malformed or unreadable body.
#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct AppJson<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::too_large();
        }
        ApiError::invalid(rejection.body_text())
    }
}

impl<T: Serialize> IntoResponse for AppJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}
