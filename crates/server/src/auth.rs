//! Bearer-token authentication against the pack's token hashes, and roles.

use std::collections::{BTreeSet, HashMap};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use warden_evidence::{Record, RecordKind};
use warden_model::{Credentials, Pack, Role};

use crate::AppState;
use crate::error::ApiError;

/// What a principal is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An AI agent.
    Agent,
    /// A person: approver, operator, auditor.
    Person,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Agent or person id.
    pub id: String,
    /// Agent or person.
    pub kind: Kind,
    /// Roles (people only).
    pub roles: BTreeSet<Role>,
}

impl Principal {
    /// Fails with 403 unless the caller is a person with one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if self.kind == Kind::Person && roles.iter().any(|r| self.roles.contains(r)) {
            return Ok(());
        }
        let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        Err(ApiError::forbidden(format!(
            "`{}` may not do this: it needs the role {}",
            self.id,
            names.join(" or ")
        )))
    }
}

/// Token hash → principal, built from the pack (and token variables read
/// once at start).
#[derive(Debug, Default)]
pub struct Principals {
    by_hash: HashMap<String, Principal>,
}

impl Principals {
    /// Every principal of `pack` with its token hashes; `env` reads token
    /// variables.
    pub fn from_pack(pack: &Pack, env: impl Fn(&str) -> Option<String>) -> Self {
        let mut by_hash = HashMap::new();
        let mut add = |creds: &Credentials, p: Principal| {
            let from_env = creds
                .token_env
                .as_deref()
                .and_then(&env)
                .filter(|t| !t.is_empty())
                .map(|t| Credentials::hash_token(&t));
            for h in creds.token_hashes.iter().cloned().chain(from_env) {
                by_hash.insert(h, p.clone());
            }
        };
        for a in pack.agents.values() {
            add(
                &a.credentials,
                Principal {
                    id: a.id.clone(),
                    kind: Kind::Agent,
                    roles: BTreeSet::new(),
                },
            );
        }
        for p in pack.people.values() {
            add(
                &p.credentials,
                Principal {
                    id: p.id.clone(),
                    kind: Kind::Person,
                    roles: p.roles.iter().copied().collect(),
                },
            );
        }
        Self { by_hash }
    }

    /// The person `id` of `pack` as a principal (the console's sessions
    /// name a person, whose roles are read from the pack in force).
    pub fn person(pack: &Pack, id: &str) -> Option<Principal> {
        pack.people.get(id).map(|p| Principal {
            id: p.id.clone(),
            kind: Kind::Person,
            roles: p.roles.iter().copied().collect(),
        })
    }

    /// The principal holding `token`.
    pub fn find(&self, token: &str) -> Option<&Principal> {
        self.by_hash.get(&Credentials::hash_token(token))
    }
}

/// Extracts the authenticated caller; a missing or unknown token answers
/// 401 and is recorded as evidence (never the token itself).
impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let token = header
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim);
        let (found, reason) = match token {
            None => (None, "no bearer token"),
            Some(t) => (state.principals().find(t).cloned(), "unknown token"),
        };
        match found {
            Some(p) => Ok(p),
            None => {
                let mut r = Record::new(RecordKind::AccessDenied);
                r.code = Some("unauthenticated".into());
                r.message = Some(format!(
                    "{reason} for {} {}",
                    parts.method,
                    parts.uri.path()
                ));
                r.detail = Some(serde_json::json!({
                    "method": parts.method.as_str(),
                    "path": parts.uri.path(),
                    "reason": reason,
                }));
                if let Err(e) = state.log.append(r).await {
                    tracing::error!(error = %e, "cannot record a failed authentication");
                }
                Err(ApiError::unauthenticated(format!(
                    "{reason}: send `Authorization: Bearer <token>`"
                )))
            }
        }
    }
}
