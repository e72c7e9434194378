//! Headless Chromium for the browser tests: a chromedriver (Debian `chromium`) of its own on a free
//! port, driven over WebDriver with fantoccini (plain HTTP to 127.0.0.1, no TLS). Shared by the
//! server's browser tests (board, console, public site) and the system tests that drive the
//! console against real agents (`nguon-tests`, e.g. the live broadcast from the browser's fake
//! microphone). Screenshots go to `target/test-artifacts/<name>/`.
#![deny(missing_docs)]

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

/// A chromedriver process in a process group of its own; on drop the whole group is killed: a
/// killed chromedriver alone leaves its Chromium running.
struct Chromedriver(Child);

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let group = self.0.id() as libc::pid_t;
        // SAFETY: killpg on the group made for chromedriver at spawn (pgid = its pid).
        unsafe {
            libc::killpg(group, libc::SIGKILL);
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
        // Chromium's helpers outlive their parent by a moment and are then reaped by init, not by
        // us: wait (bounded) until the group is empty, so none is still there when the test ends.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        // SAFETY: signal 0 only checks whether the group still has a process.
        while unsafe { libc::killpg(group, 0) } == 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// chromedriver + headless Chromium over WebDriver; both end on drop (the session is deleted, which
/// quits Chromium, then chromedriver's process group is killed), also when a test panics.
pub struct Driver {
    client: Client,
    webdriver: String,
    session: String,
    artifacts: PathBuf,
    // Dropped in this order after `Driver::drop`: chromedriver's group, then the profile.
    _chromedriver: Chromedriver,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Drop may run on the test's runtime thread (a current-thread runtime that is not polled
        // while we block here): delete the session from a thread with a runtime of its own, through
        // a second handle on the same session.
        let (webdriver, session) = (self.webdriver.clone(), self.session.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok(c) = Client::with_existing_session(&webdriver, &session, HttpConnector::new()).await
                {
                    let _ = tokio::time::timeout(Duration::from_secs(10), c.close()).await;
                }
            });
        })
        .join();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A WebDriver command's result, or a panic naming the command.
#[track_caller]
fn ok<T>(what: &str, r: Result<T, fantoccini::error::CmdError>) -> T {
    r.unwrap_or_else(|e| panic!("webdriver {what}: {e}"))
}

impl Driver {
    /// Start chromedriver on a free port and open a session with a `width`×`height` window;
    /// screenshots go to `target/test-artifacts/<artifacts>/`.
    pub async fn start(width: u32, height: u32, artifacts: &str) -> Driver {
        Self::start_with(width, height, artifacts, &[]).await
    }

