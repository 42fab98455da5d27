//! `whats-new`: follow StoryChain through a broker, or show what is new.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;
use whats_new::{Follow, Source};

/// What's new on StoryChain, kept from its integration events.
#[derive(Debug, Parser)]
#[command(name = "whats-new", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Receives events until SIGINT or SIGTERM.
    Follow {
        /// The broker: nats, redis or rabbitmq.
        #[arg(long, value_enum)]
        from: Source,
        /// Its URL (default: its standard port on 127.0.0.1).
        #[arg(long)]
        url: Option<String>,
        /// The publisher's name (`storychain relay --name`).
        #[arg(long, default_value = "storychain")]
        publisher: String,
        /// This service's name on the broker; processes with one group share the work.
        #[arg(long, default_value = "whats-new")]
        group: String,
        /// The model's SQLite file.
        #[arg(long, default_value = "whats-new.db")]
        db: PathBuf,
    },
    /// Prints the newest stories (per genre with `--genre`) and members.
    Show {
        /// Only this genre (fantasy, sci_fi, mystery, romance, horror).
        #[arg(long)]
        genre: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 10)]
        limit: usize,
        /// The model's SQLite file.
        #[arg(long, default_value = "whats-new.db")]
        db: PathBuf,
    },
}

type CliResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

async fn follow(follow: Follow) -> CliResult {
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        signal().await;
        stop.cancel();
    });
    tracing::info!(from = %follow.source, group = %follow.group, "following");
    follow.run(shutdown).await?;
    tracing::info!("stopped");
    Ok(())
}

fn show(db: &std::path::Path, genre: Option<&str>, limit: usize) -> CliResult {
    let conn = rusqlite::Connection::open(db)?;
    whats_new::WhatsNew::create_tables(&conn)?;
    let stories = whats_new::latest(&conn, genre, limit)?;
    println!(
        "What's new{}:",
        genre.map(|g| format!(" in {g}")).unwrap_or_default()
    );
    if stories.is_empty() {
        println!("  (nothing yet)");
    }
    for s in stories {
        println!(
            "  {:<40} {:<8} {} chapter(s), {} merge(s), last {}",
            s.title, s.genre, s.chapters, s.merged, s.last_activity
        );
    }
    let members = whats_new::members(&conn, limit)?;
    println!(
        "Newest members: {}",
        members
            .iter()
            .map(|(u, _)| u.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let result = match cli.command {
        Command::Show { genre, limit, db } => show(&db, genre.as_deref(), limit),
        Command::Follow {
            from,
            url,
            publisher,
            group,
            db,
        } => match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(follow(Follow {
                url,
                publisher,
                group,
                ..Follow::new(from, db)
            })),
            Err(e) => Err(e.into()),
        },
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("whats-new: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
