//! A small pack written to a temp dir, with the policies a test gives.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tempfile::TempDir;
use warden_model::RequestContext;
use warden_policy::{Decision, Engine, Request};

pub const MANIFEST: &str = r#"
[pack]
name = "semantics"

[[teams]]
id = "ops"

[[people]]
id = "ann"
team = "ops"

[[people]]
id = "bob"
team = "ops"

[[people]]
id = "cy"
team = "ops"

[[agents]]
id = "bot"
team = "ops"
owner = "ann"

[[agents]]
id = "other-bot"
team = "ops"
owner = "bob"

[[systems]]
id = "ledger"
owner = "ann"

[[tools]]
id = "pay"
system = "ledger"
access = "write"
risk = "high"
[tools.args]
type = "object"
required = ["amount"]
additionalProperties = false
[tools.args.properties]
amount = { type = "integer", minimum = 0 }
note = { type = "string" }

[[tools]]
id = "read"
system = "ledger"
access = "read"
risk = "low"

[[approver_groups]]
id = "fin"
members = ["ann", "bob", "cy"]
quorum = 1

[[approver_groups]]
id = "sec"
members = ["bob", "cy"]
quorum = 2
"#;

pub struct TestPack {
    /// Kept so the pack's files live as long as the engine.
    pub _dir: TempDir,
    pub engine: Engine,
}

/// Writes the standard manifest and `policies/p.cedar`, and compiles it.
pub fn pack(policies: &str) -> TestPack {
    pack_with(MANIFEST, policies)
}

/// Like [`pack`], with another manifest.
pub fn pack_with(manifest: &str, policies: &str) -> TestPack {
    let dir = write(manifest, policies);
    let engine = match Engine::load(dir.path()) {
        Ok(c) => c.engine,
        Err(e) => match e {
            warden_policy::EngineError::Invalid(d) => {
                let msgs: Vec<String> = d
                    .all()
                    .iter()
                    .map(|d| format!("{}: {}", d.code(), d.message()))
                    .collect();
                panic!("test pack is invalid: {msgs:#?}")
            }
            other => panic!("test pack did not load: {other}"),
        },
    };
    TestPack { _dir: dir, engine }
}

pub fn write(manifest: &str, policies: &str) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("policies")).unwrap();
    std::fs::write(dir.path().join("warden.toml"), manifest).unwrap();
    std::fs::write(dir.path().join("policies/p.cedar"), policies).unwrap();
    dir
}

/// The pack at `dir` loaded, or its errors as `"<code> <message> @<file:line:col>"`.
pub fn load_or_errors(dir: &Path) -> Result<Engine, Vec<String>> {
    match Engine::load(dir) {
        Ok(c) => Ok(c.engine),
        Err(warden_policy::EngineError::Invalid(d)) => Err(d
            .all()
            .iter()
            .filter(|d| d.is_error())
            .map(|d| {
                format!(
                    "{} {} @{}",
                    d.code(),
                    d.message(),
                    d.location().map(|l| l.to_string()).unwrap_or_default()
                )
            })
            .collect()),
        Err(e) => panic!("{e}"),
    }
}

pub fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

impl TestPack {
    pub fn decide(&self, agent: &str, tool: &str, args: Value, approvals: &[&str]) -> Decision {
        decide(&self.engine, agent, tool, args, approvals)
    }
}

pub fn decide(
    engine: &Engine,
    agent: &str,
    tool: &str,
    args: Value,
    approvals: &[&str],
) -> Decision {
    let approvals: Vec<String> = approvals.iter().map(|s| (*s).to_owned()).collect();
    let ctx = RequestContext::default();
    let req = Request {
        agent,
        tool,
        args: &args,
        approvals: &approvals,
        context: &ctx,
    };
    let fast = engine.decide(&req);
    // Every decision in these tests is also checked against the always
    // two-pass path: the single-pass shortcut must never change an answer.
    let slow = engine.decide_two_pass(&req);
    assert_eq!(
        summary(&fast),
        summary(&slow),
        "shortcut changed the decision"
    );
    fast
}

/// What must agree between two decisions.
pub fn summary(d: &Decision) -> String {
    let ids: Vec<&str> = d.policies.iter().map(|p| p.id.as_str()).collect();
    format!("{} {:?} {:?} {:?}", d.outcome, d.code, ids, d.approval)
}

pub fn ids(d: &Decision) -> Vec<&str> {
    d.policies.iter().map(|p| p.id.as_str()).collect()
}