    /// [`Driver::start`] with more Chromium arguments (e.g. a fake microphone).
    pub async fn start_with(width: u32, height: u32, artifacts: &str, extra: &[String]) -> Driver {
        // Made before chromedriver so that, should the start panic, chromedriver goes first.
        let profile = tempfile::tempdir().expect("profile dir");
        let port = free_port();
        let mut chromedriver = Chromedriver(
            Command::new("/usr/bin/chromedriver")
                .arg(format!("--port={port}"))
                .process_group(0)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start chromedriver"),
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            if let Ok(Some(status)) = chromedriver.0.try_wait() {
                panic!("chromedriver exited: {status}");
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ]
        .map(String::from)
        .to_vec();
        args.push(format!("--window-size={width},{height}"));
        args.push(format!("--user-data-dir={}", profile.path().display()));
        args.extend(extra.iter().cloned());
        let caps = json!({"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": args},
            // The browser's console, read by `browser_errors`.
            "goog:loggingPrefs": {"browser": "ALL"}});
        let Value::Object(caps) = caps else { unreachable!() };
        let webdriver = format!("http://127.0.0.1:{port}");
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&webdriver)
            .await
            .unwrap_or_else(|e| panic!("new session: {e}"));
        let session = ok("session id", client.session_id().await).expect("a session id");
        let artifacts = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../target/test-artifacts")
            .join(artifacts);
        std::fs::create_dir_all(&artifacts).unwrap();
        Driver {
            client,
            webdriver,
            session,
            artifacts,
            _chromedriver: chromedriver,
            _profile: profile,
        }
    }

    /// Navigate.
    pub async fn goto(&self, url: &str) {
        ok(&format!("goto {url}"), self.client.goto(url).await);
    }

    /// Run a script (no arguments).
    pub async fn eval(&self, script: &str) -> Value {
        ok(
            &format!("execute {script}"),
            self.client.execute(script, vec![]).await,
        )
    }

    /// The page's visible text.
    pub async fn text(&self) -> String {
        self.eval("return document.body.innerText")
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The current path and query.
    pub async fn path(&self) -> String {
        self.eval("return location.pathname + location.search")
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Find an element by CSS selector.
    pub async fn find(&self, css: &str) -> Element {
        ok(&format!("find {css}"), self.client.find(Locator::Css(css)).await)
    }

    /// Type into an element (for a file input: the file path).
    pub async fn type_into(&self, css: &str, text: &str) {
        ok(
            &format!("send keys to {css}"),
            self.find(css).await.send_keys(text).await,
        );
    }

    /// Click an element.
    pub async fn click(&self, css: &str) {
        ok(&format!("click {css}"), self.find(css).await.click().await);
    }

    /// Save a screenshot as `<artifacts>/<name>.png`.
    pub async fn screenshot(&self, name: &str) {
        let png = ok("screenshot", self.client.screenshot().await);
        std::fs::write(self.artifacts.join(format!("{name}.png")), png).unwrap();
    }

    /// Resize the window (the viewport follows).
    pub async fn resize(&self, width: u32, height: u32) {
        ok("resize", self.client.set_window_size(width, height).await);
    }

    /// Reload the current page.
    pub async fn reload(&self) {
        ok("refresh", self.client.refresh().await);
    }

    /// The browser console's messages of level SEVERE since the last call (JavaScript errors,
    /// failed loads), read through chromedriver's log endpoint; `ignore` drops messages that
    /// contain any of its strings (e.g. the failed requests a test provokes on purpose).
    pub async fn browser_errors(&self, ignore: &[&str]) -> Vec<String> {
        let url = format!("{}/session/{}/se/log", self.webdriver, self.session);
        let r = reqwest::Client::new()
            .post(url)
            .json(&json!({"type": "browser"}))
            .send()
            .await
            .expect("browser log");
        let v: Value = r.json().await.expect("browser log JSON");
        v["value"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m["level"] == "SEVERE")
            .filter_map(|m| m["message"].as_str().map(str::to_string))
            .filter(|m| !ignore.iter().any(|i| m.contains(i)))
            .collect()
    }

    /// Log in to the console at `base` through the login form and wait for the dashboard.
    pub async fn login(&self, base: &str, username: &str, password: &str) {
        self.goto(&format!("{base}/console/login")).await;
        self.type_into("#username", username).await;
        self.type_into("#password", password).await;
        self.click("#login").await;
        self.wait_for(
            "the dashboard",
            "return location.pathname === '/console' && !!document.getElementById('whoami')",
            Duration::from_secs(20),
        )
        .await;
    }

    /// Log out of the console with the header button and wait for the login page.
    pub async fn logout(&self) {
        self.click("#logout").await;
        self.wait_for(
            "the login page",
            "return location.pathname === '/console/login'",
            Duration::from_secs(20),
        )
        .await;
    }

    /// Wait until `script` returns true; panic with `what`, the path and the page text after `limit`.
    pub async fn wait_for(&self, what: &str, script: &str, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if self.eval(script).await == Value::Bool(true) {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "{what} not seen within {limit:?}; at {}; page text: {}",
                    self.path().await,
                    self.text().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
