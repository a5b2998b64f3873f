//! The MCP gateway: `/mcp`, MCP streamable HTTP (rmcp).
//!
//! Agents authenticate with their bearer token, as on `/v1`. `tools/list`
//! shows an agent the executable tools some policy could permit it, under
//! their model-safe names; `tools/call` (either name) is a proposal in
//! `enforce` mode through the same runtime path as `POST /v1/actions`:
//! same gates, lifecycle and evidence. What frameworks need from the answer
//! (see DESIGN.md): a refusal is a normal result with `isError` whose *text*
//! carries the code, "not executed" and the reason; a pending approval
//! names the approval and says to call again with the same arguments, or,
//! to a client that declared the MCP Tasks extension, is a task (the action
//! id) that `tasks/get` reports until the action ends.

use std::time::Duration;

use axum::extract::{FromRequestParts, State};
use axum::response::{IntoResponse, Response};
use rmcp::ErrorData as McpError;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams, ContentBlock,
    CreateTaskResult, DetailedTask, GetTaskParams, GetTaskResult, Implementation, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Task, TaskPayload, TaskStatus,
    ToolAnnotations,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::{Value, json};
use warden_model::{Access, ActionStatus, Connector, Pack, Risk, Tool};
use warden_runtime::{ActionView, Mode, Proposal};

use crate::AppState;
use crate::auth::{Kind, Principal};
use crate::error::ApiError;

/// `_meta` key of a `tools/call` naming the workflow run.
pub const RUN_META: &str = "io.warden/run_id";
/// `_meta` key of a `tools/call` carrying the agent's reason (recorded).
pub const REASON_META: &str = "io.warden/reason";
/// How long a `tools/call` waits, beyond the tool's own timeout, for an
/// execution to finish before answering.
const EXECUTION_GRACE: Duration = Duration::from_secs(5);
/// Suggested `tasks/get` polling interval.
const POLL_MS: u64 = 1000;
/// Where refusals on this path are recorded.
const PATH: &str = "/mcp";

/// The `/mcp` service: authentication in front of rmcp's streamable HTTP
/// server. Sessions (in memory, closed when idle) only carry what the client
/// declared at `initialize` (e.g. the Tasks extension); runs, step order and
/// approvals never depend on them, since frameworks open a session per call.
pub(crate) fn service(state: AppState, body_limit: usize) -> axum::Router<AppState> {
    let handler = Gateway {
        state: state.clone(),
    };
    let config = StreamableHttpServerConfig::default()
        .with_sse_keep_alive(None)
        .disable_allowed_hosts()
        .with_max_request_body_bytes(body_limit);
    let mcp = StreamableHttpService::new(
        move || Ok(handler.clone()),
        LocalSessionManager::default().into(),
        config,
    );
    axum::Router::new()
        .route_service("/mcp", mcp)
        .layer(axum::middleware::from_fn_with_state(
            body_limit,
            crate::mcp_params::check_params,
        ))
        .layer(axum::middleware::from_fn_with_state(state, authenticate))
}

/// Lets agents through, with their [`Principal`] in the request; answers
/// `401`/`403` JSON errors (recorded) to others.
async fn authenticate(
    State(s): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (mut parts, body) = req.into_parts();
    let p = match Principal::from_request_parts(&mut parts, &s).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    if p.kind != Kind::Agent {
        let e = ApiError::forbidden(format!(
            "`{}` is a person; /mcp serves agents (people use /v1)",
            p.id
        ));
        return crate::routes::refuse(&s, &p, PATH, e).await.into_response();
    }
    parts.extensions.insert(p);
    next.run(axum::extract::Request::from_parts(parts, body))
        .await
}

#[derive(Clone)]
struct Gateway {
    state: AppState,
}

fn principal(ctx: &RequestContext<RoleServer>) -> Result<Principal, McpError> {
    ctx.extensions
        .get::<axum::http::request::Parts>()
        .and_then(|p| p.extensions.get::<Principal>())
        .cloned()
        .ok_or_else(|| McpError::invalid_request("not authenticated", None))
}

/// The tool a `tools/call` names: by its `/mcp` name or its canonical id.
fn resolve<'a>(pack: &'a Pack, name: &'a str) -> &'a str {
    if pack.tools.contains_key(name) {
        return name;
    }
    pack.mcp_names.get(name).map_or(name, String::as_str)
}

/// A pack tool as `tools/list` shows it.
fn listed(t: &Tool) -> rmcp::model::Tool {
    let schema = match &t.args {
        Value::Object(m) => m.clone(),
        _ => serde_json::Map::new(),
    };
    let mut description = t.description.clone().unwrap_or_else(|| t.id.clone());
    description.push_str(&format!(
        " (Warden tool `{}`, {} risk; governed: calls may be denied or wait for approval)",
        t.id,
        t.risk.as_str()
    ));
    rmcp::model::Tool::new(t.mcp_name.clone(), description, schema)
        .with_title(t.id.clone())
        .with_annotations(
            ToolAnnotations::new()
                .read_only(t.access == Access::Read)
                .destructive(t.access == Access::Write && t.risk >= Risk::High),
        )
}

