//! A runtime over a temporary SQLite store and an example pack.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};
use warden_model::ActionStatus;
use warden_policy::{Engine, EngineHandle};
use warden_runtime::{
    ActionView, DecisionBody, Mode, Proposal, Runtime, RuntimeConfig, RuntimeError, Verdict,
};
use warden_store::{AuditLog, DataDir, Durability, LogOptions, Store};

/// What a proposal should come to.
#[derive(Debug, Clone, Copy)]
pub enum Expect {
    /// An action in this status, with this code (`None`: no code).
    Action(ActionStatus, Option<&'static str>),
    /// Refused before it became an action, with this error code.
    Refused(&'static str),
}

/// The runtime and what it runs on; the directory goes with it.
pub struct Harness {
    pub rt: Runtime,
    _dir: tempfile::TempDir,
}

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

impl Harness {
    /// A runtime with the support-refunds example pack.
    pub async fn support() -> Self {
        Self::with_pack(&root().join("examples/support-refunds")).await
    }

    pub async fn with_pack(pack: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::load(pack).unwrap().engine;
        let data = DataDir::open(dir.path()).unwrap();
        let store = Store::open(&data, None, Durability::default())
            .await
            .unwrap();
        let log = AuditLog::open(store, data.signer().clone(), LogOptions::default())
            .await
            .unwrap();
        let engine = Arc::new(EngineHandle::new(engine));
        let controls = warden_control::Controls::load(Arc::clone(&engine), log.clone())
            .await
            .unwrap();
        let rt = Runtime::new(
            engine,
            log,
            controls,
            data.redactor().clone(),
            RuntimeConfig::default(),
        )
        .await
        .unwrap();
        Self { rt, _dir: dir }
    }

    /// Proposes `tool(args)` in enforce mode as `agent` (in `run`, if any)
    /// and checks it comes to `expect`; returns the action when there is one.
    pub async fn check(
        &self,
        agent: &str,
        tool: &str,
        args: Value,
        run: Option<&str>,
        expect: Expect,
    ) -> Option<ActionView> {
        let p = Proposal {
            tool: tool.to_owned(),
            arguments: args,
            run_id: run.map(str::to_owned),
            mode: Mode::Enforce,
            idempotency_key: None,
            reason: None,
            claimed_agent: None,
            drill: None,
        };
        let got = self.rt.submit(agent, p).await;
        match (got, expect) {
            (Ok(sub), Expect::Action(status, code)) => {
                let a = self.settled(sub.action).await;
                assert_eq!(
                    (a.status, a.code.as_deref()),
                    (status, code),
                    "{tool} by {agent}: {a:?}"
                );
                Some(a)
            }
            (Err(e), Expect::Refused(code)) => {
                assert_eq!(e.code(), code, "{tool} by {agent}: {e}");
                None
            }
            (got, want) => panic!("{tool} by {agent}: want {want:?}, got {got:?}"),
        }
    }

    /// The action once it is no longer executing.
    pub async fn settled(&self, a: ActionView) -> ActionView {
        if a.status != ActionStatus::Executing {
            return a;
        }
        self.rt
            .wait(&a.action_id, std::time::Duration::from_secs(10))
            .await
            .unwrap()
            .unwrap_or(a)
    }

    /// `person` answers request `id`.
    pub async fn answer(
        &self,
        person: &str,
        id: &str,
        decision: Verdict,
    ) -> Result<warden_runtime::ApprovalView, RuntimeError> {
        self.rt
            .answer(
                person,
                id,
                DecisionBody {
                    decision,
                    comment: None,
                },
            )
            .await
    }

    /// A run of `refund-request` by `agent`: the customer looked up, then
    /// a $500 refund of `order` waiting for finance. The run and the refund.
    pub async fn refund_waiting_in_run(&self, agent: &str, order: &str) -> (String, ActionView) {
        let run = self
            .rt
            .start_run(agent, "refund-request", None)
            .await
            .unwrap()
            .run_id;
        let look = Expect::Action(ActionStatus::Succeeded, None);
        self.check(agent, "crm.lookup_customer", lookup(), Some(&run), look)
            .await;
        let wait = Expect::Action(ActionStatus::AwaitingApproval, None);
        let waiting = self
            .check(
                agent,
                "stripe.refund",
                refund(50_000, order),
                Some(&run),
                wait,
            )
            .await
            .unwrap();
        (run, waiting)
    }

    /// The action `id` now.
    pub async fn action(&self, id: &str) -> ActionView {
        self.rt.action(id, None).await.unwrap()
    }
}

/// A refund of `cents` for order `order`.
pub fn refund(cents: u64, order: &str) -> Value {
    json!({"order_id": order, "customer_id": "cus_1", "amount_cents": cents, "reason": "damaged"})
}

/// A customer lookup.
pub fn lookup() -> Value {
    json!({"customer_id": "cus_1"})
}

/// Copies a pack directory.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}
