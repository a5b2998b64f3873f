//! The runtime: the one place where proposals become actions. Handlers call
//! [`Runtime::submit`]; it runs the gates in order (known tool, arguments,
//! step order, agent not paused, policy), commits the decision and the
//! action's state in one transaction, and executes allowed `enforce`
//! actions through their connector.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::watch;
use warden_control::Controls;
use warden_evidence::{Record, Redactor, micros, now};
use warden_model::{ActionStatus, DenyCode, Outcome, RequestContext, RunStatus};
use warden_policy::{EngineHandle, Request};
use warden_store::ApprovalRow;
use warden_store::{ActionRow, AuditLog, StateWrite, Store};

use crate::approval::NewRequest;
use crate::connector::Connectors;
use crate::error::RuntimeError;
use crate::gates::GateInput;
use crate::locks::KeyedLocks;
use crate::notify::Notifier;
use crate::runs::RunState;
use crate::types::{ActionView, Mode, Proposal, Submitted};

/// Tuning of the runtime.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// How long a proposal waits for an `enforce` execution before it is
    /// answered `202` with the action still `executing`.
    pub sync_wait: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            sync_wait: Duration::from_secs(10),
        }
    }
}

/// The action lifecycle over a store and an audit log. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Runtime(pub(crate) Arc<Inner>);

pub(crate) struct Inner {
    pub(crate) engine: Arc<EngineHandle>,
    pub(crate) log: AuditLog,
    pub(crate) redactor: Redactor,
    pub(crate) connectors: RwLock<Arc<Connectors>>,
    /// Runs touched since start (loaded on first use).
    pub(crate) runs: Mutex<HashMap<String, Arc<tokio::sync::Mutex<RunState>>>>,
    /// Proposals that must not interleave: the same (agent, idempotency
    /// key), or without a key the identical request, so concurrent
    /// duplicates wait and then find the first one's action.
    pub(crate) keys: KeyedLocks,
    /// Outcome reports of one action, one at a time.
    pub(crate) action_locks: KeyedLocks,
    /// Non-final actions someone may wait for.
    pub(crate) watchers: Mutex<HashMap<String, watch::Sender<Option<ActionView>>>>,
    /// Pause, quarantine and circuits (shared with oversight).
    pub(crate) controls: Controls,
    /// Actions per lifecycle state, kept with each transition.
    pub(crate) counts: Mutex<BTreeMap<&'static str, i64>>,
    pub(crate) config: RuntimeConfig,
    /// Approver-group webhooks.
    pub(crate) notifier: RwLock<Arc<Notifier>>,
    /// Every change of an approval request happens under this lock.
    pub(crate) approvals_lock: tokio::sync::Mutex<()>,
    /// Wakes the approval timer task (a new request may be due earlier).
    pub(crate) timer_wake: tokio::sync::Notify,
    /// Counter windows (`context.usage`).
    pub(crate) usage: crate::usage::Windows,
    /// Facts fetched recently (`context.facts`).
    pub(crate) facts: crate::facts::FactCache,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").finish_non_exhaustive()
    }
}

/// A new random id with `prefix`.
pub(crate) fn new_id(prefix: &str) -> Result<String, RuntimeError> {
    let mut b = [0u8; 12];
    getrandom::fill(&mut b).map_err(|e| RuntimeError::Random(e.to_string()))?;
    Ok(format!("{prefix}_{}", hex::encode(b)))
}

/// µs since the epoch, now.
pub(crate) fn now_us() -> i64 {
    micros(&now()).unwrap_or(0)
}

impl Runtime {
    /// A runtime over `log` and its store, obeying `controls`.
    pub async fn new(
        engine: Arc<EngineHandle>,
        log: AuditLog,
        controls: Controls,
        redactor: Redactor,
        config: RuntimeConfig,
    ) -> Result<Self, RuntimeError> {
        let connectors = Connectors::build(engine.current().pack());
        let notifier = Notifier::build(engine.current().pack());
        let store = log.store().clone();
        let mut counts = BTreeMap::new();
        for (state, n) in store.action_counts().await? {
            if let Ok(s) = state.parse::<ActionStatus>() {
                counts.insert(s.as_str(), n);
            }
        }
        Ok(Self(Arc::new(Inner {
            engine,
            log,
            redactor,
            connectors: RwLock::new(Arc::new(connectors)),
            runs: Mutex::new(HashMap::new()),
            keys: KeyedLocks::default(),
            action_locks: KeyedLocks::default(),
            watchers: Mutex::new(HashMap::new()),
            controls,
            counts: Mutex::new(counts),
            config,
            notifier: RwLock::new(Arc::new(notifier)),
            approvals_lock: tokio::sync::Mutex::new(()),
            timer_wake: tokio::sync::Notify::new(),
            usage: crate::usage::Windows::default(),
            facts: crate::facts::FactCache::default(),
        })))
    }

