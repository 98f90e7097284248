//! `make bench`: runs each scenario next to its raw baseline in the same run and writes
//! `<out>/<date>.md` with SVG plots beside it. `--quick` is a smoke run for `make test`: it keeps
//! the benchmark code working; its numbers mean nothing.

mod measure;
mod report;
mod scenarios;

use clap::Parser;
use std::path::PathBuf;

/// Measures clinicnet against raw PostgreSQL and NATS on this machine.
#[derive(Debug, Parser)]
#[command(name = "clinicnet-bench")]
struct Cli {
    /// Small sizes and short runs: checks the benchmarks work, measures nothing meaningful.
    #[arg(long)]
    quick: bool,
    /// Directory the report and plots are written to.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// Run only the scenarios whose name contains one of these words (all when empty).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

impl Cli {
    /// Whether the scenario `name` is part of this run.
    fn runs(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|word| name.contains(word.as_str()))
    }
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_owned())
        })
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| kb / 1024 / 1024)
        .unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    format!("Machine: {cpus} cores ({model}), {memory} GiB memory.")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let scale = scenarios::Scale::new(cli.quick);
    let date = time::OffsetDateTime::now_utc().date();
    let dir = if cli.quick {
        cli.out.join("quick")
    } else {
        cli.out.clone()
    };
    std::fs::create_dir_all(&dir)?;

    let mut reports = Vec::new();
    if cli.runs("backbone") {
        eprintln!("bench: event backbone…");
        reports.push(scenarios::backbone::run(scale).await?);
    }
    if cli.runs("search") {
        eprintln!("bench: directory search…");
        reports.push(scenarios::search::run(scale).await?);
    }
    if cli.runs("booking") {
        eprintln!("bench: booking…");
        reports.push(scenarios::booking::run(scale).await?);
    }
    if cli.runs("sync") {
        eprintln!("bench: availability sync…");
        reports.push(scenarios::sync::run(scale).await?);
    }
    if cli.runs("claims") {
        eprintln!("bench: insurance claims…");
        reports.push(scenarios::claims::run(scale).await?);
    }
    if cli.runs("notifications") {
        eprintln!("bench: notifications…");
        reports.push(scenarios::notify::run(scale).await?);
    }
    // One network serves these three.
    if cli.runs("event-latency") || cli.runs("network-day") || cli.runs("footprint") {
        eprintln!("bench: end-to-end event latency, network day and footprint…");
        reports.extend(scenarios::network_day::run(scale).await?);
    }

    for report in &reports {
        for plot in &report.plots {
            report::draw(&dir, plot)?;
        }
    }
    let title = format!(
        "clinicnet benchmarks, {date}{}",
        if cli.quick { " (quick run)" } else { "" }
    );
    let text = report::markdown(&title, &machine(), &reports);
    let path = dir.join(format!("{date}.md"));
    std::fs::write(&path, &text)?;
    println!("{text}");
    eprintln!("bench: report written to {}", path.display());
    Ok(())
}
