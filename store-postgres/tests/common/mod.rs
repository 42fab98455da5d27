//! Test databases: each test gets its own freshly created database, dropped afterwards, so
//! the tests run in parallel.
//!
//! `DATABASE_URL` names the server (its database is only used to create and drop the test
//! databases). When no database answers: with `CI` set a test fails with a clear message;
//! without it the test prints one line saying it was skipped and why, and passes.

#![allow(dead_code, unreachable_pub)]

use recount::testing::Fixture;
use recount_postgres::{PgEventStore, PgOptions};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection};
use std::str::FromStr;
use std::sync::OnceLock;

/// The server's connect options, or why there is none. Checked once per test binary.
fn server() -> Result<PgConnectOptions, String> {
    static SERVER: OnceLock<Result<PgConnectOptions, String>> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            let url =
                std::env::var("DATABASE_URL").map_err(|_| "DATABASE_URL is not set".to_owned())?;
            let options = PgConnectOptions::from_str(&url)
                .map_err(|e| format!("DATABASE_URL is not a PostgreSQL URL: {e}"))?
                .disable_statement_logging();
            // Probe on a throwaway runtime on a thread of its own: callers may already be
            // inside a runtime (a conformance factory), where blocking on another would panic.
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
                    Ok(options)
                })
            })
            .join()
            .map_err(|_| "the database probe panicked".to_owned())?
        })
        .clone()
}

/// The server, or `None` after printing why the calling test is skipped. Panics instead
/// when `CI` is set: there, a missing database is a broken setup, not a reason to skip.
pub fn server_or_skip(test: &str) -> Option<PgConnectOptions> {
    match server() {
        Ok(options) => Some(options),
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

/// A fresh database on `server`, migrated, with a store on it.
#[derive(Debug)]
pub struct TestDb {
    pub server: PgConnectOptions,
    pub name: String,
    pub options: PgConnectOptions,
    pub store: PgEventStore,
}

impl TestDb {
    /// Creates the database and migrates the default schema.
    pub async fn create(server: &PgConnectOptions) -> TestDb {
        Self::create_with(server, PgOptions::default()).await
    }

    /// Creates the database and migrates a store with `store_options`.
    pub async fn create_with(server: &PgConnectOptions, store_options: PgOptions) -> TestDb {
        let name = format!("recount_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect_with(server)
            .await
            .expect("connect to the server");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create a test database");
        let _ = admin.close().await;
        let options = server.clone().database(&name);
        let store = TestDb::store_on(&options, store_options).await;
        if let Err(e) = store.migrate().await {
            store.pool().close().await;
            drop_database(server, &name).await;
            panic!("migrate the test database: {e}");
        }
        TestDb {
            server: server.clone(),
            name,
            options,
            store,
        }
    }

    /// Another store (own pool) on a database.
    pub async fn store_on(options: &PgConnectOptions, store_options: PgOptions) -> PgEventStore {
        let pool = PgPoolOptions::new()
            .max_connections(12)
            .test_before_acquire(false)
            .connect_with(PgEventStore::session_options(options.clone()))
            .await
            .expect("connect to the test database");
        PgEventStore::from_pool(pool, store_options).expect("valid options")
    }

    /// A plain connection to this test's database.
    pub async fn connection(&self) -> PgConnection {
        PgConnection::connect_with(&self.options)
            .await
            .expect("connect to the test database")
    }

    /// Closes the store's pool and drops the database (terminating anything still connected).
    pub fn teardown(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let (server, name, pool) = (
            self.server.clone(),
            self.name.clone(),
            self.store.pool().clone(),
        );
        async move {
            pool.close().await;
            drop_database(&server, &name).await;
        }
    }
}

async fn drop_database(server: &PgConnectOptions, name: &str) {
    match PgConnection::connect_with(server).await {
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

/// A conformance fixture: a fresh database, dropped after the test.
pub async fn fixture(server: PgConnectOptions) -> Fixture<PgEventStore> {
    let db = TestDb::create(&server).await;
    let teardown = db.teardown();
    Fixture::new(db.store.clone()).with_teardown(teardown)
}

/// Runs an async test body on a multi-thread runtime with a fresh database, dropping the
/// database afterwards whether the body passed or not.
pub fn run<F, Fut>(test: &str, body: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let Some(server) = server_or_skip(test) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async move {
        let db = TestDb::create(&server).await;
        let teardown = db.teardown();
        let outcome = tokio::spawn(body(db)).await;
        teardown.await;
        if let Err(e) = outcome {
            if e.is_panic() {
                std::panic::resume_unwind(e.into_panic());
            }
            panic!("{test} was cancelled: {e}");
        }
    });
}
