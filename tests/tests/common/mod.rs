//! PostgreSQL for cross-store tests: one fresh database per test, dropped afterwards.
//!
//! The same rule as `recount-postgres`'s own tests: `DATABASE_URL` names the server. When no
//! database answers, with `CI` set a test fails with a clear message; without it the test
//! prints one line saying what it skipped and why, and runs on the other stores only.

#![allow(dead_code, unreachable_pub)]

use recount_postgres::{PgEventStore, PgOptions};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use std::str::FromStr;

/// A database created for one test, dropped when this is dropped (even after a failure).
#[derive(Debug)]
pub struct PgDb {
    server: PgConnectOptions,
    name: String,
    /// Connect options of the test's database.
    pub options: PgConnectOptions,
}

impl PgDb {
    /// The test's database, migrated; `None` (after printing one line) when there is no
    /// server and `CI` is not set. Call it outside any tokio runtime.
    pub fn create_or_skip(what: &str) -> Option<PgDb> {
        let server = match probe() {
            Ok(server) => server,
            Err(why) if std::env::var_os("CI").is_some() => {
                panic!("{what}: PostgreSQL is required when CI is set: {why}")
            }
            Err(why) => {
                use std::io::Write;
                let _ = writeln!(std::io::stderr(), "skipped: {what}: {why}");
                return None;
            }
        };
        let name = format!("recount_test_{}", uuid::Uuid::new_v4().simple());
        let options = server.clone().database(&name);
        block_on(async {
            let mut admin = PgConnection::connect_with(&server).await.expect("connect");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut admin)
                .await
                .expect("create a test database");
            let _ = admin.close().await;
        });
        let db = PgDb {
            server,
            name,
            options,
        };
        block_on(async {
            let store = db.store().await;
            store.migrate().await.expect("migrate the test database");
            store.pool().close().await;
        });
        Some(db)
    }

    /// A store (its own pool) on the test's database, for the calling runtime.
    pub async fn store(&self) -> PgEventStore {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(8)
            .connect_with(self.options.clone())
            .await
            .expect("connect to the test database");
        PgEventStore::from_pool(pool, PgOptions::default()).expect("valid options")
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let (server, name) = (&self.server, &self.name);
        block_on(async move {
            if let Ok(mut admin) = PgConnection::connect_with(server).await {
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                if let Err(e) = sqlx::query(&sql).execute(&mut admin).await {
                    eprintln!("could not drop test database {name}: {e}");
                }
                let _ = admin.close().await;
            }
        });
    }
}

fn probe() -> Result<PgConnectOptions, String> {
    let url = std::env::var("DATABASE_URL").map_err(|_| "DATABASE_URL is not set".to_owned())?;
    let options = PgConnectOptions::from_str(&url)
        .map_err(|e| format!("DATABASE_URL is not a PostgreSQL URL: {e}"))?
        .disable_statement_logging();
    let probe = options.clone();
    block_on(async move {
        let conn = PgConnection::connect_with(&probe).await;
        let conn = conn.map_err(|e| format!("no database answers at DATABASE_URL: {e}"))?;
        let _ = conn.close().await;
        Ok(options)
    })
}

/// Runs `f` to completion on a runtime of its own, on a thread of its own (callers may be
/// inside a runtime, where blocking on another would panic).
fn block_on<T: Send>(f: impl std::future::Future<Output = T> + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime")
                    .block_on(f)
            })
            .join()
            .expect("the database helper panicked")
    })
}
