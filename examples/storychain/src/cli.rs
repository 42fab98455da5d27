//! The command line, parsed with clap.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// StoryChain: collaborative fiction on Recount, SQLite by default.
#[derive(Debug, Parser)]
#[command(name = "storychain", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The database every command works on: PostgreSQL when `DATABASE_URL` is set
/// (`postgres://user@host:port/database`, migrated at start), else a SQLite file.
#[derive(Debug, Clone, clap::Args)]
pub struct Db {
    /// The SQLite database file (created when missing), used when `DATABASE_URL` is not set.
    #[arg(long, default_value = "storychain.db")]
    pub db: PathBuf,
}

/// `i/N` with `i < N` and `N` from 1 to 1,024.
pub fn parse_partition(text: &str) -> Result<(u32, u32), String> {
    let bad =
        || format!("`{text}`: a partition is `i/N`, e.g. `0/2`, with i < N and N from 1 to 1024");
    let (i, n) = text.split_once('/').ok_or_else(bad)?;
    let (i, n): (u32, u32) = (
        i.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if n == 0 || n > 1024 || i >= n {
        return Err(bad());
    }
    Ok((i, n))
}

/// StoryChain's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs a scripted scenario and prints commands, events and the resulting read models.
    Demo {
        /// The database.
        #[command(flatten)]
        db: Db,
        /// Delete the database first.
        #[arg(long)]
        fresh: bool,
    },
    /// Writes a realistic synthetic log through the repositories.
    Generate {
        /// About how many events to write.
        #[arg(long)]
        events: u64,
        /// The database.
        #[command(flatten)]
        db: Db,
        /// The random seed.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Concurrent writers.
        #[arg(long, default_value_t = 4)]
        writers: usize,
    },
    /// Rebuilds a projection beside the live one, then switches readers to it.
    Rebuild {
        /// catalogue, chapters, profiles, stats or inbox.
        projection: String,
        /// The database.
        #[command(flatten)]
        db: Db,
        /// Events per batch.
        #[arg(long, default_value_t = 1000)]
        batch: usize,
        /// Before dropping the old version, check that the new one holds exactly the same
        /// rows (the old one was built live); a difference is reported and fails the command,
        /// and both versions are kept to look at.
        #[arg(long)]
        verify: bool,
    },
    /// Serves the HTTP API, with the background consumers unless `--no-workers`.
    Serve {
        /// Where to listen.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: std::net::SocketAddr,
        /// The database.
        #[command(flatten)]
        db: Db,
        /// Run no consumers here (another process runs them).
        #[arg(long)]
        no_workers: bool,
    },
    /// Runs the background consumers (projections, process managers, webhook delivery) in
    /// a process of its own until SIGINT or SIGTERM, beside any number of `serve
    /// --no-workers` and other `worker` processes on one PostgreSQL database. Each consumer
    /// is active in one process at a time (a lease); when that process dies another takes
    /// it over within two lease TTLs (10 s).
    Worker {
        /// The database.
        #[command(flatten)]
        db: Db,
        /// This worker's share `i/N` of the process managers and webhook delivery: it handles
        /// the streams whose hash falls in partition `i` of `N` (give every worker the same
        /// `N`). Projections need the whole log in order: they are never partitioned.
        #[arg(long, value_parser = parse_partition)]
        partition: Option<(u32, u32)>,
    },
    /// Publishes integration events (story.published, chapter.published, pr.merged,
    /// user.registered) to a broker until stopped.
    Relay {
        /// The broker: nats, redis or rabbitmq.
        #[arg(long, value_enum)]
        to: crate::relay::Broker,
        /// The broker's URL (default: its standard port on 127.0.0.1).
        #[arg(long)]
        url: Option<String>,
        /// The NATS stream and subject prefix, Redis key prefix or RabbitMQ exchange.
        #[arg(long, default_value = "storychain")]
        name: String,
        /// Only these integration events, comma-separated (default: all four).
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// Publish what the log holds now, then exit.
        #[arg(long)]
        once: bool,
        /// The database.
        #[command(flatten)]
        db: Db,
    },
    /// Lists projections with version, checkpoint and lag.
    Projections {
        /// The database.
        #[command(flatten)]
        db: Db,
        /// Bring them up to date first.
        #[arg(long)]
        catch_up: bool,
    },
    /// Lists the event log.
    Events {
        /// The database.
        #[command(flatten)]
        db: Db,
        /// Only this stream, e.g. `story-0193…`.
        #[arg(long)]
        stream: Option<String>,
        /// Only this event type, e.g. `chapter.branched`.
        #[arg(long = "type")]
        event_type: Option<String>,
        /// Only this category, e.g. `story`.
        #[arg(long)]
        category: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Lists the story catalogue.
    Catalogue {
        /// The database.
        #[command(flatten)]
        db: Db,
        /// Only this genre (fantasy, sci_fi, mystery, romance, horror).
        #[arg(long)]
        genre: Option<String>,
        /// Only stories by this username.
        #[arg(long)]
        author: Option<String>,
        /// Only this status (draft, published, archived).
        #[arg(long)]
        status: Option<String>,
        /// Order: votes or recent.
        #[arg(long, default_value = "votes")]
        sort: String,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
}
