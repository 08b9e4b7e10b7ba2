//! The API layer's one error type, mapped once to an RFC 9457 `application/problem+json`
//! response.

use domain::Violations;
use lambda_http::http::StatusCode;
use serde_json::{Value, json};
use store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or invalid tenant claim")]
    Unauthorized,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed { allowed: Vec<&'static str> },
    #[error("{detail}")]
    Conflict {
        detail: String,
        /// Extra members, e.g. how many customers still use a segment.
        extra: Option<(&'static str, Value)>,
    },
    #[error("the resource was changed by another request; read it again and retry")]
    PreconditionFailed,
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// 413 for content within the byte limit that is still too much (rows of an import).
    #[error("{0}")]
    TooMuchContent(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error(transparent)]
    Validation(Violations),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::PayloadTooLarge { .. } | Self::TooMuchContent(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable, machine-readable name for clients to switch on.
    fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::BadRequest(_) => "bad_request",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::Conflict { .. } => "conflict",
            Self::PreconditionFailed => "precondition_failed",
            Self::PayloadTooLarge { .. } | Self::TooMuchContent(_) => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::Validation(_) => "validation_failed",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal_error",
        }
    }

    /// The problem document. Internal details are logged, never sent.
    pub fn to_problem(&self, instance: &str) -> Value {
        let status = self.status();
        let detail = match self {
            Self::Internal(_) => "an unexpected error occurred; it has been logged".to_string(),
            Self::Unavailable(_) => "the database is unavailable; retry shortly".to_string(),
            other => other.to_string(),
        };
        let mut problem = json!({
            "type": "about:blank",
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": detail,
            "code": self.code(),
            "instance": instance,
        });
        match self {
            Self::Validation(violations) => {
                problem["errors"] = serde_json::to_value(&violations.0).unwrap_or_default();
            }
            Self::Conflict {
                extra: Some((key, value)),
                ..
            } => {
                problem[*key] = value.clone();
            }
            _ => {}
        }
        problem
    }
}

impl From<Violations> for ApiError {
    fn from(violations: Violations) -> Self {
        Self::Validation(violations)
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::AlreadyExists(what) => Self::Conflict {
                detail: format!("{what} already exists"),
                extra: None,
            },
            StoreError::Duplicate(detail) => Self::Conflict {
                detail,
                extra: None,
            },
            StoreError::VersionMismatch => Self::PreconditionFailed,
            StoreError::InUse { what, count } => Self::Conflict {
                detail: format!("{what} is used by {count} customer(s)"),
                extra: Some(("customer_count", Value::from(count))),
            },
            StoreError::Invalid(violations) => Self::Validation(violations),
            StoreError::InvalidCursor => Self::BadRequest("invalid cursor".into()),
            StoreError::Conflict(detail) => Self::Conflict {
                detail,
                extra: None,
            },
            StoreError::Unavailable(message) => Self::Unavailable(message),
            StoreError::Internal(message) => Self::Internal(message),
        }
    }
}
