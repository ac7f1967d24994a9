//! Test accuracy per epoch of every run of a sweep, in one chart.
use super::{plot_error, register_font, PlotError};
use plotters::prelude::*;
use std::path::Path;

/// One run of a sweep: its legend label and `(epoch, test accuracy in [0, 1])` points.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepSeries {
    pub label: String,
    pub points: Vec<(usize, f64)>,
}

/// Draws every run's test accuracy against the epoch; the run at `best` gets a thicker line
/// and "(best)" in the legend.
pub fn plot_sweep(
    path: &Path,
    title: &str,
    runs: &[SweepSeries],
    best: Option<usize>,
) -> Result<(), PlotError> {
    register_font();
    let err = |e: &dyn std::fmt::Display| plot_error(path, e);
    let root = BitMapBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let points = || runs.iter().flat_map(|r| r.points.iter());
    let last = points().map(|p| p.0).max().unwrap_or(1).max(1);
    let lowest = points().map(|p| p.1).fold(1.0, f64::min);
    let y_range = ((lowest * 100.0 - 5.0).max(0.0).floor())..100.0;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
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
        .x_label_formatter(&|x| {
            // Whole epochs only: the axis is continuous so that the points sit on it.
            if (x - x.round()).abs() < 1e-9 {
                format!("{x:.0}")
            } else {
                String::new()
            }
        })
        .axis_desc_style(("sans-serif", 16))
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| err(&e))?;
    for (i, run) in runs.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let is_best = best == Some(i);
        let width = if is_best { 4 } else { 2 };
        let label = if is_best {
            format!("{} (best)", run.label)
        } else {
            run.label.clone()
        };
        let points = run.points.iter().map(|&(e, acc)| (e as f64, 100.0 * acc));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(width)).point_size(4))
            .map_err(|e| err(&e))?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(width))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font(("sans-serif", 15))
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .draw()
        .map_err(|e| err(&e))?;
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
        plot_sweep(&path, "lightvit on mnist", &runs, Some(1)).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        assert!(bytes.len() > 10_000, "almost nothing drawn");
    }

    #[test]
    fn a_sweep_with_no_points_still_draws_axes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.png");
        plot_sweep(&path, "nothing yet", &[], None).unwrap();
        assert!(path.exists());
    }
}
