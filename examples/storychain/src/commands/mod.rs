//! What each command-line command does, on the application service.

mod demo;
mod generate;
mod ops;
mod render;
mod serve;

pub use demo::demo;
pub use generate::{generate, generate_into, GenerateReport};
pub use ops::{catalogue, events, projections, rebuild};
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
