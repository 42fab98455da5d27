//! `storychain relay`.

use super::{shutdown_signal, CliResult};
use crate::relay::{self, RelayOptions};
use std::path::Path;
use std::time::Duration;

/// Relays integration events to a broker until SIGINT or SIGTERM (or, with `once`, until it
/// has published everything in the log so far), logging progress to stderr every 5 s.
pub async fn relay(db: &Path, options: RelayOptions, once: bool) -> CliResult {
    let app = super::open_app(db).await?;
    let runner = relay::runner(app.store(), &options).await?;
    let name = options.relay_name();
    tracing::info!(relay = %name, broker = %options.broker, "relay started");
    if once {
        let n = runner.catch_up().await?;
        println!(
            "relay {name}: {n} events read, log published through {:?}",
            runner.status().checkpoint
        );
        return Ok(());
    }
    let run = runner.run(shutdown_signal());
    tokio::pin!(run);
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    let mut reported = u64::MAX;
    loop {
        tokio::select! {
            done = &mut run => {
                done?;
                break;
            }
            _ = tick.tick() => {
                let s = runner.status();
                if s.events != reported {
                    reported = s.events;
                    tracing::info!(
                        relay = %name,
                        events = s.events,
                        lag = ?s.lag,
                        state = ?s.state,
                        error = s.last_error.as_deref().unwrap_or(""),
                        "relay progress"
                    );
                }
            }
        }
    }
    tracing::info!(relay = %name, events = runner.status().events, "relay stopped");
    Ok(())
}
