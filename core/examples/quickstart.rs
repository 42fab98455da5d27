//! Quick start: an aggregate, a repository, commands with optimistic concurrency, and a
//! follower of the global log.
//!
//! `cargo run -p recount --example quickstart`

use recount::aggregate::DecodeError;
use recount::{
    Aggregate, CommandContext, Cursor, Event, EventStore, InMemoryStore, LogFilter, Repository,
};
use serde_json::value::RawValue;

/// A bank account.
#[derive(Debug, Default)]
struct Account {
    balance: i64,
    open: bool,
}

/// What can happen to an account.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: i64 },
    Withdrawn { amount: i64 },
}

impl Event for AccountEvent {
    const EVENT_TYPES: &'static [&'static str] =
        &["account.opened", "account.deposited", "account.withdrawn"];

    fn event_type(&self) -> &'static str {
        match self {
            AccountEvent::Opened { .. } => "account.opened",
            AccountEvent::Deposited { .. } => "account.deposited",
            AccountEvent::Withdrawn { .. } => "account.withdrawn",
        }
    }

    fn schema_version(&self) -> u32 {
        1
    }

    fn encode(&self) -> Result<Box<RawValue>, serde_json::Error> {
        serde_json::value::to_raw_value(self)
    }

    fn decode(event_type: &str, _version: u32, payload: &str) -> Result<Self, DecodeError> {
        #[derive(serde::Deserialize)]
        struct Owner {
            owner: String,
        }
        #[derive(serde::Deserialize)]
        struct Amount {
            amount: i64,
        }
        Ok(match event_type {
            "account.opened" => AccountEvent::Opened {
                owner: serde_json::from_str::<Owner>(payload)?.owner,
            },
            "account.deposited" => AccountEvent::Deposited {
                amount: serde_json::from_str::<Amount>(payload)?.amount,
            },
            "account.withdrawn" => AccountEvent::Withdrawn {
                amount: serde_json::from_str::<Amount>(payload)?.amount,
            },
            other => return Err(DecodeError::UnknownType(other.to_owned())),
        })
    }
}

/// Why an account command is refused.
#[derive(Debug, thiserror::Error)]
enum AccountError {
    #[error("the account is not open")]
    NotOpen,
    #[error("insufficient funds: balance {balance}, asked {asked}")]
    Insufficient { balance: i64, asked: i64 },
}

impl Aggregate for Account {
    const CATEGORY: &'static str = "account";
    type Event = AccountEvent;
    type Error = AccountError;

    fn apply(&mut self, event: AccountEvent) {
        match event {
            AccountEvent::Opened { .. } => self.open = true,
            AccountEvent::Deposited { amount } => self.balance += amount,
            AccountEvent::Withdrawn { amount } => self.balance -= amount,
        }
    }
}

impl Account {
    fn open(&self, owner: &str) -> Result<Vec<AccountEvent>, AccountError> {
        Ok(if self.open {
            vec![]
        } else {
            vec![AccountEvent::Opened {
                owner: owner.to_owned(),
            }]
        })
    }

    fn deposit(&self, amount: i64) -> Result<Vec<AccountEvent>, AccountError> {
        if !self.open {
            return Err(AccountError::NotOpen);
        }
        Ok(vec![AccountEvent::Deposited { amount }])
    }

    fn withdraw(&self, amount: i64) -> Result<Vec<AccountEvent>, AccountError> {
        if self.balance < amount {
            return Err(AccountError::Insufficient {
                balance: self.balance,
                asked: amount,
            });
        }
        Ok(vec![AccountEvent::Withdrawn { amount }])
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = InMemoryStore::new();
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
        Err(e) => println!("refused as expected: {e}"),
        Ok(_) => return Err("an overdraft was accepted".into()),
    }

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
