//! The rollout loop through the API: `POST /v1/replay` (a candidate pack
//! against recorded history) and `GET /v1/views/approvals/stats`.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use warden_model::Role;
use warden_oversight::rollout::Window;
use warden_oversight::rollout::approvals::{ApprovalStats, StatsOptions, approval_stats};
use warden_oversight::rollout::replay::{
    ReplayOptions, ReplayReport, candidate_tests, replay as replay_history,
};
use warden_policy::Engine;

use crate::AppState;
use crate::auth::{Kind, Principal};
use crate::error::ApiError;
use crate::routes::{allow, client_refusal, refuse};

/// Most files a candidate pack may hold, and most bytes in all.
const MAX_FILES: usize = 500;
const MAX_BYTES: usize = 4 << 20;

/// Body of `POST /v1/replay`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayBody {
    /// The candidate pack: path inside the pack (`warden.toml`,
    /// `policies/refunds.cedar`, `tests/refunds.toml`) → content. Absent:
    /// the pack in force.
    #[serde(default)]
    pub files: Option<BTreeMap<String, String>>,
    /// From: RFC 3339 time, or a duration ago (`30d`); default `30d`.
    #[serde(default)]
    pub since: Option<String>,
    /// Until (exclusive): RFC 3339 time, or a duration ago; default now.
    #[serde(default)]
    pub until: Option<String>,
    /// Only this agent's proposals.
    #[serde(default)]
    pub agent: Option<String>,
    /// Only this tool's proposals.
    #[serde(default)]
    pub tool: Option<String>,
    /// Only proposals in runs of this workflow.
    #[serde(default)]
    pub workflow: Option<String>,
    /// Example records per group of changes (default 3, at most 20).
    #[serde(default)]
    pub examples: Option<usize>,
}

/// A time bound: RFC 3339, or a duration before now.
fn time_bound(name: &str, v: &str) -> Result<i64, ApiError> {
    warden_evidence::time_or_ago(v).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_query",
            format!("`{name}` must be an RFC 3339 time or a duration such as `30d`; got `{v}`"),
        )
    })
}

pub(crate) fn window(
    since: Option<&str>,
    until: Option<&str>,
    agent: Option<String>,
    tool: Option<String>,
    workflow: Option<String>,
) -> Result<Window, ApiError> {
    let since = time_bound("since", since.unwrap_or("30d"))?;
    let until = until.map(|u| time_bound("until", u)).transpose()?;
    if until.is_some_and(|u| u <= since) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "`until` must be after `since`",
        ));
    }
    Ok(Window {
        since_us: Some(since),
        until_us: until,
        agent,
        tool,
        workflow,
        drills: false,
    })
}

/// One replay at a time per process: it takes the CPU for seconds.
fn replay_slot() -> &'static tokio::sync::Semaphore {
    static SLOT: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    SLOT.get_or_init(|| tokio::sync::Semaphore::new(1))
}

