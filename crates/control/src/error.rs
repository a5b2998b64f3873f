//! What can go wrong changing a control.

use warden_store::StoreError;

/// A control change that was refused or could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The agent is not in the pack.
    #[error("unknown agent `{0}`")]
    UnknownAgent(String),
    /// The tool is not in the pack.
    #[error("unknown tool `{0}`")]
    UnknownTool(String),
    /// The approver group is not in the pack.
    #[error("unknown approver group `{0}`")]
    UnknownGroup(String),
    /// The store failed; nothing changed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ControlError {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownAgent(_) => "unknown_agent",
            Self::UnknownTool(_) => "unknown_tool",
            Self::UnknownGroup(_) => "unknown_group",
            Self::Store(_) => "internal",
        }
    }

    /// Whether the fault is Warden's (5xx) rather than the caller's.
    pub fn is_internal(&self) -> bool {
        matches!(self, Self::Store(_))
    }
}
