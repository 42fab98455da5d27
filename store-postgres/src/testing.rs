//! Test databases (feature `testing`): each test gets a freshly created database on the
//! server `DATABASE_URL` names, dropped afterwards, so tests run in parallel without sharing
//! state.
//!
//! When no server answers: with `CI` set, [`server_or_skip`] panics with the reason (there, a
//! missing database is a broken setup); without it, it prints one line saying the test was
//! skipped and why, and returns `None`.
//!
//! ```no_run
//! # async fn t() {
//! use recount_postgres::testing::{server_or_skip, TestDatabase};
//! let Some(server) = server_or_skip("my test") else { return };
//! let db = TestDatabase::create(&server).await;
//! let store = recount_postgres::PgEventStore::connect(&db.url()).await.unwrap();
//! store.migrate().await.unwrap();
//! // …
//! store.pool().close().await;
//! db.drop().await;
//! # }
//! ```

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use std::str::FromStr;
use std::sync::OnceLock;

/// The server's URL and connect options, or why there is none. Checked once per process.
fn server() -> Result<(String, PgConnectOptions), String> {
    static SERVER: OnceLock<Result<(String, PgConnectOptions), String>> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            let url =
                std::env::var("DATABASE_URL").map_err(|_| "DATABASE_URL is not set".to_owned())?;
            let options = PgConnectOptions::from_str(&url)
                .map_err(|e| format!("DATABASE_URL is not a PostgreSQL URL: {e}"))?
                .disable_statement_logging();
            // Probe on a throwaway runtime on a thread of its own: callers may already be
            // inside a runtime, where blocking on another would panic.
            std::thread::spawn(move || {
                let probe = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                let probe = probe.map_err(|e| format!("no runtime to probe the database: {e}"))?;
                probe.block_on(async {
                    let conn = PgConnection::connect_with(&options).await;
                    let conn =
                        conn.map_err(|e| format!("no database answers at DATABASE_URL: {e}"))?;
                    let _ = conn.close().await;
                    Ok((url, options))
                })
            })
            .join()
            .map_err(|_| "the database probe panicked".to_owned())?
        })
        .clone()
}

/// `DATABASE_URL`, once it answered.
fn server_url() -> Option<String> {
    server().ok().map(|(url, _)| url)
}

/// The server, or `None` after printing why the calling test is skipped. Panics instead
/// when `CI` is set.
pub fn server_or_skip(test: &str) -> Option<PgConnectOptions> {
    match server() {
        Ok((_, options)) => Some(options),
        Err(why) if std::env::var_os("CI").is_some() => {
            panic!("{test}: PostgreSQL is required when CI is set: {why}")
        }
        Err(why) => {
            // Straight to the process's stderr: libtest captures `println!` of passing tests,
            // and this line should be seen.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "skipped: {test}: {why}");
            None
        }
    }
}

/// A database created for one test.
#[derive(Debug, Clone)]
pub struct TestDatabase {
    server: PgConnectOptions,
    /// The server's URL, for [`url`](Self::url).
    server_url: String,
    name: String,
}

impl TestDatabase {
    /// Creates a database with a fresh name (`recount_test_<uuid>`) on `server` (the one
    /// `DATABASE_URL` names, as [`server_or_skip`] returns it); panics when it cannot.
    pub async fn create(server: &PgConnectOptions) -> TestDatabase {
        let url = server_url().unwrap_or_default();
        Self::create_with(server.clone(), url).await
    }

    /// Like [`create`](Self::create), on the server of `url` (`postgres://…/any-database`).
    pub async fn create_at(url: &str) -> TestDatabase {
        let server = PgConnectOptions::from_str(url)
            .expect("a PostgreSQL URL")
            .disable_statement_logging();
        Self::create_with(server, url.to_owned()).await
    }

    async fn create_with(server: PgConnectOptions, server_url: String) -> TestDatabase {
        let name = format!("recount_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect_with(&server)
            .await
            .expect("connect to the server");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create a test database");
        let _ = admin.close().await;
        TestDatabase {
            server,
            server_url,
            name,
        }
    }

    /// The database `name` on `server`, created earlier (to drop it).
    pub fn named(server: &PgConnectOptions, name: &str) -> TestDatabase {
        TestDatabase {
            server: server.clone(),
            server_url: server_url().unwrap_or_default(),
            name: name.to_owned(),
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Connect options for it.
    pub fn options(&self) -> PgConnectOptions {
        self.server.clone().database(&self.name)
    }

    /// A URL for it: the server's URL with this database in place of the server's (for
    /// programs that take a URL).
    pub fn url(&self) -> String {
        let (base, query) = match self.server_url.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (self.server_url.as_str(), None),
        };
        let scheme_end = base.find("://").map_or(0, |i| i + 3);
        let root = match base[scheme_end..].find('/') {
            Some(i) => &base[..scheme_end + i],
            None => base,
        };
        match query {
            Some(q) => format!("{root}/{}?{q}", self.name),
            None => format!("{root}/{}", self.name),
        }
    }

    /// Drops the database, terminating anything still connected; reports (on stderr) but
    /// does not panic when it cannot.
    pub async fn drop(self) {
        let name = &self.name;
        match PgConnection::connect_with(&self.server).await {
            Ok(mut admin) => {
                let dropped = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await;
                if let Err(e) = dropped {
                    eprintln!("could not drop test database {name}: {e}");
                }
                let _ = admin.close().await;
            }
            Err(e) => eprintln!("could not drop test database {name}: {e}"),
        }
    }
}
