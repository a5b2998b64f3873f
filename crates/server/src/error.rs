//! API errors: `{"error": {"code", "message"}}` with the right status.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error answered to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// For people.
    pub message: String,
}

impl ApiError {
    /// 401: no or unknown credentials.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthenticated",
            message: message.into(),
        }
    }

    /// 403: authenticated, but the role does not allow it.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            code: "forbidden",
            message: message.into(),
        }
    }

    /// 400: the request itself is wrong.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
        }
    }

    /// 500: Warden's fault; the message is safe to show.
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": { "code": self.code, "message": self.message }
        });
        (self.status, Json(body)).into_response()
    }
}

impl From<warden_runtime::RuntimeError> for ApiError {
    /// The one mapping from runtime errors to statuses and codes.
    fn from(e: warden_runtime::RuntimeError) -> Self {
        use warden_runtime::RuntimeError as E;
        let status = match &e {
            E::UnknownTool(_)
            | E::UnknownRun(_)
            | E::UnknownWorkflow(_)
            | E::UnknownAction(_)
            | E::UnknownAgent(_)
            | E::UnknownGroup(_)
            | E::UnknownApproval(_) => StatusCode::NOT_FOUND,
            E::InvalidArguments(_) | E::NotExecutable(_) | E::InvalidReport(_) => {
                StatusCode::BAD_REQUEST
            }
            E::RunNotYours { .. } | E::NotAnApprover { .. } | E::SeparationOfDuties { .. } => {
                StatusCode::FORBIDDEN
            }
            E::RunClosed { .. }
            | E::IdempotencyConflict { .. }
            | E::InvalidTransition { .. }
            | E::ApprovalClosed { .. }
            | E::AlreadyAnswered { .. } => StatusCode::CONFLICT,
            E::Store(_) | E::Evidence(_) | E::Random(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self {
            status,
            code: e.code(),
            message: e.to_string(),
        }
    }
}

impl From<warden_control::ControlError> for ApiError {
    fn from(e: warden_control::ControlError) -> Self {
        control(&e)
    }
}

fn control(e: &warden_control::ControlError) -> ApiError {
    use warden_control::ControlError as E;
    let status = match e {
        E::UnknownAgent(_) | E::UnknownTool(_) | E::UnknownGroup(_) => StatusCode::NOT_FOUND,
        E::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError {
        status,
        code: e.code(),
        message: e.to_string(),
    }
}

impl From<warden_oversight::OversightError> for ApiError {
    /// Every variant named, so a new one must be given its status here.
    fn from(e: warden_oversight::OversightError) -> Self {
        use warden_oversight::OversightError as E;
        let status = match &e {
            E::Control(c) => return control(c),
            E::UnknownIncident(_) => StatusCode::NOT_FOUND,
            E::IncidentState { .. } => StatusCode::CONFLICT,
            E::NotResponder { .. } => StatusCode::FORBIDDEN,
            E::InvalidQuery(_) | E::InvalidBody(_) => StatusCode::BAD_REQUEST,
            E::Store(_) | E::Random(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self {
            status,
            code: e.code(),
            message: e.to_string(),
        }
    }
}
