//! Warden's runtime layer: the action lifecycle (DESIGN.md, "Action
//! lifecycle"). Start from [`Runtime`]: [`Runtime::submit`] takes an agent's
//! [`Proposal`], runs the gates in order — known tool, arguments against the
//! tool's JSON Schema, legal next step of the run's workflow, agent not
//! paused, policy — and commits the decision record and the action's state
//! in one transaction before answering. In `enforce` mode an allowed action
//! is executed through its connector ([`Connectors`]: `http` or `mock`); in
//! `check` mode the agent executes and calls [`Runtime::report`]. Shadow
//! mode (per agent or workflow) records what enforcement would do and never
//! blocks. [`Runtime::recover`] reconciles actions a crash left `executing`.
//!
//! Depends on `model`, `policy`, `evidence` and `store`; knows nothing of
//! HTTP routes or wire JSON beyond the views it returns.

mod approval;
mod cancel;
mod connector;
mod error;
mod exec;
mod facts;
mod gates;
mod locks;
mod notify;
mod runs;
mod runtime;
mod types;
pub mod upstream;
mod usage;
mod watch;

pub use approval::{
    ApprovalView, DecisionBody, Requirement, Verdict, Vote, record_for as approval_record,
};
pub use cancel::Canceller;
pub use connector::{Connectors, ExecOutcome};
pub use error::RuntimeError;
pub use runtime::{Runtime, RuntimeConfig};
pub use types::{ActionView, DrillTag, Mode, Proposal, Report, RunView, Submitted};
pub use warden_store::ApprovalFilter;
