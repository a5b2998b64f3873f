//! Drills (`POST /v1/drills`, `GET /v1/drills`, `GET|DELETE
//! /v1/drills/{id}`): an operator starts a drill the pack declares; the
//! server sends its traffic as the drill's agent, marked as a drill, and
//! measures detection, paging and response against the playbooks.

mod run;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Notify;
use warden_model::Role;
use warden_store::DrillRow;

use crate::AppState;
use crate::actions::body_error;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::routes::{allow, client_refusal};

pub(crate) use run::recover;

/// Drills running in this process, by id: notify to abort.
fn running() -> &'static Mutex<HashMap<String, Arc<Notify>>> {
    static RUNNING: OnceLock<Mutex<HashMap<String, Arc<Notify>>>> = OnceLock::new();
    RUNNING.get_or_init(Mutex::default)
}

/// Body of `POST /v1/drills`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartBody {
    /// The pack's `[[drills]]` id.
    pub drill: String,
    /// Acknowledge and resolve each incident as this person once paged
    /// (for CI). Without it, the drill waits for real people up to each
    /// playbook's response window.
    #[serde(default)]
    pub ack_as: Option<String>,
}

/// A drill run.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DrillView {
    /// `drl_…`.
    pub id: String,
    /// The pack's drill id.
    pub drill: String,
    /// `running`, `passed`, `failed`, `aborted`.
    pub state: String,
    /// Who started it.
    pub started_by: String,
    /// When.
    pub started: String,
    /// When it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
    /// The scenario, and the measured figures once it ended.
    #[schema(value_type = Object)]
    pub report: Value,
}

impl DrillView {
    fn from_row(r: &DrillRow) -> Self {
        Self {
            id: r.id.clone(),
            drill: r.name.clone(),
            state: r.state.clone(),
            started_by: r.started_by.clone(),
            started: warden_evidence::time_from_micros(r.started_us),
            finished: r.finished_us.map(warden_evidence::time_from_micros),
            report: serde_json::from_str(&r.report).unwrap_or(Value::Null),
        }
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        code: "unknown_drill",
        message: format!("unknown drill `{id}`"),
    }
}

fn conflict(code: &'static str, message: String) -> ApiError {
    ApiError {
        status: StatusCode::CONFLICT,
        code,
        message,
    }
}

/// Start a drill the pack declares (operators). Its traffic is real
/// traffic marked as a drill; pages say DRILL. Answers at once with the
/// running drill; poll `GET /v1/drills/{id}` for the report.
#[utoipa::path(
    post, path = "/v1/drills", tag = "drills",
    request_body = StartBody,
    responses(
        (status = 202, body = DrillView),
        (status = 400, description = "invalid_json, invalid_body (unknown ack_as person)"),
        (status = 403, description = "forbidden: operators only"),
        (status = 404, description = "unknown_drill"),
        (status = 409, description = "drill_running: one drill at a time"),
    ),
    security(("bearer" = []))
)]
pub async fn start(
    State(s): State<AppState>,
    p: Principal,
    body: Result<Json<StartBody>, JsonRejection>,
) -> Result<(StatusCode, Json<DrillView>), ApiError> {
    const PATH: &str = "/v1/drills";
    allow(&s, &p, PATH, &[Role::Operator]).await?;
    let b = match body {
        Ok(Json(b)) => b,
        Err(e) => return Err(client_refusal(&s, &p, PATH, body_error(e)).await),
    };
    let engine = s.engine.current();
    let pack = engine.pack();
    let Some(drill) = pack.drills.get(&b.drill).cloned() else {
        let known: Vec<&str> = pack.drills.keys().map(String::as_str).collect();
        let mut e = not_found(&b.drill);
        e.message = format!(
            "unknown drill `{}`; the pack declares: {}",
            b.drill,
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        );
        return Err(client_refusal(&s, &p, PATH, e).await);
    };
    if let Some(a) = &b.ack_as
        && !pack.people.contains_key(a)
    {
        let e = ApiError::bad_request("invalid_body", format!("`ack_as`: unknown person `{a}`"));
        return Err(client_refusal(&s, &p, PATH, e).await);
    }
    let id = new_id();
    let stop = Arc::new(Notify::new());
    {
        let mut r = running()
            .lock()
            .map_err(|_| ApiError::internal("drill registry poisoned"))?;
        if let Some(other) = r.keys().next() {
            return Err(conflict(
                "drill_running",
                format!(
                    "drill {other} is running; one drill at a time (abort it with DELETE /v1/drills/{other})"
                ),
            ));
        }
        r.insert(id.clone(), Arc::clone(&stop));
    }
    let (rec, row) = run::started(&id, &drill, &p.id, b.ack_as.as_deref(), pack);
    if let Err(e) = s
        .log
        .commit(
            vec![rec],
            vec![warden_store::StateWrite::Drill(row.clone())],
        )
        .await
    {
        if let Ok(mut r) = running().lock() {
            r.remove(&id);
        }
        return Err(ApiError::internal(format!("cannot record the drill: {e}")));
    }
    let view = DrillView::from_row(&row);
    let st = run::Start {
        id: id.clone(),
        drill,
        by: p.id.clone(),
        ack_as: b.ack_as,
        row,
        stop,
    };
    let s2 = s.clone();
    tokio::spawn(async move {
        run::run(s2, st).await;
        if let Ok(mut r) = running().lock() {
            r.remove(&id);
        }
    });
    Ok((StatusCode::ACCEPTED, Json(view)))
}

