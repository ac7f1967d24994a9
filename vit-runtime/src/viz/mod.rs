//! Plots people would rather look at than read: training curves, confusion matrices,
//! attention grids and sweeps.
//!
//! Text is drawn with an embedded DejaVu Sans (see `assets/DejaVuSans.LICENSE`), so plots
//! render the same everywhere, without a system font library.

pub mod attention;
mod base;
pub mod confusion;
pub mod curves;
pub mod sweep;

pub use attention::{plot_attention, AttentionGrid, GridRow};
pub use base::PlotError;
pub use confusion::plot_confusion;
pub use curves::plot_curves;
pub use sweep::{plot_sweep, SweepSeries};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::metrics::{Confusion, Record, RecordKind};

    fn record(epoch: usize, loss: f64, train: f64, test: f64) -> Record {
        Record {
            kind: RecordKind::Epoch,
            epoch,
            step: epoch as u64 * 10,
            lr: 1e-3,
            loss,
            train_acc: train,
            test_acc: Some(test),
            test_acc_class_head: None,
            test_acc_dist_head: None,
            images_per_sec: 100.0,
            seconds: 1.0,
        }
    }

    /// Checks the PNG signature; returns (width, height, file size).
    fn inspect(path: &std::path::Path) -> (u32, u32, usize) {
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(&bytes[1..4], b"PNG", "{} is not a PNG", path.display());
        let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
        let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
        (width, height, bytes.len())
    }

    #[test]
    fn curves_and_confusion_render_to_png_files() {
        let dir = std::env::temp_dir().join(format!("vit-viz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let epochs = [
            record(1, 1.2, 0.6, 0.7),
            record(2, 0.8, 0.75, 0.8),
            record(3, 0.6, 0.8, 0.84),
        ];
        plot_curves(&dir.join("curves.png"), "test run", &epochs).unwrap();
        let mut confusion = Confusion::new(10);
        for k in 0..10 {
            confusion.add(k, k);
            confusion.add(k, (k + 1) % 10);
        }
        let names: Vec<String> = crate::recipe::Dataset::FashionMnist
            .known_class_names()
            .expect("Fashion-MNIST names its classes")
            .map(String::from)
            .to_vec();
        plot_confusion(&dir.join("confusion.png"), "test run", &confusion, &names).unwrap();
        let (w, h, size) = inspect(&dir.join("curves.png"));
        assert_eq!((w, h), (1200, 480));
        assert!(
            size > 10_000,
            "curves.png has almost nothing drawn ({size} bytes)"
        );
        let (w, h, _) = inspect(&dir.join("confusion.png"));
        assert_eq!((w, h), (900, 820));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn unwritable_path_is_an_error_naming_it() {
        let err = plot_curves(
            std::path::Path::new("/nonexistent-dir/x.png"),
            "t",
            &[record(1, 1.0, 0.5, 0.5)],
        )
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent-dir/x.png"), "{err}");
    }
}
