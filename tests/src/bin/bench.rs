//! `bench`: every scenario of the benchmark contract through Recount and through a raw
//! baseline on the same engine, in the same run; prints ratios.
//!
//! `cargo run --release -p recount-tests --bin bench -- [--store memory|sqlite|postgres]
//! [--scenario NAME] [--quick] [--json PATH] [--sizes N,N,..]`
//!
//! Scenario `relay` measures the broker relays (NATS, Redis, RabbitMQ) whatever the store;
//! `push-fanout` many SSE subscribers on one StoryChain server (SQLite).
//! Scenario `growth` fills each store to each of `--sizes` events (default 0, 1M and 5M; 0 and
//! 20k with `--quick`) and measures appends, stalls, the tail, replay, storage and WAL at each;
//! it runs only when named, and writes its own JSON (`--json PATH` holds its rows).

use clap::Parser;
use recount_tests::bench::{self, BenchOptions, PairFactory, Row};

/// Command-line options.
#[derive(Debug, Parser)]
#[command(about = "Recount benchmarks: Recount beside a raw baseline, same engine, same run")]
struct Args {
    /// Stores to measure (repeatable). Default: memory and sqlite, and postgres when
    /// DATABASE_URL is set.
    #[arg(long = "store", value_parser = ["memory", "sqlite", "postgres"])]
    stores: Vec<String>,
    /// Run only this scenario.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(bench::SCENARIOS.iter().chain(&["relay", "push-fanout", bench::growth::SCENARIO])))]
    scenario: Option<String>,
    /// Shrink every size (a quick check, as CI runs it).
    #[arg(long)]
    quick: bool,
    /// Also write the rows as a JSON array to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Log sizes of the `growth` scenario, comma-separated (e.g. 0,1000000,5000000).
    #[arg(long, value_delimiter = ',')]
    sizes: Vec<u64>,
}

fn factory(store: &str) -> Option<PairFactory> {
    match store {
        "memory" => Some(Box::new(|| {
            Box::pin(async { Ok(bench::MemoryRaw::pair()) })
        })),
        "sqlite" => bench::sqlite::factory(),
        "postgres" => bench::postgres::factory(),
        _ => None,
    }
}

/// The stores asked for, else memory and sqlite, and postgres when DATABASE_URL is set.
fn stores(args: &Args) -> Vec<String> {
    let mut stores = args.stores.clone();
    if stores.is_empty() {
        stores = vec!["memory".into(), "sqlite".into()];
        if std::env::var_os("DATABASE_URL").is_some() {
            stores.push("postgres".into());
        }
    }
    stores
}

/// Scenario `growth` on each store (the in-memory store has no storage to grow, and is
/// skipped).
async fn growth(
    stores: &[String],
    opts: &BenchOptions,
    json: Option<&std::path::Path>,
) -> std::process::ExitCode {
    let mut rows = Vec::new();
    for store in stores.iter().filter(|s| *s != "memory") {
        let Some(factory) = factory(store) else {
            eprintln!("bench: cannot open store `{store}` (postgres needs DATABASE_URL)");
            return std::process::ExitCode::FAILURE;
        };
        let run = async { bench::growth::run_growth(&factory().await?, opts).await };
        match run.await {
            Ok(r) => rows.extend(r),
            Err(e) => {
                eprintln!("bench: growth on {store} failed: {e}");
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    bench::growth::print_growth_table(&rows);
    if let Some(path) = json {
        if let Err(e) = bench::growth::write_growth_json(&rows, path) {
            eprintln!("bench: cannot write {}: {e}", path.display());
            return std::process::ExitCode::FAILURE;
        }
    }
    std::process::ExitCode::SUCCESS
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let stores = stores(&args);
    let opts = BenchOptions {
        quick: args.quick,
        scenario: args.scenario.clone(),
        sizes: args.sizes.clone(),
    };
    if opts.scenario.as_deref() == Some(bench::growth::SCENARIO) {
        return growth(&stores, &opts, args.json.as_deref()).await;
    }
    let mut rows: Vec<Row> = Vec::new();
    for store in &stores {
        let Some(factory) = factory(store) else {
            if store == "postgres" {
                eprintln!(
                    "bench: --store postgres needs DATABASE_URL (postgres://user@host:port/db)"
                );
            } else {
                eprintln!("bench: unknown store `{store}`");
            }
            return std::process::ExitCode::FAILURE;
        };
        match bench::run_scenarios(&factory, &opts).await {
            Ok(r) => rows.extend(r),
            Err(e) => {
                eprintln!("bench: {store} failed: {e}");
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    if opts.wants("relay") {
        match bench::relay::run_relay(&opts).await {
            Ok(r) => rows.extend(r),
            Err(e) => {
                eprintln!("bench: relay failed: {e}");
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    if opts.wants("push-fanout") {
        match bench::push::run_push(&opts).await {
            Ok(r) => rows.extend(r),
            Err(e) => {
                eprintln!("bench: push-fanout failed: {e}");
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    bench::print_table(&rows);
    if let Some(path) = &args.json {
        if let Err(e) = bench::write_json(&rows, path) {
            eprintln!("bench: cannot write {}: {e}", path.display());
            return std::process::ExitCode::FAILURE;
        }
    }
    std::process::ExitCode::SUCCESS
}
