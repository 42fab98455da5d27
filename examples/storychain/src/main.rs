//! StoryChain command line: parses the arguments and dispatches.

use clap::Parser;
use storychain::cli::{Cli, Command};
use storychain::commands;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // The long-running commands log; their span exporter (feature `otlp`) is set up before
    // the runtime and dropped after it, so its last flush runs outside async code.
    let logs = match cli.command {
        Command::Serve { .. } | Command::Relay { .. } | Command::Worker { .. } => {
            match commands::init_logs() {
                Ok(logs) => Some(logs),
                Err(e) => {
                    eprintln!("storychain: {e}");
                    return std::process::ExitCode::FAILURE;
                }
            }
        }
        _ => None,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("storychain: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Demo { db, fresh } => commands::demo(&db.db, fresh).await,
            Command::Generate {
                events,
                db,
                seed,
                writers,
            } => commands::generate(&db.db, events, seed, writers).await,
            Command::Rebuild {
                projection,
                db,
                batch,
                verify,
            } => commands::rebuild(&db.db, &projection, batch, verify).await,
            Command::Serve {
                addr,
                db,
                no_workers,
            } => commands::serve(&db.db, addr, !no_workers).await,
            Command::Worker { db, partition } => commands::worker(&db.db, partition).await,
            Command::Relay {
                to,
                url,
                name,
                only,
                once,
                db,
            } => {
                let options = storychain::relay::RelayOptions {
                    url,
                    name,
                    only,
                    ..storychain::relay::RelayOptions::new(to)
                };
                commands::relay(&db.db, options, once).await
            }
            Command::Projections { db, catch_up } => commands::projections(&db.db, catch_up).await,
            Command::Events {
                db,
                stream,
                event_type,
                category,
                limit,
            } => commands::events(&db.db, stream, event_type, category, limit).await,
            Command::Catalogue {
                db,
                genre,
                author,
                status,
                sort,
                limit,
            } => commands::catalogue(&db.db, genre, author, status, &sort, limit).await,
        }
    });
    drop(runtime);
    drop(logs);
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("storychain: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
