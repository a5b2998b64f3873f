//! Warden's decision engine: Cedar policies, approval gates, fail-closed
//! decisions.
//!
//! [`compile`] turns a loaded pack into an [`Engine`]: it compiles each tool's
//! argument JSON Schema, generates the Cedar schema, parses and strictly
//! validates every policy (per policy, in parallel, cached by content hash:
//! see [`ValidationCache`]) and slices the policy set by tool. [`Engine::decide`]
//! then answers `allow`, `deny` (with a [`DenyCode`]) or `approval_required`
//! (with the groups and quorum) for a [`Request`].
//!
//! Semantics: default deny; a `forbid` annotated `@approval("g")` with
//! `unless { context.approvals.contains("g") }` is an approval gate; when every
//! determining policy of a deny is a gate, the request is evaluated again with
//! those groups' approvals, and `allow` there means `approval_required`. Any
//! evaluation error denies.
//!
//! This crate depends on `model` only; it does no I/O beyond what `model`
//! reads and reads no clock. No other Warden crate imports `cedar_policy`.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use warden_policy::{Engine, Request};
//! let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/support-refunds");
//! let engine = Engine::load(dir)?.engine;
//! let args = serde_json::json!({
//!     "order_id": "ord_1", "customer_id": "cus_1", "amount_cents": 25000, "reason": "damaged"
//! });
//! let d = engine.decide(&Request {
//!     agent: "support-bot",
//!     tool: "stripe.refund",
//!     args: &args,
//!     approvals: &[],
//!     context: &Default::default(),
//! });
//! assert_eq!(d.outcome, warden_model::Outcome::ApprovalRequired);
//! # Ok(()) }
//! ```

mod context;
mod decision;
mod engine;
mod error;
mod eval;
mod explain;
mod handle;
mod policies;
mod schema;
mod testing;
mod validate;

pub use decision::{ApprovalRequirement, Decision, Request};
pub use engine::{Compiled, Engine, RawParts, Replayed, Threshold, compile};
pub use error::{PolicyProblem, RequestError};
pub use explain::{Explanation, UsageUsed};
pub use handle::EngineHandle;
pub use policies::{Effect, Gate, PolicyInfo};
pub use schema::{access_group, risk_group, system_group};
pub use testing::{CaseResult, run_case};
pub use validate::{ValidationCache, findings as validation_findings};
pub use warden_model::{DenyCode, Outcome, Risk};

/// Loading and compiling a pack failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The pack could not be read.
    #[error(transparent)]
    Load(#[from] warden_model::LoadError),
    /// The pack has errors.
    #[error(transparent)]
    Invalid(#[from] warden_model::Diagnostics),
}
