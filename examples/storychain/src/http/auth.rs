//! Who is calling: a user by their token, or the operator by the admin token.

use super::{ApiError, ApiState};
use crate::token::{hash_secret, Presented};
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use subtle::ConstantTimeEq;

/// The user a request acts for, proven by `Authorization: Bearer <token>`. Every acting route
/// takes it, and nothing in a header, query or body can name another user to act as.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user's id.
    pub user_id: String,
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let presented = bearer(parts)
            .and_then(Presented::parse)
            .ok_or_else(ApiError::unauthorized)?;
        // A token naming no valid user id is as wrong as a wrong secret.
        let user = match state.app.user(&presented.user_id).await {
            Ok(user) => user,
            Err(crate::AppError::Store(e)) if e.is_retriable() => {
                return Err(crate::AppError::Store(e).into())
            }
            Err(_) => return Err(ApiError::unauthorized()),
        };
        if !presented.matches(&user.token_hash) {
            return Err(ApiError::unauthorized());
        }
        Ok(Caller {
            user_id: presented.user_id,
        })
    }
}

/// The operator, proven by the admin token (`STORYCHAIN_ADMIN_TOKEN`), compared in constant
/// time with the hash kept at start. Without a configured token every admin route is off.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequestParts<ApiState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let Some(expected) = state.admin_token_hash.as_deref() else {
            return Err(ApiError::forbidden(
                "admin routes are off: no admin token is configured",
            ));
        };
        let presented = bearer(parts).ok_or_else(ApiError::unauthorized)?;
        let hash = hash_secret(presented.as_bytes());
        if bool::from(hash.as_bytes().ct_eq(expected.as_bytes())) {
            Ok(Admin)
        } else {
            Err(ApiError::unauthorized())
        }
    }
}
