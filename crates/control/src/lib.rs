//! Warden's controls: the switches oversight throws and the runtime obeys.
//! An agent can be **paused** (the kill switch: every proposal denied
//! `agent_paused`), **quarantined** (every write it proposes also needs the
//! approval of a named group) and a tool's **circuit** can be opened (every
//! proposal of it denied `tool_circuit_open` until a time).
//!
//! Start from [`Controls`]: [`Controls::load`] reads the switches from the
//! store, the `set_*` methods change one (the row and its evidence record
//! commit together, then the in-memory copy follows), and the readers
//! ([`Controls::paused`], [`Controls::open_circuit`],
//! [`Controls::quarantine_of`]) answer the gates on the hot path without
//! I/O.
//!
//! Depends on `model`, `policy` (the pack in force, to refuse unknown
//! names), `evidence` and `store`. The runtime and oversight are peers
//! above it: oversight throws switches through this crate, never through
//! the runtime.
//!
//! ```no_run
//! # async fn demo(controls: warden_control::Controls) -> Result<(), warden_control::ControlError> {
//! controls.set_paused("support-bot", true, "olivia", Some("refund loop".into())).await?;
//! assert!(controls.paused("support-bot").is_some());
//! # Ok(()) }
//! ```

mod controls;
mod error;

pub use controls::Controls;
pub use error::ControlError;
pub use warden_store::{AgentStateRow, CircuitRow};
