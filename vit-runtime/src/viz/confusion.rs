//! The confusion matrix as a heat map with class names and per-class accuracy.
use super::base::{plot_error, register_font, PlotError};
use crate::train::metrics::Confusion;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// Rows: true class (with its accuracy), columns: predicted class; cells show counts,
/// shaded by the share of the row.
pub fn plot_confusion(
    path: &Path,
    title: &str,
    confusion: &Confusion,
    names: &[String],
) -> Result<(), PlotError> {
    register_font();
    let err = |e: &dyn std::fmt::Display| plot_error(path, e);
    let k = confusion.classes;
    let root = BitMapBackend::new(path, (900, 820)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let title = format!("{title}: accuracy {:.2}%", 100.0 * confusion.accuracy());
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(60)
        .y_label_area_size(170)
        // plotters' discrete ranges include their end: `0..k - 1` gives the k cells.
        .build_cartesian_2d((0..k - 1).into_segmented(), (0..k - 1).into_segmented())
        .map_err(|e| err(&e))?;
    let recall = confusion.per_class();
    let name = |i: usize| names.get(i).map_or("?", String::as_str).to_string();
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("predicted class")
        .y_desc("true class (its accuracy)")
        .x_labels(k)
        .y_labels(k)
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) if *i < k => name(*i),
            _ => String::new(),
        })
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) if *i < k => {
                format!("{} ({:.1}%)", name(k - 1 - *i), 100.0 * recall[k - 1 - *i])
            }
            _ => String::new(),
        })
        .x_label_style(("sans-serif", 11))
        .y_label_style(("sans-serif", 13))
        .draw()
        .map_err(|e| err(&e))?;
    for truth in 0..k {
        let row = &confusion.counts[truth * k..(truth + 1) * k];
        let total = row.iter().sum::<usize>().max(1) as f64;
        for (predicted, &count) in row.iter().enumerate() {
            let share = count as f64 / total;
            let y = k - 1 - truth;
            let shade = 255 - (share.sqrt() * 200.0) as u8;
            let fill = if truth == predicted {
                RGBColor(shade, 255, shade)
            } else {
                RGBColor(255, shade, shade)
            };
            chart
                .draw_series([Rectangle::new(
                    [
                        (SegmentValue::Exact(predicted), SegmentValue::Exact(y)),
                        (
                            SegmentValue::Exact(predicted + 1),
                            SegmentValue::Exact(y + 1),
                        ),
                    ],
                    fill.filled(),
                )])
                .map_err(|e| err(&e))?;
            let style = ("sans-serif", 15)
                .into_font()
                .into_text_style(&root)
                .pos(Pos::new(HPos::Center, VPos::Center));
            let label = Text::new(
                count.to_string(),
                (SegmentValue::CenterOf(predicted), SegmentValue::CenterOf(y)),
                style,
            );
            chart.draw_series([label]).map_err(|e| err(&e))?;
        }
    }
    root.present().map_err(|e| err(&e))
}
