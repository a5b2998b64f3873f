//! The governance pack: what Warden governs, loaded from a directory and checked.
//!
//! A pack is a directory under version control holding `warden.toml` (people,
//! teams, agents, systems, tools, approver groups, workflows), `policies/*.cedar`
//! and `tests/*.toml`. Start from [`load`], which returns a [`Pack`] and every
//! [`Diagnostic`] found, each with its file, line and column.
//!
//! This crate reads files and nothing else: it knows nothing of Cedar (the
//! `policy` crate checks policies), of storage or of the network.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/support-refunds");
//! let loaded = warden_model::load(&dir)?;
//! assert!(loaded.diagnostics.iter().all(|d| !d.is_error()));
//! assert!(loaded.pack.tools.contains_key("stripe.refund"));
//! # Ok(()) }
//! ```

mod counter;
mod diagnostic;
mod error;
mod execute;
mod facts;
mod group;
mod load;
mod manifest;
mod mcp;
mod oversight;
mod pack;
mod redaction;
mod refdata;
mod slack;
mod source;
mod testcase;
mod vocab;

pub use counter::{CountedRequest, Counter, MAX_WINDOW, Per};
pub use diagnostic::{Diagnostic, DiagnosticJson, Diagnostics, Problem, Severity, did_you_mean};
pub use error::{LoadError, ModelProblem};
pub use execute::{
    Connector, Credential, DEFAULT_MAX_RESULT_BYTES, Execution, HttpConnector, MockConnector,
    OnInterrupt, ValueSource,
};
pub use facts::{DEFAULT_FACT_TIMEOUT, DEFAULT_FACT_TTL, Fact};
pub use group::{DEFAULT_EXPIRES_AFTER, Webhook};
pub use load::{Loaded, MANIFEST, POLICY_DIR, TEST_DIR, load, valid_id};
pub use mcp::{McpConnector, McpServer, McpTransport, default_mcp_name, is_model_safe_name};
pub use oversight::{
    Detector, Drill, DrillStep, Fault, IncidentSeverity, OUTPUT_DATA_KINDS, PAGERDUTY_EVENTS_URL,
    Playbook, PlaybookAction, Rotation, Route, RouteKind, Scenario, WORKFLOW_OWNER,
};
pub use pack::{
    Agent, ApproverGroup, Credentials, DEFAULT_RETENTION, Escalation, Pack, PackVersion, Paging,
    Person, Step, System, Team, Tool, Workflow,
};
pub use redaction::{Redaction, RedactionPattern, SCANNED_KINDS};
pub use refdata::{DATA_DIR, ReferenceData};
pub use slack::{DEFAULT_SLACK_API, Slack, SlackSecrets};
pub use source::{Location, SourceFile};
pub use testcase::{DRILL_SOURCE, Expectation, RequestContext, TestCase, Trigger, load_test_cases};
pub use vocab::{
    Access, ActionStatus, ApprovalState, DeliveryState, DenyCode, FailureCode, IncidentState,
    Outcome, Risk, Role, RunStatus, UnknownWord,
};
