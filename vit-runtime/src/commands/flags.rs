//! Parsers of numeric flags that refuse a value outside its range before any work starts;
//! clap names the flag in the message (`invalid value '0' for '--epochs <N>': ...`).

/// A learning rate: finite and above 0.
pub fn learning_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(lr) if lr.is_finite() && lr > 0.0 => Ok(lr),
        _ => Err(format!(
            "`{s}` is not a learning rate (a finite number above 0)"
        )),
    }
}

/// A count or size that must be at least 1: epochs, batch sizes, image limits, steps.
pub fn at_least_one(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("`{s}` is not a whole number of at least 1")),
    }
}

/// An accuracy in percent: above 0 and at most 100.
pub fn percent(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(p) if p > 0.0 && p <= 100.0 => Ok(p),
        _ => Err(format!(
            "`{s}` is not an accuracy in percent (above 0, at most 100)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learning_rates_must_be_finite_and_above_zero() {
        assert_eq!(learning_rate("0.001"), Ok(0.001));
        assert_eq!(learning_rate(" 1e-4"), Ok(1e-4));
        for bad in ["0", "-1", "nan", "inf", "-0", "x", ""] {
            let error = learning_rate(bad).unwrap_err();
            assert!(error.contains("above 0"), "{bad}: {error}");
        }
    }

    #[test]
    fn counts_must_be_whole_numbers_of_at_least_one() {
        assert_eq!(at_least_one("1"), Ok(1));
        assert_eq!(at_least_one("128"), Ok(128));
        for bad in ["0", "-1", "1.5", "x", ""] {
            let error = at_least_one(bad).unwrap_err();
            assert!(error.contains("at least 1"), "{bad}: {error}");
        }
    }

    #[test]
    fn accuracies_are_percentages_above_zero_and_at_most_100() {
        assert_eq!(percent("92.3"), Ok(92.3));
        assert_eq!(percent("100"), Ok(100.0));
        for bad in ["0", "-1", "101", "nan", "x", ""] {
            let error = percent(bad).unwrap_err();
            assert!(error.contains("percent"), "{bad}: {error}");
        }
    }
}