/// Query of `GET /v1/drills`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// At most this many, newest first (default 100, at most 10,000).
    pub limit: Option<u32>,
}

/// Drill runs, newest first (operators, auditors).
#[utoipa::path(
    get, path = "/v1/drills", tag = "drills", params(ListParams),
    responses((status = 200, body = [DrillView]), (status = 403, description = "forbidden")),
    security(("bearer" = []))
)]
pub async fn list(
    State(s): State<AppState>,
    p: Principal,
    q: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<Vec<DrillView>>, ApiError> {
    const PATH: &str = "/v1/drills";
    allow(&s, &p, PATH, &[Role::Operator, Role::Auditor]).await?;
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => {
            let e = ApiError::bad_request("invalid_query", e.body_text());
            return Err(client_refusal(&s, &p, PATH, e).await);
        }
    };
    let rows = s
        .store
        .drills(false, q.limit.unwrap_or(100))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(rows.iter().map(DrillView::from_row).collect()))
}

/// One drill run with its report (operators, auditors).
#[utoipa::path(
    get, path = "/v1/drills/{id}", tag = "drills",
    params(("id" = String, Path, description = "drill run id (drl_…)")),
    responses((status = 200, body = DrillView), (status = 404, description = "unknown_drill")),
    security(("bearer" = []))
)]
pub async fn show(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<DrillView>, ApiError> {
    allow(&s, &p, "/v1/drills/{id}", &[Role::Operator, Role::Auditor]).await?;
    match s.store.drill(&id).await {
        Ok(Some(r)) => Ok(Json(DrillView::from_row(&r))),
        Ok(None) => Err(not_found(&id)),
        Err(e) => Err(ApiError::internal(e.to_string())),
    }
}

/// Abort a running drill (operators): it stops sending, undoes what it
/// changed and ends `aborted`.
#[utoipa::path(
    delete, path = "/v1/drills/{id}", tag = "drills",
    params(("id" = String, Path, description = "drill run id (drl_…)")),
    responses((status = 202, body = DrillView), (status = 404, description = "unknown_drill"), (status = 409, description = "drill_finished")),
    security(("bearer" = []))
)]
pub async fn abort(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<DrillView>), ApiError> {
    allow(&s, &p, "/v1/drills/{id}", &[Role::Operator]).await?;
    let row = match s.store.drill(&id).await {
        Ok(Some(r)) => r,
        Ok(None) => return Err(not_found(&id)),
        Err(e) => return Err(ApiError::internal(e.to_string())),
    };
    if row.state != "running" {
        return Err(conflict(
            "drill_finished",
            format!("drill {id} already ended ({})", row.state),
        ));
    }
    let here = running().lock().ok().and_then(|r| r.get(&id).cloned());
    match here {
        // The runner stops at its next step and cleans up.
        Some(stop) => stop.notify_one(),
        // Left by another process: clean up here.
        None => {
            let undone = run::undo(&s, &id).await;
            let mut report: Value = serde_json::from_str(&row.report).unwrap_or(Value::Null);
            if let Value::Object(m) = &mut report {
                m.insert("state".into(), "aborted".into());
                m.insert("undone".into(), serde_json::json!(undone));
            }
            run::finish(&s, &row, "aborted", report).await;
        }
    }
    Ok((StatusCode::ACCEPTED, Json(DrillView::from_row(&row))))
}

fn new_id() -> String {
    let mut b = [0u8; 12];
    // An id that cannot be random is still unique enough with the time.
    if getrandom::fill(&mut b).is_err() {
        b[..8].copy_from_slice(
            &warden_evidence::micros(&warden_evidence::now())
                .unwrap_or(0)
                .to_be_bytes(),
        );
    }
    format!("drl_{}", hex::encode(b))
}
