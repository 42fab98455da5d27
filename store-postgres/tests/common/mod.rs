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
use sqlx::{Connection, PgConnection};

pub use recount_postgres::testing::server_or_skip;
use recount_postgres::testing::TestDatabase;

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
        let db = TestDatabase::create(server).await;
        let (name, options) = (db.name().to_owned(), db.options());
        let store = TestDb::store_on(&options, store_options).await;
        if let Err(e) = store.migrate().await {
            store.pool().close().await;
            db.drop().await;
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
    TestDatabase::named(server, name).drop().await;
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
