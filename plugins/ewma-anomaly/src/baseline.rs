//! The exponentially weighted moving mean and variance of one series, and the z-score of a new
//! point against it. Pure arithmetic, no time.
//!
//! The update is the incremental form (Finch, "Incremental calculation of weighted mean and
//! variance", 2009): with `d = x - mean`, `mean += alpha * d` and
//! `var = (1 - alpha) * (var + alpha * d²)`. During warm-up the weight is `max(alpha, 1/n)`, so
//! the first points give their plain mean and variance instead of a baseline biased towards 0.

use serde::{Deserialize, Serialize};

/// A series' baseline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// Points absorbed.
    pub n: u64,
    /// The moving mean.
    #[serde(with = "exact")]
    pub mean: f64,
    /// The moving variance.
    #[serde(with = "exact")]
    pub var: f64,
}

/// Floors of the standard deviation, so that a flat series does not make every wiggle infinite.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Floors {
    /// Absolute floor.
    pub min_stddev: f64,
    /// Floor as a fraction of the mean's magnitude.
    pub min_relative_stddev: f64,
}

impl Baseline {
    /// A baseline of the single point `x`.
    #[cfg(test)]
    pub fn of(x: f64) -> Self {
        Baseline {
            n: 1,
            mean: x,
            var: 0.0,
        }
    }

    /// Absorbs `x` with weight `alpha` (raised to `1/n` while few points are in).
    pub fn update(&mut self, x: f64, alpha: f64) {
        self.n = self.n.saturating_add(1);
        let weight = alpha.max(1.0 / self.n as f64).min(1.0);
        let diff = x - self.mean;
        let step = weight * diff;
        self.mean += step;
        self.var = (1.0 - weight) * (self.var + diff * step);
    }

    /// The standard deviation, floored.
    pub fn stddev(&self, floors: &Floors) -> f64 {
        self.var
            .max(0.0)
            .sqrt()
            .max(floors.min_stddev)
            .max(floors.min_relative_stddev * self.mean.abs())
    }

    /// The z-score of `x`: how many (floored) standard deviations it lies from the mean.
    pub fn z(&self, x: f64, floors: &Floors) -> f64 {
        let diff = x - self.mean;
        let stddev = self.stddev(floors);
        if stddev > 0.0 {
            diff / stddev
        } else if diff == 0.0 {
            0.0
        } else {
            diff.signum() * f64::INFINITY
        }
    }

    /// Checks a baseline decoded from a snapshot.
    pub fn check(&self) -> Result<(), String> {
        if !self.mean.is_finite() || !self.var.is_finite() || self.var < 0.0 {
            return Err("the baseline is not finite".to_owned());
        }
        Ok(())
    }
}

/// Floats in snapshots as their shortest exact text (`"150.43375239058867"`): JSON numbers
/// are not read back to the same bits by serde_json's default parser, and a restored baseline
/// must be the same to the last bit for the restored detector to behave the same.
pub mod exact {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `value` as text.
    pub fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    /// Reads a float written by [`serialize`].
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse()
            .map_err(|_| serde::de::Error::custom(format!("`{text}` is not a number")))
    }
}

/// The weight of a half-life of `points` points: after `points` updates a past point weighs half.
pub fn alpha_of_half_life(points: f64) -> f64 {
    1.0 - 0.5f64.powf(1.0 / points)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_FLOOR: Floors = Floors {
        min_stddev: 0.0,
        min_relative_stddev: 0.0,
    };

    #[test]
    fn warm_up_gives_the_plain_mean_and_variance() {
        let mut baseline = Baseline::default();
        for x in [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0] {
            baseline.update(x, 0.01);
        }
        assert!((baseline.mean - 5.0).abs() < 1e-12);
        // The population variance of these points is 4.
        assert!((baseline.var - 4.0).abs() < 1e-12, "{}", baseline.var);
        assert!((baseline.z(9.0, &NO_FLOOR) - 2.0).abs() < 1e-12);
    }

    #[test]
    fn forgets_at_the_half_life() {
        let alpha = alpha_of_half_life(10.0);
        assert!((alpha - 0.066_967).abs() < 1e-6);
        let mut baseline = Baseline {
            n: 1_000,
            mean: 0.0,
            var: 0.0,
        };
        for _ in 0..10 {
            baseline.update(1.0, alpha);
        }
        assert!((baseline.mean - 0.5).abs() < 1e-9);
    }

    #[test]
    fn floors_and_flat_series() {
        let flat = Baseline::of(100.0);
        assert_eq!(flat.z(100.0, &NO_FLOOR), 0.0);
        assert_eq!(flat.z(101.0, &NO_FLOOR), f64::INFINITY);
        assert_eq!(flat.z(99.0, &NO_FLOOR), f64::NEG_INFINITY);
        let floors = Floors {
            min_stddev: 0.5,
            min_relative_stddev: 0.01,
        };
        // 1 % of 100 beats the absolute floor.
        assert_eq!(flat.stddev(&floors), 1.0);
        assert_eq!(flat.z(105.0, &floors), 5.0);
        assert!(Baseline::of(f64::NAN).check().is_err());
    }
}
