//! The benchmark report: one markdown table per scenario (value, baseline, ratio, goal) and SVG
//! plots of latency distributions and throughput over time.

use plotters::prelude::*;
use std::{fmt::Write as _, path::Path};

/// One measured quantity next to its raw baseline.
#[derive(Debug, Clone)]
pub struct Row {
    /// What was measured.
    pub metric: String,
    /// The system's value.
    pub value: f64,
    /// The raw baseline's value, when there is one.
    pub baseline: Option<f64>,
    /// Unit of value and baseline.
    pub unit: &'static str,
    /// The goal, in words.
    pub goal: String,
    /// Whether the goal was met (None when there is no goal).
    pub met: Option<bool>,
}

/// A line on a plot.
#[derive(Debug, Clone)]
pub struct Line {
    /// Legend label.
    pub label: String,
    /// Points.
    pub points: Vec<(f64, f64)>,
}

/// A plot of one scenario.
#[derive(Debug, Clone)]
pub struct Plot {
    /// File name stem.
    pub file: String,
    /// Title.
    pub title: String,
    /// Axis labels.
    pub x_label: &'static str,
    /// Axis labels.
    pub y_label: &'static str,
    /// Lines.
    pub lines: Vec<Line>,
}

/// What a scenario produced.
#[derive(Debug, Clone)]
pub struct ScenarioReport {
    /// Scenario name.
    pub name: String,
    /// What it does, in one sentence.
    pub description: String,
    /// Measured rows.
    pub rows: Vec<Row>,
    /// Plots.
    pub plots: Vec<Plot>,
}

fn ratio(row: &Row) -> String {
    match row.baseline {
        Some(baseline) if baseline > 0.0 => format!("{:.2}×", row.value / baseline),
        _ => "–".to_owned(),
    }
}

fn number(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

/// Markdown for every scenario.
pub fn markdown(title: &str, machine: &str, scenarios: &[ScenarioReport]) -> String {
    let mut out = format!("# {title}\n\n{machine}\n");
    for scenario in scenarios {
        let _ = write!(
            out,
            "\n## {}\n\n{}\n\n| metric | value | baseline | ratio | goal | met |\n|---|---|---|---|---|---|\n",
            scenario.name, scenario.description
        );
        for row in &scenario.rows {
            let _ = writeln!(
                out,
                "| {} | {} {} | {} | {} | {} | {} |",
                row.metric,
                number(row.value),
                row.unit,
                row.baseline
                    .map(number)
                    .map(|b| format!("{b} {}", row.unit))
                    .unwrap_or_else(|| "–".into()),
                ratio(row),
                row.goal,
                match row.met {
                    Some(true) => "yes",
                    Some(false) => "**no**",
                    None => "–",
                }
            );
        }
        for plot in &scenario.plots {
            let _ = writeln!(out, "\n![{}]({}.svg)", plot.title, plot.file);
        }
    }
    out
}

/// Draws `plot` as `<dir>/<file>.svg`.
pub fn draw(dir: &Path, plot: &Plot) -> anyhow::Result<()> {
    let path = dir.join(format!("{}.svg", plot.file));
    let root = SVGBackend::new(&path, (800, 450)).into_drawing_area();
    root.fill(&WHITE)?;
    let x_max = plot
        .lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .fold(1.0_f64, f64::max);
    let y_max = plot
        .lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(1.0_f64, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption(&plot.title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc(plot.x_label)
        .y_desc(plot.y_label)
        .draw()?;
    for (index, line) in plot.lines.iter().enumerate() {
        let color = Palette99::pick(index).to_rgba();
        chart
            .draw_series(LineSeries::new(
                line.points.iter().copied(),
                color.stroke_width(2),
            ))?
            .label(line.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_value_baseline_ratio_and_goal() {
        let scenarios = vec![ScenarioReport {
            name: "outbox".into(),
            description: "relay".into(),
            rows: vec![Row {
                metric: "throughput".into(),
                value: 5000.0,
                baseline: Some(10000.0),
                unit: "events/s",
                goal: "≥ 0.5× raw".into(),
                met: Some(true),
            }],
            plots: vec![],
        }];
        let text = markdown("bench", "machine", &scenarios);
        assert!(
            text.contains(
                "| throughput | 5000 events/s | 10000 events/s | 0.50× | ≥ 0.5× raw | yes |"
            ),
            "{text}"
        );
    }

    #[test]
    fn plots_are_written_as_svg() {
        let dir = tempfile::tempdir().unwrap();
        let plot = Plot {
            file: "latency".into(),
            title: "latency".into(),
            x_label: "percentile",
            y_label: "ms",
            lines: vec![Line {
                label: "raw".into(),
                points: vec![(0.0, 1.0), (50.0, 2.0), (100.0, 5.0)],
            }],
        };
        draw(dir.path(), &plot).unwrap();
        let svg = std::fs::read_to_string(dir.path().join("latency.svg")).unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("polyline") || svg.contains("path"));
    }
}
