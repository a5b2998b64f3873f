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
    warden_env(args, &[])
}

/// `warden` with extra environment variables.
pub fn warden_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .envs(env.iter().copied())
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

/// A real HTTP receiver on loopback standing in for a tool's API: it counts
/// each request's `Idempotency-Key`, keeps the headers it saw, and answers
/// 200 with a JSON body (503 for the first `fail_first` requests to a path
/// ending in `/flaky`), after `delay`.
pub struct Receiver {
    pub url: String,
    pub seen: std::sync::Arc<std::sync::Mutex<Vec<Seen>>>,
}

/// Reads one HTTP/1.1 request (request line, headers, a body of
/// `content-length` bytes) from `reader`: its path, headers (names in lower
/// case) and body; `None` when the connection ends first.
pub fn read_request(
    reader: &mut impl std::io::BufRead,
) -> Option<(String, std::collections::HashMap<String, String>, Vec<u8>)> {
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return None;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
    let mut headers = std::collections::HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).ok()?;
    Some((path, headers, body))
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub idempotency_key: Option<String>,
    pub authorization: Option<String>,
    pub headers: std::collections::HashMap<String, String>,
    pub body: String,
}

impl Receiver {
    pub fn start(delay: std::time::Duration, fail_first: usize) -> Self {
        Self::listen(
            std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
            delay,
            fail_first,
        )
    }

    /// A receiver on `addr` (a port a test reserved earlier).
    pub fn start_at(addr: &str) -> Self {
        Self::listen(
            std::net::TcpListener::bind(addr).unwrap(),
            std::time::Duration::ZERO,
            0,
        )
    }

    fn listen(
        listener: std::net::TcpListener,
        delay: std::time::Duration,
        fail_first: usize,
    ) -> Self {
        use std::io::{BufReader, Write};
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen: std::sync::Arc<std::sync::Mutex<Vec<Seen>>> = Default::default();
        let log = std::sync::Arc::clone(&seen);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let log = std::sync::Arc::clone(&log);
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(conn.try_clone().unwrap());
                    let mut conn = conn;
                    loop {
                        let Some((path, headers, body)) = read_request(&mut reader) else {
                            return;
                        };
                        let n = {
                            let mut l = log.lock().unwrap();
                            l.push(Seen {
                                path: path.clone(),
                                idempotency_key: headers.get("idempotency-key").cloned(),
                                authorization: headers.get("authorization").cloned(),
                                headers: headers.clone(),
                                body: String::from_utf8_lossy(&body).into_owned(),
                            });
                            l.iter().filter(|s| s.path == path).count()
                        };
                        std::thread::sleep(delay);
                        let (status, text) = if path.ends_with("/flaky") && n <= fail_first {
                            (
                                "503 Service Unavailable",
                                r#"{"error":"try again"}"#.to_owned(),
                            )
                        } else {
                            ("200 OK", format!(r#"{{"received":true,"n":{n}}}"#))
                        };
                        let resp = format!(
                            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{text}",
                            text.len()
                        );
                        if conn.write_all(resp.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self { url, seen }
    }

    /// Requests per idempotency key (requests without one are not counted).
    pub fn key_counts(&self) -> std::collections::BTreeMap<String, usize> {
        let mut m = std::collections::BTreeMap::new();
        for s in self.seen.lock().unwrap().iter() {
            if let Some(k) = &s.idempotency_key {
                *m.entry(k.clone()).or_insert(0) += 1;
            }
        }
        m
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Copies a directory tree (a pack to modify in a test).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// An HTTP client for tests. Warden's TLS runs on rustls with the ring
/// provider, installed per process (the binary does it in `main`).
pub fn client() -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::new()
}

/// Runs `sql` on its own connection to the database at `url` (SQLite file or
/// PostgreSQL server), behind Warden's back; returns the rows it changed.
pub fn exec_sql(url: &str, sql: &str) -> u64 {
    use sqlx::Connection;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        sqlx::any::install_default_drivers();
        let mut c = sqlx::AnyConnection::connect(url).await.unwrap();
        let done = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut c)
            .await
            .unwrap();
        c.close().await.unwrap();
        done.rows_affected()
    })
}

/// Checks a signed webhook delivery's HMAC-SHA256 (`X-Warden-Signature:
/// sha256=<hex of HMAC("<timestamp>.<body>")>`) the way a receiver would.
pub fn signed_with(seen: &Seen, secret: &str) -> bool {
    use hmac::{KeyInit, Mac};
    let (Some(sig), Some(ts)) = (
        seen.headers.get("x-warden-signature"),
        seen.headers.get("x-warden-timestamp"),
    ) else {
        return false;
    };
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{ts}.{}", seen.body).as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    sig == &format!("sha256={hex}")
}

/// The cells of column `col` in the table of `stdout` whose header names
/// it: each row's text at the header's offset, up to the next two spaces.
/// A row out of line with its header gives a cell that is not a value.
pub fn column(stdout: &str, col: &str) -> Vec<String> {
    let lines: Vec<&str> = stdout.lines().collect();
    let Some((h, at)) = lines
        .iter()
        .enumerate()
        .find_map(|(i, l)| l.find(&format!("  {col}")).map(|p| (i, p + 2)))
    else {
        panic!("no column `{col}` in:\n{stdout}");
    };
    let indent = lines[h].len() - lines[h].trim_start().len();
    lines[h + 1..]
        .iter()
        .take_while(|l| {
            l.len() > indent && l.len() - l.trim_start().len() == indent && l.is_char_boundary(at)
        })
        .map(|l| {
            let cell = l.get(at..).unwrap_or("");
            cell.split("  ").next().unwrap_or("").to_owned()
        })
        .collect()
}
