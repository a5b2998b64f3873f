//! The OpenAPI document at `/v1/openapi.json`, generated from the handlers'
//! annotations and the wire types.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "Warden", description = "Governance gateway for AI agents: propose actions, get decisions, execute inside policy, with tamper-evident evidence. Every error is `{\"error\": {\"code\", \"message\"}}`."),
    paths(
        crate::actions::propose,
        crate::actions::get_action,
        crate::actions::outcome,
        crate::approvals::list,
        crate::approvals::show,
        crate::approvals::decide,
        crate::approvals::cancel,
        crate::runs::start_run,
        crate::runs::get_run,
        crate::runs::cancel_run,
        crate::runs::pause,
        crate::runs::resume,
        crate::oversight::quarantine,
        crate::oversight::release,
        crate::oversight::circuit,
        crate::oversight::list,
        crate::oversight::show,
        crate::oversight::ack,
        crate::oversight::resolve,
        crate::oversight::review,
        crate::drills::list,
        crate::drills::start,
        crate::drills::show,
        crate::drills::abort,
        crate::oversight::runs_view,
        crate::oversight::approvals_view,
        crate::oversight::hotspots_view,
        crate::rollout::replay,
        crate::rollout::approval_stats_view,
        crate::audit::query,
        crate::audit::verify,
        crate::audit::erase,
        crate::routes::healthz,
        crate::routes::whoami,
    ),
    components(schemas(
        crate::actions::ProposalBody,
        crate::runs::RunBody,
        crate::runs::PauseBody,
        crate::runs::CancelBody,
        crate::audit::EraseBody,
        crate::rollout::ReplayBody,
        warden_runtime::ActionView,
        warden_runtime::RunView,
        warden_runtime::Report,
        warden_runtime::Mode,
        warden_runtime::ApprovalView,
        warden_runtime::DecisionBody,
        warden_runtime::Vote,
        warden_runtime::Verdict,
        warden_runtime::Requirement,
        crate::approvals::ApprovalList,
        crate::oversight::AnswerBody,
        crate::oversight::QuarantineBody,
        crate::oversight::CircuitBody,
        warden_oversight::IncidentView,
        warden_oversight::NotificationView,
        warden_oversight::RunsView,
        warden_oversight::ApprovalsView,
        warden_oversight::HotspotsView,
        ErrorBody,
    )),
    modifiers(&Bearer),
)]
pub struct ApiDoc;

/// `{"error": {"code", "message"}}`
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    /// The error.
    error: ErrorDetail,
}

/// A stable `code` and a message for people.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `invalid_arguments`, `unknown_tool`, ...
    code: String,
    /// For people.
    message: String,
}

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}
