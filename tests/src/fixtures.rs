//! A small aggregate used by benchmarks and cross-store tests, written without the macro so
//! the benchmark measures the store, not generated code.

use recount::aggregate::DecodeError;
use recount::{Aggregate, Event};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The event type of [`BenchEvent`].
pub const BENCH_EVENT_TYPE: &str = "account.deposited";

/// A deposit: about 170 bytes of JSON, like the payloads the store issues were measured with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchEvent {
    /// The amount.
    pub amount: u64,
    /// A reference.
    pub reference: String,
    /// A note.
    pub note: String,
}

impl BenchEvent {
    /// The `n`th deposit.
    pub fn nth(n: u64) -> Self {
        BenchEvent {
            amount: n % 1000 + 1,
            reference: format!("ref-{n:012}"),
            note: "monthly deposit from the savings plan, booked by the nightly batch job"
                .to_owned(),
        }
    }

    /// As a [`recount::NewEvent`] with a fresh id.
    pub fn new_event(n: u64) -> recount::NewEvent {
        recount::NewEvent::new(BENCH_EVENT_TYPE, &Self::nth(n)).expect("object payload")
    }
}

impl Event for BenchEvent {
    const EVENT_TYPES: &'static [&'static str] = &[BENCH_EVENT_TYPE];

    fn event_type(&self) -> &'static str {
        BENCH_EVENT_TYPE
    }

    fn schema_version(&self) -> u32 {
        1
    }

    fn encode(&self) -> Result<Box<RawValue>, serde_json::Error> {
        serde_json::value::to_raw_value(self)
    }

    fn decode(event_type: &str, _version: u32, payload: &str) -> Result<Self, DecodeError> {
        if event_type != BENCH_EVENT_TYPE {
            return Err(DecodeError::UnknownType(event_type.to_owned()));
        }
        Ok(serde_json::from_str(payload)?)
    }
}

/// An account: the sum and count of its deposits.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    /// Sum of deposits.
    pub balance: u64,
    /// Number of deposits.
    pub deposits: u64,
}

/// The account never rejects a deposit.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("never")]
pub struct Never;

impl Account {
    /// Folds one deposit, as `apply` does; the raw baselines call this too.
    pub fn fold(&mut self, e: &BenchEvent) {
        self.balance += e.amount;
        self.deposits += 1;
    }
}

impl Aggregate for Account {
    const CATEGORY: &'static str = "account";
    type Event = BenchEvent;
    type Error = Never;

    fn apply(&mut self, event: BenchEvent) {
        self.fold(&event);
    }

    fn snapshot_every() -> Option<u64> {
        Some(1000)
    }

    fn snapshot_tag() -> &'static str {
        "account-v1"
    }

    fn encode_snapshot(&self) -> Option<Result<String, serde_json::Error>> {
        Some(serde_json::to_string(self))
    }

    fn decode_snapshot(state: &str) -> Option<Result<Self, serde_json::Error>> {
        Some(serde_json::from_str(state))
    }
}

/// `DATABASE_URL`, or `None` after printing one line saying why `test` is skipped. With `CI`
/// set, a missing or unreachable server fails the test instead.
pub fn postgres_url_or_skip(test: &str) -> Option<String> {
    let why = match std::env::var("DATABASE_URL") {
        Ok(url) => match std::net::TcpStream::connect_timeout(
            &postgres_addr(&url).unwrap_or_else(|| ([127, 0, 0, 1], 5432).into()),
            std::time::Duration::from_secs(2),
        ) {
            Ok(_) => return Some(url),
            Err(e) => format!("no PostgreSQL answers at DATABASE_URL: {e}"),
        },
        Err(_) => "DATABASE_URL is not set".to_owned(),
    };
    if std::env::var_os("CI").is_some() {
        panic!("{test}: PostgreSQL is required when CI is set: {why}");
    }
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "skipped: {test}: {why}");
    None
}

/// The host and port of a `postgres://` URL, when it names an address.
fn postgres_addr(url: &str) -> Option<std::net::SocketAddr> {
    use std::net::ToSocketAddrs;
    let rest = url.split_once("://")?.1;
    let host_port = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let host_port = host_port.split(['/', '?']).next()?;
    let with_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    };
    with_port.to_socket_addrs().ok()?.next()
}

/// A database of its own on the server of `DATABASE_URL`, created and migrated, dropped by
/// [`TempDatabase::drop_database`] (a [`recount_postgres::testing::TestDatabase`], migrated).
#[derive(Debug)]
pub struct TempDatabase {
    db: recount_postgres::testing::TestDatabase,
}

impl TempDatabase {
    /// Creates a fresh database and migrates Recount's schema into it.
    pub async fn create(server: &str) -> TempDatabase {
        let db = TempDatabase {
            db: recount_postgres::testing::TestDatabase::create_at(server).await,
        };
        db.store().await.migrate().await.expect("migrate");
        db
    }

    /// The database's URL.
    pub fn url(&self) -> String {
        self.db.url()
    }

    /// A store on the database.
    pub async fn store(&self) -> recount_postgres::PgEventStore {
        recount_postgres::PgEventStore::connect(&self.url())
            .await
            .expect("connect to the test database")
    }

    /// Drops the database, disconnecting whoever is still on it.
    pub async fn drop_database(self) {
        self.db.drop().await;
    }
}
