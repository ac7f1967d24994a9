//! Loss and accuracy per epoch, one PNG with two panels.
use super::base::{plot_error, register_font, PlotError};
use crate::train::metrics::Record;
use plotters::prelude::*;
use std::path::Path;

/// Draws training loss (left) and train/test accuracy (right) of the epoch records.
pub fn plot_curves(path: &Path, title: &str, epochs: &[Record]) -> Result<(), PlotError> {
    register_font();
    let err = |e: &dyn std::fmt::Display| plot_error(path, e);
    let root = BitMapBackend::new(path, (1200, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let root = root
        .titled(title, ("sans-serif", 24))
        .map_err(|e| err(&e))?;
    let (left, right) = root.split_horizontally(600);
    let last = epochs.iter().map(|r| r.epoch).max().unwrap_or(1).max(1);
    let x_range = 0.8f64..last as f64 + 0.2;

    let max_loss = epochs.iter().map(|r| r.loss).fold(0.0, f64::max).max(1e-3) * 1.1;
    let mut chart = ChartBuilder::on(&left)
        .caption("training loss", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x_range.clone(), 0.0..max_loss)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("cross-entropy")
        .draw()
        .map_err(|e| err(&e))?;
    chart
        .draw_series(
            LineSeries::new(
                epochs.iter().map(|r| (r.epoch as f64, r.loss)),
                RED.stroke_width(2),
            )
            .point_size(3),
        )
        .map_err(|e| err(&e))?
        .label("train loss")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()
        .map_err(|e| err(&e))?;

    let lowest = epochs
        .iter()
        .flat_map(|r| [Some(r.train_acc), r.test_acc])
        .flatten()
        .fold(1.0, f64::min);
    let mut chart = ChartBuilder::on(&right)
        .caption("accuracy", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x_range, (lowest * 100.0 - 5.0).max(0.0)..100.0)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("accuracy (%)")
        .draw()
        .map_err(|e| err(&e))?;
    let series: [(&str, RGBColor, Box<dyn Fn(&Record) -> Option<f64>>); 2] = [
        (
            "train (augmented, running)",
            BLUE,
            Box::new(|r| Some(r.train_acc)),
        ),
        ("test", GREEN, Box::new(|r| r.test_acc)),
    ];
    for (label, color, value) in series {
        let points: Vec<(f64, f64)> = epochs
            .iter()
            .filter_map(|r| value(r).map(|v| (r.epoch as f64, 100.0 * v)))
            .collect();
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)).point_size(3))
            .map_err(|e| err(&e))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}
