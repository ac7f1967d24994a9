//! What every plot needs: the embedded font and an error naming the file.

use std::sync::Once;

const FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// Registers the embedded font as plotters' `sans-serif` (once per process).
pub(super) fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are a valid TTF (checked by the plot tests), so this cannot fail.
        let _ =
            plotters::style::register_font("sans-serif", plotters::style::FontStyle::Normal, FONT);
    });
}

/// A plotting error with the file it was for.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw {path}: {reason}")]
pub struct PlotError {
    pub path: std::path::PathBuf,
    pub reason: String,
}

pub(super) fn plot_error(path: &std::path::Path, reason: impl std::fmt::Display) -> PlotError {
    PlotError {
        path: path.into(),
        reason: reason.to_string(),
    }
}