/// Replay a candidate pack against recorded history (operators, auditors):
/// every recorded proposal in the window decided again and compared. The
/// candidate must be valid and pass its own tests.
#[utoipa::path(
    post, path = "/v1/replay", tag = "rollout",
    request_body = ReplayBody,
    responses(
        (status = 200, description = "the replay report"),
        (status = 400, description = "invalid_json, invalid_body, invalid_query, invalid_pack, candidate_tests_failed"),
        (status = 403, description = "forbidden: operators and auditors"),
        (status = 429, description = "busy: another replay is running"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn replay(
    State(s): State<AppState>,
    p: Principal,
    body: Result<Json<ReplayBody>, JsonRejection>,
) -> Result<Json<ReplayReport>, ApiError> {
    const PATH: &str = "/v1/replay";
    allow(&s, &p, PATH, &[Role::Operator, Role::Auditor]).await?;
    let reject = |e: ApiError| client_refusal(&s, &p, PATH, e);
    let b = match body {
        Ok(Json(b)) => b,
        Err(e) => return Err(reject(crate::actions::body_error(e)).await),
    };
    let w = match window(
        b.since.as_deref(),
        b.until.as_deref(),
        b.agent,
        b.tool,
        b.workflow,
    ) {
        Ok(w) => w,
        Err(e) => return Err(reject(e).await),
    };
    let engine = match &b.files {
        None => Engine::clone(&s.engine.current()),
        Some(files) => match candidate(files) {
            Ok(e) => e,
            Err(e) => return Err(reject(e).await),
        },
    };
    let Ok(_slot) = replay_slot().try_acquire() else {
        return Err(ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "busy",
            message: "another replay is running; try again when it ends".into(),
        });
    };
    let options = ReplayOptions {
        examples: b.examples.unwrap_or(3).min(20),
    };
    replay_history(&s.store, &engine, &w, &options, |_| {})
        .await
        .map(Json)
        .map_err(|e| ApiError::internal(format!("replay: {e}")))
}

/// Writes `files` into a fresh temporary pack directory, compiles it and
/// runs its tests. The directory is removed before returning.
fn candidate(files: &BTreeMap<String, String>) -> Result<Engine, ApiError> {
    let invalid = |m: String| ApiError::bad_request("invalid_body", m);
    if files.is_empty() || files.len() > MAX_FILES {
        return Err(invalid(format!(
            "`files` must hold between 1 and {MAX_FILES} files"
        )));
    }
    if files.values().map(String::len).sum::<usize>() > MAX_BYTES {
        return Err(invalid(format!(
            "`files` must hold at most {MAX_BYTES} bytes"
        )));
    }
    for name in files.keys() {
        let path = Path::new(name);
        if name.is_empty() || !path.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(invalid(format!(
                "`{name}` is not a relative path inside the pack"
            )));
        }
    }
    if !files.contains_key("warden.toml") {
        return Err(invalid("`files` must hold `warden.toml`".into()));
    }
    let dir = TempPack::new().map_err(|e| ApiError::internal(format!("temporary pack: {e}")))?;
    for (name, text) in files {
        let target = dir.0.join(name);
        let written = target
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&target, text));
        written.map_err(|e| ApiError::internal(format!("temporary pack: {e}")))?;
    }
    let loaded = warden_model::load(&dir.0)
        .map_err(|e| ApiError::bad_request("invalid_pack", e.to_string()))?;
    let engine = warden_policy::compile(loaded, None)
        .map_err(|d| {
            let shown: Vec<String> = d.all().iter().take(10).map(ToString::to_string).collect();
            ApiError::bad_request(
                "invalid_pack",
                format!("the candidate pack is invalid: {}", shown.join("; ")),
            )
        })?
        .engine;
    let tests = candidate_tests(&engine);
    if !tests.failures.is_empty() {
        return Err(ApiError::bad_request(
            "candidate_tests_failed",
            format!(
                "{} of the candidate pack's test cases fail: {}",
                tests.failures.len(),
                tests.failures.join("; ")
            ),
        ));
    }
    Ok(engine)
}

/// A temporary directory removed on drop.
struct TempPack(PathBuf);

impl TempPack {
    fn new() -> std::io::Result<Self> {
        let mut raw = [0u8; 8];
        getrandom::fill(&mut raw).map_err(|e| std::io::Error::other(e.to_string()))?;
        let dir = std::env::temp_dir().join(format!("warden-replay-{}", hex::encode(raw)));
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for TempPack {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Query of `GET /v1/views/approvals/stats`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StatsParams {
    /// From: RFC 3339 time, or a duration ago (default `30d`).
    pub since: Option<String>,
    /// Until (exclusive): RFC 3339 time, or a duration ago.
    pub until: Option<String>,
    /// Only requests that need this group, and its approvers' answers.
    pub group: Option<String>,
    /// An approval within this time of reaching the approver is fast
    /// (default `5s`).
    pub fast: Option<String>,
}

/// Approval statistics: per gate and group (requests, shares, time to
/// decision, share of human approval time), per approver (decisions,
/// approval rate, median time, fast approvals), and the flags.
#[utoipa::path(
    get, path = "/v1/views/approvals/stats", tag = "rollout", params(StatsParams),
    responses((status = 200, description = "the statistics"), (status = 400, description = "invalid_query")),
    security(("bearer" = []))
)]
pub(crate) async fn approval_stats_view(
    State(s): State<AppState>,
    p: Principal,
    q: Result<Query<StatsParams>, QueryRejection>,
) -> Result<Json<ApprovalStats>, ApiError> {
    const PATH: &str = "/v1/views/approvals/stats";
    if p.kind == Kind::Agent {
        let e = ApiError::forbidden("views are for people");
        return Err(refuse(&s, &p, PATH, e).await);
    }
    let reject = |e: ApiError| client_refusal(&s, &p, PATH, e);
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => {
            return Err(reject(ApiError::bad_request("invalid_query", e.body_text())).await);
        }
    };
    let w = match window(q.since.as_deref(), q.until.as_deref(), None, None, None) {
        Ok(w) => w,
        Err(e) => return Err(reject(e).await),
    };
    let fast = match q.fast.as_deref().map(humantime::parse_duration).transpose() {
        Ok(f) => f.map_or(5_000, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        Err(_) => {
            return Err(reject(ApiError::bad_request(
                "invalid_query",
                "`fast` must be a duration such as `5s`",
            ))
            .await);
        }
    };
    let options = StatsOptions {
        group: q.group,
        fast_ms: fast,
        ..StatsOptions::default()
    };
    approval_stats(&s.store, &w, &options)
        .await
        .map(Json)
        .map_err(|e| ApiError::internal(format!("statistics: {e}")))
}
