//! The test server shared by the HTTP tests: a real server on a loopback port (with its
//! background consumers), a real HTTP client.
#![allow(dead_code, unreachable_pub)]

use recount::{Cursor, EventStore, LogFilter, RecordedEvent};
use recount_postgres::testing::TestDatabase;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use storychain::http::ServeOptions;
use storychain::StoryChain;

/// The engine a test server runs on: SQLite (a temporary file) unless the test runs inside
/// [`Engine::run`] with [`Engine::Postgres`] (a fresh database on `DATABASE_URL`'s server,
/// dropped when the server stops).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

tokio::task_local! {
    static ENGINE: Engine;
}

impl Engine {
    /// Runs `test` with its servers on this engine.
    pub async fn run(self, test: impl std::future::Future<Output = ()>) {
        ENGINE.scope(self, test).await
    }

    /// The engine of the running test.
    pub fn current() -> Engine {
        ENGINE.try_with(|e| *e).unwrap_or(Engine::Sqlite)
    }
}

/// Stamps out each named test (an `async fn()` of the file) twice, as `sqlite::<name>` and
/// `postgres::<name>`, each on a multi-thread runtime. Without a PostgreSQL server the
/// PostgreSQL ones print one line and pass, unless `CI` is set (then they fail).
#[allow(unused_macros)]
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    crate::common::Engine::Sqlite.run(super::$name()).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    if recount_postgres::testing::server_or_skip(stringify!($name)).is_none() {
                        return;
                    }
                    crate::common::Engine::Postgres.run(super::$name()).await
                }
            )*
        }
    };
}
#[allow(unused_imports)]
pub(crate) use on_both_engines;

/// The admin token the test servers take.
pub const ADMIN: &str = "the-admin-token-for-tests";

/// A real server on a loopback port, its consumers running, and a real HTTP client.
pub struct Server {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The client.
    pub client: Client,
    /// The app behind it.
    pub app: StoryChain,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
    database: Option<TestDatabase>,
}

impl Drop for Server {
    /// Drops a PostgreSQL test database left behind by a test that failed before `stop`.
    fn drop(&mut self) {
        if let Some(db) = self.database.take() {
            let _ = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    rt.block_on(db.drop());
                }
            })
            .join();
        }
    }
}

impl Server {
    /// A server with default options (admin token [`ADMIN`]).
    pub async fn start() -> Server {
        Self::start_with(ServeOptions::default()).await
    }

    /// A server with `options` (on a free loopback port, admin token [`ADMIN`]).
    pub async fn start_with(options: ServeOptions) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let (app, database) = match Engine::current() {
            Engine::Sqlite => (
                StoryChain::open(dir.path().join("storychain.db"))
                    .await
                    .unwrap(),
                None,
            ),
            Engine::Postgres => {
                let server = recount_postgres::testing::server_or_skip("a PostgreSQL test server")
                    .expect("the test checked for a server");
                let db = TestDatabase::create(&server).await;
                let app = StoryChain::open_database(&storychain::Database::Postgres(db.url()))
                    .await
                    .unwrap();
                (app, Some(db))
            }
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (bound_tx, bound_rx) = tokio::sync::oneshot::channel::<SocketAddr>();
        let options = ServeOptions {
            addr: "127.0.0.1:0".parse().unwrap(),
            workers: true,
            admin_token: Some(ADMIN.into()),
            ..options
        };
        let served = app.clone();
        let task = tokio::spawn(async move {
            storychain::http::serve(
                served,
                options,
                async move {
                    let _ = stopped.await;
                },
                move |addr| {
                    let _ = bound_tx.send(addr);
                },
            )
            .await
            .expect("serve");
        });
        let addr = bound_rx.await.expect("the server bound a port");
        Server {
            base: format!("http://{addr}"),
            client: Client::new(),
            app,
            stop: Some(stop),
            task: Some(task),
            _dir: dir,
            database,
        }
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(20), task)
                .await
                .expect("the server stops, even with streams open")
                .unwrap();
        }
        if let Some(db) = self.database.take() {
            db.drop().await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request; returns status and JSON body (`Null` when empty).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("a response");
        let status = response.status();
        let text = response.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON body: {text}"))
        };
        (status, value)
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, Some(token), Some(body))
            .await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, token, None).await
    }

    pub async fn register(&self, username: &str) -> (String, String) {
        let body = json!({ "username": username, "display_name": username.to_uppercase() });
        let (status, v) = self
            .call(reqwest::Method::POST, "/users", None, Some(body))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        (
            v["user_id"].as_str().unwrap().to_owned(),
            v["token"].as_str().unwrap().to_owned(),
        )
    }

    /// A public story by `token`'s user with its first chapter: (story id, chapter id).
    pub async fn story_with_root(&self, token: &str, title: &str, genre: &str) -> (String, String) {
        let body = json!({ "title": title, "genre": genre, "visibility": "public" });
        let (status, v) = self.post("/stories", token, body).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        let story = v["id"].as_str().unwrap().to_owned();
        let root = json!({ "title": "Root", "content": "the start" });
        let (status, v) = self
            .post(&format!("/stories/{story}/chapters"), token, root)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        (story, v["id"].as_str().unwrap().to_owned())
    }

    /// Stops a server shared by tasks that have all ended.
    pub async fn stop_shared(shared: std::sync::Arc<Server>) {
        match std::sync::Arc::try_unwrap(shared) {
            Ok(s) => s.stop().await,
            Err(_) => panic!("the server is still shared"),
        }
    }

    pub async fn log(&self) -> Vec<RecordedEvent> {
        let mut out = Vec::new();
        let mut after = Cursor::START;
        loop {
            let batch = self
                .app
                .store()
                .read_all(after, &LogFilter::all(), 1000)
                .await
                .unwrap();
            if batch.events.is_empty() && batch.last_seen == after {
                return out;
            }
            after = batch.last_seen;
            out.extend(batch.events);
        }
    }

    /// Waits until the background consumers have handled the whole log and the log stops
    /// growing (process managers write events of their own), so a test can compare the log
    /// before and after something; fails after 20 s (120 s on PostgreSQL, where the awards
    /// manager's reads are round trips: in a debug build on two cores it follows a burst of
    /// 20,000 events at about 150 events/s).
    pub async fn settled(&self) {
        let limit = if self.database.is_some() { 120 } else { 20 };
        let deadline = Instant::now() + Duration::from_secs(limit);
        let mut last = usize::MAX;
        loop {
            let (status, v) = self.get("/admin/consumers", Some(ADMIN)).await;
            assert_eq!(status, StatusCode::OK, "{v}");
            let idle = v["consumers"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["lag"] == 0);
            let len = self.log().await.len();
            if idle && len == last {
                return;
            }
            last = len;
            assert!(
                Instant::now() < deadline,
                "the consumers never settled: {v}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls `path` until `done` holds for its body; fails after 20 s.
    pub async fn eventually(
        &self,
        path: &str,
        token: Option<&str>,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, v) = self.get(path, token).await;
            if status == StatusCode::OK && done(&v) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{path} never got there: {status} {v}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The error code of an error body.
pub fn error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<no error code>")
}
