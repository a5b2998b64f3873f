//! Errors of the oversight layer.

/// Why an oversight request was refused.
#[derive(Debug, thiserror::Error)]
pub enum OversightError {
    /// No incident with this id.
    #[error("unknown incident `{0}`")]
    UnknownIncident(String),
    /// The incident's state does not allow the change.
    #[error("incident `{id}` is {state}: {why}")]
    IncidentState {
        /// The incident.
        id: String,
        /// Its state.
        state: warden_model::IncidentState,
        /// What would have been needed.
        why: &'static str,
    },
    /// The caller may not change this incident.
    #[error(
        "{person} may not {what} incident `{id}`: only its owner, the owning team, the person on call and operators may"
    )]
    NotResponder {
        /// The person.
        person: String,
        /// `acknowledge` or `resolve`.
        what: &'static str,
        /// The incident.
        id: String,
    },
    /// A bad query value.
    #[error("{0}")]
    InvalidQuery(String),
    /// A review, or a drill request, that cannot be used as written.
    #[error("{0}")]
    InvalidBody(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] warden_store::StoreError),
    /// A control (pause, quarantine, circuit) was refused.
    #[error(transparent)]
    Control(#[from] warden_control::ControlError),
    /// No randomness for ids.
    #[error("cannot generate an id: {0}")]
    Random(String),
}

impl OversightError {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownIncident(_) => "unknown_incident",
            Self::IncidentState { .. } => "invalid_transition",
            Self::NotResponder { .. } => "forbidden",
            Self::InvalidQuery(_) => "invalid_query",
            Self::InvalidBody(_) => "invalid_body",
            Self::Control(e) => e.code(),
            Self::Store(_) | Self::Random(_) => "internal",
        }
    }

    /// Whether the fault is Warden's (5xx) rather than the caller's.
    pub fn is_internal(&self) -> bool {
        match self {
            Self::Store(_) | Self::Random(_) => true,
            Self::Control(e) => e.is_internal(),
            _ => false,
        }
    }
}