impl Gateway {
    /// Executes a proposal and waits for its execution to finish.
    async fn propose(
        &self,
        p: &Principal,
        req: CallToolRequestParams,
        meta: &rmcp::model::RequestMetaObject,
    ) -> Result<ActionView, ApiError> {
        let s = &self.state;
        s.rate_limit(p)?;
        let engine = s.runtime.engine().current();
        let tool = resolve(engine.pack(), &req.name).to_owned();
        let timeout = engine
            .pack()
            .tools
            .get(&tool)
            .and_then(|t| t.execute.as_ref())
            .map_or(Duration::from_secs(10), |e| match &e.connector {
                Connector::Http(h) => h.timeout,
                Connector::Mcp(m) => m.timeout,
                Connector::Mock(m) => m.latency,
            });
        // rmcp moves the request's `_meta` into the context.
        let meta = |key: &str| {
            meta.get(key)
                .or_else(|| req.meta.as_ref().and_then(|m| m.get(key)))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let proposal = Proposal {
            tool,
            arguments: Value::Object(req.arguments.clone().unwrap_or_default()),
            run_id: meta(RUN_META),
            mode: Mode::Enforce,
            idempotency_key: None,
            reason: meta(REASON_META),
            claimed_agent: None,
            drill: None,
        };
        let started = std::time::Instant::now();
        let sub = match s.runtime.submit(&p.id, proposal).await {
            Ok(sub) => sub,
            Err(e) => {
                s.metrics.rejected(e.code());
                return Err(crate::routes::runtime_refusal(s, p, PATH, e).await);
            }
        };
        if !sub.replayed {
            s.metrics.decided(&sub.action, started.elapsed());
        }
        let view = sub.action;
        if view.status != ActionStatus::Executing {
            return Ok(view);
        }
        let id = view.action_id.clone();
        match s.runtime.wait(&id, timeout + EXECUTION_GRACE).await? {
            Some(done) => Ok(done),
            None => Ok(s.runtime.action(&id, Some(&p.id)).await?),
        }
    }
}

/// Why the action went where it did: a runtime gate's own message (pause,
/// circuit, step order) when one refused it, else the reasons of the
/// determining policies, or the decision's message.
fn why(view: &ActionView) -> String {
    let gate = view
        .decision
        .get("reevaluated_gate")
        .or_else(|| view.decision.get("gate"))
        .and_then(|g| g.get("message"))
        .and_then(Value::as_str);
    if let Some(m) = gate {
        return m.to_owned();
    }
    let d = view
        .decision
        .get("reevaluated")
        .filter(|r| r.is_object())
        .unwrap_or(&view.decision);
    let reasons: Vec<&str> = d
        .get("policies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.pointer("/annotations/reason").and_then(Value::as_str))
        .collect();
    let message = d.get("message").and_then(Value::as_str).unwrap_or_default();
    if reasons.is_empty() {
        message.to_owned()
    } else {
        format!("{} ({message})", reasons.join("; "))
    }
}

fn error_result(text: String, view: Option<&ActionView>) -> CallToolResult {
    let mut r = CallToolResult::error(vec![ContentBlock::text(text)]);
    if let Some(v) = view {
        r.structured_content = Some(json!({
            "action_id": v.action_id,
            "status": v.status.as_str(),
            "code": v.code,
            "approval_id": v.approval_id,
        }));
    }
    r
}

/// What the agent is told about an action that has not ended.
fn pending_text(view: &ActionView) -> String {
    match view.status {
        ActionStatus::AwaitingApproval | ActionStatus::Escalated => format!(
            "approval_required: not executed yet. {}. Approval {} has been requested. Call this tool again with the same arguments once it is approved: it then executes once and returns the result. (Warden action {})",
            why(view),
            view.approval_id.as_deref().unwrap_or("-"),
            view.action_id
        ),
        _ => format!(
            "{}: still in progress (Warden action {}); call again later with the same arguments only if it was waiting for an approval",
            view.status.as_str(),
            view.action_id
        ),
    }
}

/// The `tools/call` result for an action that has ended.
fn ended(view: &ActionView) -> CallToolResult {
    let code = view
        .code
        .clone()
        .unwrap_or_else(|| view.status.as_str().to_owned());
    let result = view.outcome.as_ref().and_then(|o| o.get("result"));
    if view.status == ActionStatus::Succeeded {
        // An upstream MCP tool's own result passes through as it answered.
        if let Some(r) = result
            && r.get("content").is_some_and(Value::is_array)
            && let Ok(mut r) = serde_json::from_value::<CallToolResult>(r.clone())
        {
            r.is_error = None;
            return r;
        }
        let value = result.cloned().unwrap_or(Value::Null);
        let mut r = CallToolResult::success(vec![ContentBlock::text(value.to_string())]);
        if value.is_object() {
            r.structured_content = Some(value);
        }
        return r;
    }
    // Called at least once (a refused, unreachable or changed upstream tool
    // was not).
    let executed = view
        .outcome
        .as_ref()
        .and_then(|o| o.get("attempts"))
        .and_then(Value::as_u64)
        .is_some_and(|n| n > 0);
    let detail = view
        .outcome
        .as_ref()
        .and_then(|o| o.get("error"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut text = if executed {
        format!(
            "{code}: the tool was called and failed. {}",
            detail.unwrap_or_default()
        )
    } else if let Some(d) = detail {
        format!("{code}: not executed. {d}")
    } else if code == "approval_denied" {
        format!(
            "approval_denied: not executed. An approver denied approval {}.",
            view.approval_id.as_deref().unwrap_or("-")
        )
    } else if code == "approval_expired" {
        format!(
            "approval_expired: not executed. No approval of {} arrived in time.",
            view.approval_id.as_deref().unwrap_or("-")
        )
    } else {
        format!("{code}: not executed. {}", why(view))
    };
    if let Some(content) = result
        .and_then(|r| r.get("content"))
        .and_then(Value::as_array)
    {
        for c in content {
            if let Some(t) = c.get("text").and_then(Value::as_str) {
                text.push_str("\nupstream said: ");
                text.push_str(t);
            }
        }
    }
    text.push_str(&format!(" (Warden action {})", view.action_id));
    error_result(text, Some(view))
}

fn task_of(view: &ActionView) -> Task {
    let status = if view.is_final() {
        TaskStatus::Completed
    } else {
        TaskStatus::Working
    };
    let mut t = Task::new(
        view.action_id.clone(),
        status,
        view.created.clone(),
        view.updated.clone(),
    )
    .with_poll_interval_ms(POLL_MS);
    if !view.is_final() {
        t = t.with_status_message(pending_text(view));
    }
    t
}

impl rmcp::ServerHandler for Gateway {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tasks()
                .build(),
        )
        .with_server_info(Implementation::new("warden", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "Tools are governed by Warden: a call may be denied or wait for a human approval. \
             A refused call returns an error whose text gives the code and the reason and was \
             not executed; when an approval is pending, call the tool again with the same \
             arguments once it is approved.",
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let p = principal(&ctx)?;
        let engine = self.state.runtime.engine().current();
        let connectors = self.state.runtime.connectors();
        let mut tools = Vec::new();
        for t in engine.pack().tools.values() {
            if t.execute.is_none() || !engine.could_permit(&p.id, &t.id) {
                continue;
            }
            if let Err(why) = connectors.usable(&t.id).await {
                tracing::debug!(tool = %t.id, reason = ?why, "not listed on /mcp");
                continue;
            }
            tools.push(listed(t));
        }
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let p = principal(&ctx)?;
        let tasks = ctx
            .client_capabilities()
            .is_some_and(|c| c.supports_tasks());
        let view = match self.propose(&p, request, &ctx.meta).await {
            Ok(v) => v,
            Err(e) => {
                return Ok(
                    error_result(format!("{}: not executed. {}", e.code, e.message), None).into(),
                );
            }
        };
        if view.is_final() {
            return Ok(ended(&view).into());
        }
        if tasks {
            return Ok(CallToolResponse::Task(CreateTaskResult::new(task_of(
                &view,
            ))));
        }
        Ok(error_result(pending_text(&view), Some(&view)).into())
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, McpError> {
        let p = principal(&ctx)?;
        let view = self
            .state
            .runtime
            .action(&request.task_id, Some(&p.id))
            .await
            .map_err(|e| {
                let e = ApiError::from(e);
                McpError::invalid_params(format!("{}: {}", e.code, e.message), None)
            })?;
        let payload = if view.is_final() {
            let result = serde_json::to_value(ended(&view)).unwrap_or(Value::Null);
            TaskPayload::Completed {
                result: result.as_object().cloned().unwrap_or_default(),
            }
        } else {
            TaskPayload::Working
        };
        Ok(GetTaskResult::new(DetailedTask::new(
            task_of(&view),
            payload,
        )))
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        Err(McpError::invalid_request(
            format!(
                "task {} is a Warden action; it cannot be cancelled over MCP (an approver can deny it)",
                request.task_id
            ),
            None,
        ))
    }
}
