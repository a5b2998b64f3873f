//! Headless Chromium driven over WebDriver (chromedriver), for the
//! console's tests. Debian's `chromium` and `chromium-driver` packages
//! (`.ci/run` installs them); without them the tests skip with a reason.
//! The calls are blocking so tests can mix them with the blocking HTTP
//! helpers.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// How long a page may take to show what a test waits for.
const WAIT: Duration = Duration::from_secs(20);

pub struct Browser {
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
    driver_url: String,
    session: String,
    pub base: String,
    shots: PathBuf,
}

fn find(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|n| {
        std::env::split_paths(&path)
            .map(|d| d.join(n))
            .find(|p| p.is_file())
    })
}

/// The element matching `css`, once there is one.
async fn found(
    c: &Client,
    css: &str,
) -> Result<fantoccini::elements::Element, fantoccini::error::CmdError> {
    c.wait().at_most(WAIT).for_element(Locator::Css(css)).await
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    /// A browser at `width`×`height` for the server at `base`, or `None`
    /// (with the reason printed) when Chromium or chromedriver is missing.
    pub fn start(base: &str, width: u32, height: u32) -> Option<Self> {
        let (Some(chromium), Some(driver)) = (
            find(&["chromium", "chromium-browser", "google-chrome"]),
            find(&["chromedriver"]),
        ) else {
            eprintln!(
                "SKIPPED: the console's browser tests need chromium and chromedriver \
                 (apt-get install chromium chromium-driver; .ci/run does this)"
            );
            return None;
        };
        let port = free_port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let driver_url = format!("http://127.0.0.1:{port}");
        let http = crate::common::client();
        let started = Instant::now();
        while http
            .get(format!("{driver_url}/status"))
            .send()
            .map(|r| !r.status().is_success())
            .unwrap_or(true)
        {
            assert!(started.elapsed() < WAIT, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let caps = json!({
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--disable-extensions", format!("--window-size={width},{height}"),
                ],
            },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        // Desktop windows have a minimum width; narrower screens are
        // emulated as phones.
        let mut caps = caps;
        if width < 500 {
            caps["goog:chromeOptions"]["mobileEmulation"] = json!({
                "deviceMetrics": { "width": width, "height": height, "pixelRatio": 2, "touch": true },
            });
        }
        let caps = match caps {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        let client = rt
            .block_on(async {
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(caps)
                    .connect(&driver_url)
                    .await
            })
            .unwrap();
        let session = rt
            .block_on(client.session_id())
            .unwrap()
            .expect("a WebDriver session id");
        let shots = crate::common::root().join("target/console-screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        Some(Self {
            rt,
            client: Some(client),
            driver: child,
            driver_url,
            session,
            base: base.trim_end_matches('/').to_owned(),
            shots,
        })
    }

    fn c(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    /// Opens `path` on the server.
    pub fn goto(&self, path: &str) {
        let url = format!("{}{path}", self.base);
        self.rt.block_on(self.c().goto(&url)).unwrap();
    }

    /// The current path and query.
    pub fn path(&self) -> String {
        let url = self.rt.block_on(self.c().current_url()).unwrap();
        url.as_str().trim_start_matches(&self.base).to_owned()
    }

    /// Waits for an element matching `css`, then clicks it.
    pub fn click(&self, css: &str) {
        self.rt
            .block_on(async {
                let e = found(self.c(), css).await?;
                e.click().await
            })
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Types `text` into the element matching `css`.
    pub fn fill(&self, css: &str, text: &str) {
        self.rt
            .block_on(async {
                let e = found(self.c(), css).await?;
                e.clear().await?;
                e.send_keys(text).await
            })
            .unwrap_or_else(|e| panic!("fill {css}: {e}"));
    }

    /// Sends keys (WebDriver key codes allowed, e.g. Tab `\u{E004}`,
    /// Enter `\u{E007}`) to the element matching `css`.
    pub fn keys(&self, css: &str, keys: &str) {
        self.rt
            .block_on(async {
                let e = found(self.c(), css).await?;
                e.send_keys(keys).await
            })
            .unwrap_or_else(|e| panic!("keys to {css}: {e}"));
    }

    /// The text of the first element matching `css`, once there is one.
    pub fn text(&self, css: &str) -> String {
        self.rt
            .block_on(async {
                let e = found(self.c(), css).await?;
                e.text().await
            })
            .unwrap_or_else(|e| panic!("text of {css}: {e}"))
    }

    /// How many elements match `css` now.
    pub fn count(&self, css: &str) -> usize {
        self.rt
            .block_on(self.c().find_all(Locator::Css(css)))
            .map(|v| v.len())
            .unwrap_or(0)
    }

    /// Waits until the text of `css` contains `needle` (the page may update
    /// itself meanwhile); returns that text.
    pub fn wait_text(&self, css: &str, needle: &str) -> String {
        let started = Instant::now();
        loop {
            let got = self.rt.block_on(async {
                match self.c().find(Locator::Css(css)).await {
                    Ok(e) => e.text().await.ok(),
                    Err(_) => None,
                }
            });
            if let Some(t) = &got
                && t.contains(needle)
            {
                return t.clone();
            }
            assert!(
                started.elapsed() < WAIT,
                "{css} never contained {needle:?}; last: {got:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs `script` in the page and returns its value.
    pub fn exec(&self, script: &str) -> Value {
        self.rt
            .block_on(self.c().execute(script, vec![]))
            .unwrap_or_else(|e| panic!("script {script}: {e}"))
    }

    /// The value of cookie `name`.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.rt
            .block_on(self.c().get_named_cookie(name))
            .ok()
            .map(|c| c.value().to_owned())
    }

    /// The browser's console messages since the last call.
    pub fn console_log(&self) -> Vec<Value> {
        let resp: Value = crate::common::client()
            .post(format!(
                "{}/session/{}/se/log",
                self.driver_url, self.session
            ))
            .json(&json!({ "type": "browser" }))
            .send()
            .unwrap()
            .json()
            .unwrap();
        resp["value"].as_array().cloned().unwrap_or_default()
    }

    /// Saves a screenshot as `target/console-screenshots/<name>.png`.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.rt.block_on(self.c().screenshot()).unwrap();
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Signs in as `person` with `token` through the sign-in form, and
    /// waits for the page that follows.
    pub fn sign_in(&self, person: &str, token: &str) {
        self.submit_token(token);
        self.wait_text("#who", person);
    }

    /// Submits `token` on the sign-in form, expecting a refusal; returns
    /// the error shown.
    pub fn sign_in_refused(&self, token: &str) -> String {
        self.submit_token(token);
        self.text("#sign-in-error")
    }

    fn submit_token(&self, token: &str) {
        self.goto("/console/sign-in");
        self.fill("#token", token);
        self.click("section.sign-in button[type=submit]");
    }

    /// Signs out through the header's form.
    pub fn sign_out(&self) {
        self.click("form.sign-out button");
        self.wait_text("h1", "Sign in");
    }

    /// Where screenshots go.
    #[allow(dead_code)]
    pub fn shots(&self) -> &Path {
        &self.shots
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            let _ = self.rt.block_on(c.close());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
