//! What each command-line command does, on the application service.

mod demo;
mod generate;
mod ops;
mod relay;
mod render;
mod serve;

pub use demo::demo;
pub use generate::{generate, generate_into, GenerateReport};
pub use ops::{catalogue, events, projections, rebuild};
pub use relay::relay;
pub use serve::serve;

/// A command's failure, printed by `main`.
pub type CliResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// A progress bar on stderr that draws only on a terminal: without one (CI, pipes) indicatif
/// hides it, and callers print a summary line instead.
pub(crate) fn progress_bar(total: u64, template: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
pub(crate) fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
