//! Running the built binary and normalizing its output for snapshots.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Exit code, stdout and stderr in one text, with pack versions redacted.
    pub fn snapshot(&self) -> String {
        let redact = |s: &str| {
            s.split('\n')
                .map(
                    |line| match (line.find("sha256:"), line.rfind("; version ")) {
                        (Some(i), _) => format!("{}sha256:[VERSION]", &line[..i]),
                        (None, Some(i)) => format!("{}; version [VERSION]", &line[..i]),
                        _ => line.to_owned(),
                    },
                )
                .collect::<Vec<_>>()
                .join("\n")
        };
        format!(
            "exit: {}\n--- stdout\n{}--- stderr\n{}",
            self.code,
            redact(&self.stdout),
            redact(&self.stderr)
        )
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

/// Runs `warden ARGS` from the repository root, without colors.
pub fn warden(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .env_remove("WARDEN_DATA")
        .env_remove("WARDEN_DATABASE_URL")
        .output()
        .expect("run warden");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The repository root (commands run there, so paths print relative).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The broken-pack cases, relative to the root.
pub fn cases() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/packs");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| format!("crates/cli/tests/packs/{n}"))
        .collect()
}
