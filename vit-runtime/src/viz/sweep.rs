//! Test accuracy per epoch of every run of a sweep, in one chart.
use super::base::{plot_error, register_font, PlotError};
use crate::train::sweep::RunSummary;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// Matplotlib's `tab10`: ten colours that stay apart on white.
const TAB10: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// One run of a sweep: its legend label and `(epoch, test accuracy in [0, 1])` points.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepSeries {
    pub label: String,
    pub points: Vec<(usize, f64)>,
}

impl From<&RunSummary> for SweepSeries {
    fn from(run: &RunSummary) -> Self {
        SweepSeries {
            label: run.label.clone(),
            points: run.points.clone(),
        }
    }
}

/// Draws every run's test accuracy against the epoch (the axis spans at least `epochs`);
/// the run at `best` gets a thicker line and "(best)" in the legend.
pub fn plot_sweep(
    path: &Path,
    title: &str,
    runs: &[SweepSeries],
    epochs: usize,
    best: Option<usize>,
) -> Result<(), PlotError> {
    register_font();
    let err = |e: &dyn std::fmt::Display| plot_error(path, e);
    let root = BitMapBackend::new(path, (1000, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let root = root
        .titled(title, ("sans-serif", 20))
        .map_err(|e| err(&e))?;
    // The legend gets its own column, so it never hides a curve.
    let (plot_area, legend_area) = root.split_horizontally(780);
    let points = || runs.iter().flat_map(|r| r.points.iter());
    let last = points().map(|p| p.0).max().unwrap_or(1).max(epochs).max(1);
    let lowest = points().map(|p| p.1).fold(1.0, f64::min);
    let highest = points().map(|p| p.1).fold(0.0, f64::max);
    let y_range =
        (lowest * 100.0 - 5.0).max(0.0).floor()..(highest * 100.0 + 5.0).min(100.0).ceil();
    let mut chart = ChartBuilder::on(&plot_area)
        .margin(16)
        .x_label_area_size(45)
        .y_label_area_size(65)
        .build_cartesian_2d(0.8f64..last as f64 + 0.2, y_range)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("test accuracy (%)")
        .x_labels(last.min(20) + 1)
        .light_line_style(WHITE)
        .x_label_formatter(&|x| {
            // Whole epochs only: the axis is continuous so that the points sit on it.
            if (x - x.round()).abs() < 1e-9 {
                format!("{x:.0}")
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| format!("{y:.0}"))
        .axis_desc_style(("sans-serif", 16))
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| err(&e))?;
    let legend_font = ("sans-serif", 15).into_font().into_text_style(&legend_area);
    legend_area
        .draw(&Text::new("run", (10, 24), legend_font.clone()))
        .map_err(|e| err(&e))?;
    for (i, run) in runs.iter().enumerate() {
        let color = TAB10[i % TAB10.len()];
        let width = if best == Some(i) { 4 } else { 2 };
        let points = run.points.iter().map(|&(e, acc)| (e as f64, 100.0 * acc));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(width)).point_size(4))
            .map_err(|e| err(&e))?;
        let y = 52 + 26 * i as i32;
        legend_area
            .draw(&PathElement::new(
                vec![(10, y), (40, y)],
                color.stroke_width(width),
            ))
            .map_err(|e| err(&e))?;
        let label = match best == Some(i) {
            true => format!("{} (best)", run.label),
            false => run.label.clone(),
        };
        let style = legend_font.pos(Pos::new(HPos::Left, VPos::Center));
        legend_area
            .draw(&Text::new(label, (48, y), style))
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_renders_every_run_to_one_png() {
        let runs = vec![
            SweepSeries {
                label: "lr 0.01".into(),
                points: vec![(1, 0.6), (2, 0.7), (3, 0.72)],
            },
            SweepSeries {
                label: "lr 0.001".into(),
                points: vec![(1, 0.5), (2, 0.75), (3, 0.8)],
            },
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sweep.png");
        plot_sweep(&path, "lightvit on mnist", &runs, 3, Some(1)).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        assert!(bytes.len() > 10_000, "almost nothing drawn");
    }

    #[test]
    fn a_sweep_with_no_points_still_draws_axes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.png");
        plot_sweep(&path, "nothing yet", &[], 5, None).unwrap();
        assert!(path.exists());
    }
}
