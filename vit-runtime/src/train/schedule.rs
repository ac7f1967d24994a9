//! Learning rate per optimiser step, as the spec's `schedule:` says.
use crate::recipe::Schedule;

/// Learning rate for 0-based `step` of a run of `total_steps`, `warmup` counted in steps.
pub fn lr_at(
    schedule: Schedule,
    base_lr: f64,
    step: usize,
    steps_per_epoch: usize,
    total_steps: usize,
) -> f64 {
    match schedule {
        Schedule::Constant => base_lr,
        Schedule::WarmupCosine {
            warmup_epochs,
            min_lr,
        } => {
            let warmup = warmup_epochs * steps_per_epoch;
            if step < warmup {
                base_lr * (step + 1) as f64 / warmup as f64
            } else {
                let span = total_steps.saturating_sub(warmup).max(1);
                let progress = ((step - warmup) as f64 / span as f64).min(1.0);
                min_lr + (base_lr - min_lr) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COSINE: Schedule = Schedule::WarmupCosine {
        warmup_epochs: 1,
        min_lr: 0.0,
    };

    #[test]
    fn warmup_rises_linearly_to_the_base_rate() {
        assert!((lr_at(COSINE, 1.0, 0, 10, 100) - 0.1).abs() < 1e-12);
        assert!((lr_at(COSINE, 1.0, 4, 10, 100) - 0.5).abs() < 1e-12);
        assert!((lr_at(COSINE, 1.0, 9, 10, 100) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn cosine_decays_from_base_to_min_after_warmup() {
        assert!((lr_at(COSINE, 1.0, 10, 10, 100) - 1.0).abs() < 1e-12);
        assert!((lr_at(COSINE, 1.0, 55, 10, 100) - 0.5).abs() < 1e-12);
        assert!(lr_at(COSINE, 1.0, 99, 10, 100) < 1e-3);
    }

    #[test]
    fn constant_is_constant() {
        assert_eq!(lr_at(Schedule::Constant, 0.005, 1234, 10, 100), 0.005);
    }
}