    /// The audit log (to subscribe to committed records).
    pub fn log(&self) -> &AuditLog {
        &self.0.log
    }

    /// The store.
    pub fn store(&self) -> &Store {
        self.0.log.store()
    }

    /// Pause, quarantine and circuits.
    pub fn controls(&self) -> &Controls {
        &self.0.controls
    }

    /// The policy engine in force.
    pub fn engine(&self) -> &Arc<EngineHandle> {
        &self.0.engine
    }

    /// Rebuilds the connectors and approval webhooks from the pack in
    /// force (after a reload), and wakes the approval timers (deadlines
    /// follow the pack's escalation settings).
    pub fn reload_connectors(&self) {
        let pack = self.0.engine.current();
        let c = Connectors::build(pack.pack());
        if let Ok(mut w) = self.0.connectors.write() {
            *w = Arc::new(c);
        }
        let n = Notifier::build(pack.pack());
        if let Ok(mut w) = self.0.notifier.write() {
            *w = Arc::new(n);
        }
        // Counters may have changed: windows load again from the store.
        self.0.usage.clear();
        self.0.facts.clear();
        self.0.timer_wake.notify_one();
    }

    pub(crate) fn notifier(&self) -> Arc<Notifier> {
        match self.0.notifier.read() {
            Ok(c) => Arc::clone(&c),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }

    /// The connectors of the pack in force.
    pub fn connectors(&self) -> Arc<Connectors> {
        match self.0.connectors.read() {
            Ok(c) => Arc::clone(&c),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }

    /// Actions per lifecycle state.
    pub fn action_counts(&self) -> BTreeMap<&'static str, i64> {
        self.0.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }

    pub(crate) fn count(&self, from: Option<ActionStatus>, to: ActionStatus) {
        if let Ok(mut c) = self.0.counts.lock() {
            if let Some(f) = from {
                *c.entry(f.as_str()).or_default() -= 1;
            }
            *c.entry(to.as_str()).or_default() += 1;
        }
    }

    /// Proposes an action for `agent` (the caller's credential's): runs the
    /// gates, commits the decision and the action, and in `enforce` mode
    /// executes an allowed action, waiting up to the configured time for
    /// its result.
    pub async fn submit(&self, agent: &str, p: Proposal) -> Result<Submitted, RuntimeError> {
        let engine = self.0.engine.current();
        let request_hash = warden_evidence::args_hash(&json!({
            "agent": agent,
            "tool": p.tool,
            "arguments": p.arguments,
            "run": p.run_id,
        }))?;
        // Concurrent proposals with one key queue here: the first commits,
        // the others find its action. (Identical requests without a key
        // queue later, and only when they need approval.)
        let guard = match &p.idempotency_key {
            Some(k) => Some(self.0.keys.lock(format!("key\u{0}{agent}\u{0}{k}")).await),
            None => None,
        };
        let result = self.submit_locked(agent, p, request_hash, &engine).await;
        drop(guard);
        let submitted = result?;
        if submitted.action.status == ActionStatus::Executing {
            let id = submitted.action.action_id.clone();
            if let Some(done) = self.wait(&id, self.0.config.sync_wait).await? {
                return Ok(Submitted {
                    action: done,
                    ..submitted
                });
            }
        }
        Ok(submitted)
    }

    async fn submit_locked(
        &self,
        agent: &str,
        p: Proposal,
        request_hash: String,
        engine: &warden_policy::Engine,
    ) -> Result<Submitted, RuntimeError> {
        if let Some(key) = &p.idempotency_key
            && let Some(row) = self.store().action_by_key(agent, key).await?
        {
            if row.request_hash != request_hash {
                return Err(RuntimeError::IdempotencyConflict {
                    key: key.clone(),
                    action: row.id,
                });
            }
            return Ok(Submitted {
                action: ActionView::from_row(&row),
                replayed: true,
                evidence_seq: None,
            });
        }
        let pack = engine.pack();
        // Neither a run nor a fact fetch for arguments the decision will
        // refuse (`invalid_arguments`): bad input leaves nothing behind.
        let usable = engine.arguments_valid(&p.tool, &p.arguments);
        // A call without a run id joins the agent's open run of a
        // correlating workflow (or starts one at a first step).
        let (run_id, orphan) = match &p.run_id {
            Some(id) => (Some(id.clone()), None),
            None if usable => self.correlate(pack, agent, &p.tool, &p.arguments).await?,
            None => (None, None),
        };
        // Facts are fetched before any lock is taken.
        let fetched = if usable {
            self.fetch_facts(pack, &p.tool, &p.arguments).await
        } else {
            crate::facts::Fetched::default()
        };
        // The run gate needs the run's lock from the check to the commit.
        let run = match &run_id {
            Some(id) => Some(self.run_state(id).await?),
            None => None,
        };
        let mut run_guard = match &run {
            Some(r) => Some(r.lock().await),
            None => None,
        };
        if let Some(r) = run_guard.as_deref() {
            if r.row.agent != agent {
                return Err(RuntimeError::RunNotYours {
                    run: r.row.id.clone(),
                });
            }
            if r.row.state != RunStatus::Running {
                return Err(RuntimeError::RunClosed {
                    run: r.row.id.clone(),
                    state: r.row.state,
                });
            }
            if crate::runs::timed_out(
                engine.pack().workflows.get(&r.row.workflow),
                &r.row,
                now_us(),
            ) {
                // The timer task ends it durably; refuse now, deterministically.
                self.0.timer_wake.notify_one();
                return Err(RuntimeError::RunClosed {
                    run: r.row.id.clone(),
                    state: RunStatus::TimedOut,
                });
            }
        }
        let mut context = RequestContext {
            workflow: run_guard.as_deref().map(|r| r.row.workflow.clone()),
            run: run_id.clone(),
            trigger: match &p.drill {
                Some(d) => Some(warden_model::Trigger::drill(&d.id)),
                None => run_guard.as_deref().and_then(|r| r.trigger.clone()),
            },
            usage: Default::default(),
            steps: run_guard
                .as_deref()
                .map(|r| r.data.clone())
                .unwrap_or_default(),
            facts: fetched.facts,
        };
        // The counters this tool counts, held from the decision until the
        // action's amount is reserved in them.
        let decided_us = now_us();
        let hold = self
            .hold_usage(pack, agent, &p.tool, &p.arguments, &context, decided_us)
            .await?;
        context.usage = hold.prior();
        let req = Request {
            agent,
            tool: &p.tool,
            args: &p.arguments,
            approvals: &[],
            context: &context,
        };
        let verdict = self.gates(
            engine,
            &GateInput {
                agent,
                tool: &p.tool,
                args: &p.arguments,
                context: &context,
                run: run_guard.as_deref(),
                approvals: &[],
                facts_unavailable: fetched.unavailable.as_deref(),
                orphan: orphan.as_deref(),
            },
        );
        let id = new_id("act")?;
        // An allowed action counts (drill traffic does not); others let
        // go of the counters at once.
        let (usage_writes, reservation) =
            if verdict.status == ActionStatus::Approved && p.drill.is_none() {
                let (w, r) = hold.reserve(&id, decided_us, false);
                (w, Some(r))
            } else {
                drop(hold);
                (Vec::new(), None)
            };
        let mut record = Record::decided(&req, &verdict.decision);
        record.action = Some(id.clone());
        match verdict.decision.code {
            Some(DenyCode::UnknownTool) | Some(DenyCode::InvalidArguments) => {
                // Unusable proposals are recorded, then refused.
                record.detail = Some(json!({
                    "mode": p.mode.as_str(),
                    "reason": p.reason,
                    "claimed_agent": p.claimed_agent,
                }));
                self.0
                    .redactor
                    .apply_for_pack(&mut record, pack, &p.arguments)?;
                self.0.log.append(record).await?;
                return Err(if verdict.decision.code == Some(DenyCode::UnknownTool) {
                    RuntimeError::UnknownTool(p.tool)
                } else {
                    RuntimeError::InvalidArguments(verdict.decision.errors.join("; "))
                });
            }
            _ => {}
        }
        // The identical request re-proposed while its approval is open (or
        // once after it ended) answers with the same action. Identical
        // requests that need approval queue here until this one commits, so
        // concurrent ones find its request instead of opening another;
        // requests that need none never wait for each other.
        let _request_guard =
            if verdict.status == ActionStatus::AwaitingApproval && p.idempotency_key.is_none() {
                let g = self
                    .0
                    .keys
                    .lock(format!("request\u{0}{request_hash}"))
                    .await;
                if let Some(found) = self
                    .reproposed(agent, &request_hash, &p.arguments, p.mode.as_str())
                    .await?
                {
                    return Ok(found);
                }
                Some(g)
            } else {
                None
            };
        if p.mode == Mode::Enforce && self.connectors().execution(&p.tool).is_none() {
            return Err(RuntimeError::NotExecutable(p.tool));
        }
        let status = verdict.status;
        let step = verdict.step.clone();
        let executing = status == ActionStatus::Approved && p.mode == Mode::Enforce;
        let t = now_us();
        record.status = Some(status);
        record.code = verdict.code.map(|c| c.as_str().to_owned());
        record.message = Some(verdict.message.clone());
        record.detail = Some(json!({
            "mode": p.mode.as_str(),
            "reason": p.reason,
            "claimed_agent": p.claimed_agent,
            "idempotency_key": p.idempotency_key,
            "step": step,
            "shadow": verdict.shadow,
            "would_be": verdict.would_be,
            "request_sha256": request_hash,
        }));
        self.0
            .redactor
            .apply_for_pack(&mut record, pack, &p.arguments)?;
        // A proposal that needs approval opens a request; it shows the
        // arguments as recorded (sensitive fields redacted).
        let approval: Option<(ApprovalRow, Record)> = if status == ActionStatus::AwaitingApproval {
            let opened = self.new_request(
                pack,
                NewRequest {
                    action_id: &id,
                    agent,
                    tool: &p.tool,
                    request_hash: &request_hash,
                    context: &context,
                    decision: &verdict.effective(),
                    recorded_args: record.args.clone(),
                    reason: p.reason.clone(),
                    now_us: t,
                },
            )?;
            if let Some(Value::Object(d)) = &mut record.detail {
                d.insert("approval_id".into(), json!(opened.0.id));
            }
            Some(opened)
        } else {
            None
        };
        let mut decision_json = verdict.decision_json();
        if let (Value::Object(m), Some(d)) = (&mut decision_json, &p.drill) {
            m.insert("drill".into(), json!(d.id));
        }
        if let (Value::Object(m), Some((a, _))) = (&mut decision_json, &approval) {
            m.insert("approval_id".into(), json!(a.id));
        }
        let state = if executing {
            ActionStatus::Executing
        } else {
            status
        };
        let row = ActionRow {
            id: id.clone(),
            agent: agent.to_owned(),
            tool: p.tool.clone(),
            run_id: run_id.clone(),
            step,
            mode: p.mode.as_str().to_owned(),
            shadow: verdict.shadow,
            state,
            code: verdict.code.map(|c| c.as_str().to_owned()),
            idempotency_key: p.idempotency_key.clone(),
            request_hash,
            // Kept while the action may still execute (to re-send after a
            // crash); dropped once it is final.
            arguments: (!state.is_final()).then(|| p.arguments.to_string()),
            decision: decision_json.to_string(),
            result: None,
            attempts: 0,
            created_us: t,
            updated_us: t,
        };
        // The proposal waits for an enforce execution: a watcher carries the
        // full result to it. Other waiters create theirs on demand.
        if executing {
            self.watch(&id);
        }
        // Durable before acknowledged, and before any side effect.
        let mut records = vec![record];
        let mut writes = vec![StateWrite::Action(row.clone())];
        writes.extend(usage_writes);
        if let Some((a, r)) = &approval {
            records.push(r.clone());
            writes.push(StateWrite::Approval(a.clone()));
            let groups = crate::approval::parse_slots(a);
            writes.extend(self.slack_opens(&a.id, groups.iter().map(|s| s.group.as_str()), t));
        }
        let receipts = match self.0.log.commit(records, writes).await {
            Ok(r) => r,
            Err(e) => {
                self.unwatch(&id);
                return Err(e.into());
            }
        };
        if let Some(r) = reservation {
            r.keep();
        }
        drop(run_guard.take());
        self.count(None, state);
        if executing {
            match p.drill.as_ref().and_then(crate::exec::injected) {
                Some(outcome) => self.spawn_injected(row.clone(), outcome),
                None => self.spawn_execution(row.clone(), p.arguments),
            }
        }
        if let Some((a, _)) = &approval {
            self.0.timer_wake.notify_one();
            self.notify_new(a);
        }
        Ok(Submitted {
            action: ActionView::with_decision(&row, decision_json),
            replayed: false,
            evidence_seq: receipts.first().map(|r| r.seq),
        })
    }

    /// Holds the counter windows `tool`'s actions count, for a decision
    /// at `now_us`.
    pub(crate) async fn hold_usage(
        &self,
        pack: &warden_model::Pack,
        agent: &str,
        tool: &str,
        args: &Value,
        context: &RequestContext,
        now_us: i64,
    ) -> Result<crate::usage::Hold, RuntimeError> {
        let counted = warden_model::CountedRequest {
            agent,
            tool,
            system: pack.tools.get(tool).map_or("", |t| t.system.as_str()),
            workflow: context.workflow.as_deref(),
            args,
        };
        self.0
            .usage
            .hold(self.store(), pack, &counted, now_us)
            .await
    }

    /// The effective outcome of a proposal: runtime gates and shadow mode
    /// included (the policy's own outcome is in `decision`).
    pub fn outcome_of(view: &ActionView) -> Outcome {
        match view.status {
            ActionStatus::Denied => Outcome::Deny,
            ActionStatus::AwaitingApproval => Outcome::ApprovalRequired,
            _ => Outcome::Allow,
        }
    }
}
