//! What each command-line command does, on the application service.

mod demo;
mod generate;
mod ops;
mod relay;
mod render;
mod serve;
mod worker;

pub use demo::demo;
pub use generate::{generate, generate_into, GenerateReport};
pub use ops::{catalogue, events, projections, rebuild};
pub use relay::relay;
pub use serve::serve;
pub use worker::worker;

/// The database a command works on: `DATABASE_URL` (PostgreSQL) when set, else the SQLite
/// file `db`.
pub(crate) fn database(db: &std::path::Path) -> Result<crate::Database, crate::AppError> {
    crate::Database::from_env_or(db)
}

/// Opens the app on [`database`].
pub(crate) async fn open_app(db: &std::path::Path) -> Result<crate::StoryChain, crate::AppError> {
    crate::StoryChain::open_database(&database(db)?).await
}

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

/// The logging [`init_logs`] installed, kept until the process ends: with feature `otlp`, the
/// span exporter, which sends what it still holds when this is dropped (drop it after the
/// runtime, outside async code).
#[derive(Debug)]
pub struct Logs {
    #[cfg(feature = "otlp")]
    otlp: Option<recount::telemetry::otlp::OtlpTracing>,
}

impl Drop for Logs {
    fn drop(&mut self) {
        #[cfg(feature = "otlp")]
        if let Some(otlp) = self.otlp.take() {
            if let Err(e) = otlp.shutdown() {
                eprintln!("storychain: {e}");
            }
        }
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`). Built with feature `otlp` and
/// given `OTEL_EXPORTER_OTLP_ENDPOINT` (the collector's base URL, such as
/// `http://127.0.0.1:4318`), spans also go to an OpenTelemetry collector over OTLP/HTTP, as
/// service `storychain` (or `OTEL_SERVICE_NAME`), filtered by `RUST_LOG` (default
/// `info,recount=debug`, which includes the consumers' batch spans). Call it once, before the
/// runtime starts; an OTLP setting that cannot work is an error.
pub fn init_logs() -> Result<Logs, Box<dyn std::error::Error + Send + Sync>> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer};

    let filter = |default: &str| {
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default))
    };
    let registry = tracing_subscriber::registry().with(
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(filter("info")),
    );
    #[cfg(feature = "otlp")]
    {
        let otlp = recount::telemetry::otlp::OtlpTracing::from_env("storychain")?;
        let layer = otlp
            .as_ref()
            .map(|o| o.layer().with_filter(filter("info,recount=debug")));
        let _ = registry.with(layer).try_init();
        Ok(Logs { otlp })
    }
    #[cfg(not(feature = "otlp"))]
    {
        let _ = registry.try_init();
        Ok(Logs {})
    }
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
