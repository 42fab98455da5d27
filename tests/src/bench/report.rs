//! Benchmark rows: the table and the JSON file.

use serde::Serialize;

/// One measured scenario on one store.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Scenario name (`append-single`, …).
    pub scenario: String,
    /// Store name.
    pub store: String,
    /// Recount's rate.
    pub recount_per_sec: f64,
    /// The raw baseline's rate.
    pub raw_per_sec: f64,
    /// `recount_per_sec / raw_per_sec`.
    pub ratio: f64,
    /// What is counted: `ops` or `events`.
    pub unit: &'static str,
    /// Recount's median latency of one operation, in microseconds.
    pub recount_median_us: f64,
    /// The raw baseline's median latency of one operation, in microseconds.
    pub raw_median_us: f64,
    /// Extra facts (round trips, sizes).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
}

fn rate(v: f64) -> String {
    let whole = v.round() as u64;
    let digits = whole.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Prints the rows as a table.
pub fn print_table(rows: &[Row]) {
    println!(
        "| {:<16} | {:<8} | {:>7} | {:>14} | {:>14} | {:>6} | {:>11} | {:>11} | note",
        "scenario", "store", "unit", "recount/s", "raw/s", "ratio", "recount p50", "raw p50"
    );
    println!(
        "|{:-<18}|{:-<10}|{:-<9}|{:-<16}|{:-<16}|{:-<8}|{:-<13}|{:-<13}|------",
        "", "", "", "", "", "", "", ""
    );
    for r in rows {
        println!(
            "| {:<16} | {:<8} | {:>7} | {:>14} | {:>14} | {:>6.2} | {:>9.1}µs | {:>9.1}µs | {}",
            r.scenario,
            r.store,
            r.unit,
            rate(r.recount_per_sec),
            rate(r.raw_per_sec),
            r.ratio,
            r.recount_median_us,
            r.raw_median_us,
            r.note
        );
    }
}

/// Writes the rows as a JSON array to `path`.
pub fn write_json(rows: &[Row], path: &std::path::Path) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(rows).map_err(std::io::Error::other)?;
    std::fs::write(path, text)
}
