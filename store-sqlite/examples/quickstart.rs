//! Quick start: an aggregate with `#[aggregate]`, commands with optimistic concurrency on the
//! embedded SQLite store, a projection, and the global log.
//!
//! `cargo run -p recount-sqlite --example quickstart`

use recount::projection::{InMemoryProjection, ReadModel, Runner};
use recount::{
    aggregate, CommandContext, Cursor, EventStore, LogFilter, RecordedEvent, Repository,
};
use recount_sqlite::SqliteEventStore;

/// A bank account.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Account {
    owner: String,
    balance: i64,
}

/// Why an account command is refused.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Opening twice.
    #[error("the account is already open")]
    AlreadyOpen,
    /// Using an account never opened.
    #[error("the account is not open")]
    NotOpen,
    /// Taking more than there is.
    #[error("insufficient funds: balance {balance}, asked {asked}")]
    Insufficient {
        /// The balance.
        balance: i64,
        /// The amount asked.
        asked: i64,
    },
}

#[aggregate(category = "account", error = AccountError, snapshot_every = 50)]
impl Account {
    /// The account was opened.
    #[event(name = "account.opened")]
    fn opened(&mut self, owner: String) {
        self.owner = owner;
    }

    /// Money came in.
    #[event(name = "account.deposited")]
    fn deposited(&mut self, amount: i64) {
        self.balance += amount;
    }

    /// Money went out.
    #[event(name = "account.withdrawn")]
    fn withdrawn(&mut self, amount: i64) {
        self.balance -= amount;
    }

    /// Opens the account.
    pub fn open(&self, owner: &str) -> Result<Vec<AccountEvent>, AccountError> {
        if !self.owner.is_empty() {
            return Err(AccountError::AlreadyOpen);
        }
        Ok(vec![AccountEvent::Opened {
            owner: owner.to_owned(),
        }])
    }

    /// Deposits money.
    pub fn deposit(&self, amount: i64) -> Result<Vec<AccountEvent>, AccountError> {
        if self.owner.is_empty() {
            return Err(AccountError::NotOpen);
        }
        Ok(vec![AccountEvent::Deposited { amount }])
    }

    /// Withdraws money, never below zero.
    pub fn withdraw(&self, amount: i64) -> Result<Vec<AccountEvent>, AccountError> {
        if self.balance < amount {
            return Err(AccountError::Insufficient {
                balance: self.balance,
                asked: amount,
            });
        }
        Ok(vec![AccountEvent::Withdrawn { amount }])
    }
}

/// A read model: the number of events of each type.
#[derive(Debug, Clone, Default)]
struct EventCounts(std::collections::BTreeMap<String, u64>);

impl ReadModel for EventCounts {
    fn apply(&mut self, event: &RecordedEvent) -> recount::Result<()> {
        *self.0.entry(event.event_type.clone()).or_default() += 1;
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = SqliteEventStore::open(dir.path().join("quickstart.db")).await?;
    let accounts = Repository::<Account, _>::new(store.clone());
    let ctx = CommandContext::new().with_user("ada");

    accounts.execute("42", &ctx, |a| a.open("Ada")).await?;
    accounts.execute("42", &ctx, |a| a.deposit(100)).await?;
    let done = accounts.execute("42", &ctx, |a| a.withdraw(30)).await?;
    println!(
        "account-42 is at version {} with balance {}",
        done.version, done.state.balance
    );

    match accounts.execute("42", &ctx, |a| a.withdraw(500)).await {
        Err(e) => println!("refused, as it should be: {e}"),
        Ok(_) => return Err("an overdraft was accepted".into()),
    }

    let counts = InMemoryProjection::<EventCounts>::new("event-counts");
    Runner::new(store.clone(), counts.clone())
        .catch_up()
        .await?;
    println!(
        "projection `event-counts`: {:?}",
        counts.read(|c| c.0.clone())
    );

    println!("the global log:");
    let batch = store
        .read_all(Cursor::START, &LogFilter::all(), 100)
        .await?;
    for e in &batch.events {
        println!(
            "  {:>3}  {:<12} v{}  {:<18} {}",
            e.cursor, e.stream, e.version, e.event_type, e.payload
        );
    }
    Ok(())
}
