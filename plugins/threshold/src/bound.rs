//! The condition of one rule, and the state machine one series runs against it: a breach must
//! last `for` before the alert fires, and the series must be back inside the bound for
//! `resolve_for` before it resolves. Pure: samples in, transitions out.

use serde::{Deserialize, Serialize};

/// Which side of the bound is a breach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Values greater than the bound breach.
    Above,
    /// Values less than the bound breach.
    Below,
}

/// A bound and its timing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bound {
    /// Side of the bound that breaches.
    pub direction: Direction,
    /// The bound.
    pub value: f64,
    /// The value a firing series must be back to (at or inside) to count as cleared; `value`
    /// unless a hysteresis band is configured.
    pub resolve_value: f64,
    /// How long a breach must last before the alert fires, in nanoseconds.
    pub for_nanos: i64,
    /// How long a firing series must stay cleared before the alert resolves, in nanoseconds.
    pub resolve_for_nanos: i64,
}

impl Bound {
    /// Whether `value` breaches the bound.
    pub fn breaches(&self, value: f64) -> bool {
        match self.direction {
            Direction::Above => value > self.value,
            Direction::Below => value < self.value,
        }
    }

    /// Whether `value` is back inside the bound (and past the hysteresis band, if any).
    pub fn clears(&self, value: f64) -> bool {
        match self.direction {
            Direction::Above => value <= self.resolve_value,
            Direction::Below => value >= self.resolve_value,
        }
    }

    /// `above 0.9` / `below 10`.
    pub fn describe(&self) -> String {
        let side = match self.direction {
            Direction::Above => "above",
            Direction::Below => "below",
        };
        format!("{side} {}", self.value)
    }
}

/// Where one series stands against its bound.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tracker {
    /// Time of the first sample of the current breach, while not firing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breach_since: Option<i64>,
    /// Time the alert fired, while it fires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firing_since: Option<i64>,
    /// Time of the first cleared sample, while firing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear_since: Option<i64>,
}

/// What a sample changed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Transition {
    /// The breach lasted `for`: the alert fires at `starts_at`; the breach began at `since`.
    Fired { starts_at: i64, since: i64 },
    /// The series stayed cleared for `resolve_for`: the alert resolves at `ends_at`.
    Resolved { ends_at: i64 },
}

impl Tracker {
    /// Takes the sample `value` at `time` (samples come in time order).
    pub fn sample(&mut self, time: i64, value: f64, bound: &Bound) -> Option<Transition> {
        if self.firing_since.is_some() {
            if !bound.clears(value) {
                self.clear_since = None;
                return None;
            }
            let since = *self.clear_since.get_or_insert(time);
            if time.saturating_sub(since) < bound.resolve_for_nanos {
                return None;
            }
            *self = Tracker::default();
            return Some(Transition::Resolved { ends_at: time });
        }
        if !bound.breaches(value) {
            self.breach_since = None;
            return None;
        }
        let since = *self.breach_since.get_or_insert(time);
        if time.saturating_sub(since) < bound.for_nanos {
            return None;
        }
        *self = Tracker {
            firing_since: Some(time),
            ..Tracker::default()
        };
        Some(Transition::Fired {
            starts_at: time,
            since,
        })
    }

    /// Whether the series holds nothing worth keeping: not firing and no breach under way.
    pub fn is_idle(&self) -> bool {
        self.firing_since.is_none() && self.breach_since.is_none()
    }

    /// Checks a tracker decoded from a snapshot against the series clock `latest`.
    pub fn check(&self, latest: i64) -> Result<(), String> {
        let times = [self.breach_since, self.firing_since, self.clear_since];
        if times.iter().flatten().any(|&time| time > latest) {
            return Err("a breach or alert time is ahead of the series".to_owned());
        }
        let consistent = match self.firing_since {
            Some(firing) => {
                self.breach_since.is_none() && self.clear_since.is_none_or(|clear| clear >= firing)
            }
            None => self.clear_since.is_none(),
        };
        if !consistent {
            return Err("breach and alert times are inconsistent".to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn above(value: f64, for_seconds: i64, resolve_for_seconds: i64) -> Bound {
        Bound {
            direction: Direction::Above,
            value,
            resolve_value: value,
            for_nanos: for_seconds * S,
            resolve_for_nanos: resolve_for_seconds * S,
        }
    }

    /// Feeds `(seconds, value)` samples; returns the transitions with their sample times.
    fn run(bound: &Bound, samples: &[(i64, f64)]) -> Vec<(i64, Transition)> {
        let mut tracker = Tracker::default();
        samples
            .iter()
            .filter_map(|&(seconds, value)| {
                tracker
                    .sample(seconds * S, value, bound)
                    .map(|change| (seconds, change))
            })
            .collect()
    }

    #[test]
    fn fires_after_the_breach_lasts_for_and_resolves_when_back() {
        let bound = above(0.9, 300, 0);
        let samples: Vec<(i64, f64)> = (0..20)
            .map(|minute| {
                (
                    minute * 60,
                    if (3..12).contains(&minute) { 0.95 } else { 0.5 },
                )
            })
            .collect();
        assert_eq!(
            run(&bound, &samples),
            vec![
                (
                    480,
                    Transition::Fired {
                        starts_at: 480 * S,
                        since: 180 * S
                    }
                ),
                (720, Transition::Resolved { ends_at: 720 * S }),
            ]
        );
    }

    #[test]
    fn a_breach_shorter_than_for_stays_quiet() {
        let bound = above(0.9, 300, 0);
        // Four minutes over, one under, four over: never five minutes in a row.
        let samples: Vec<(i64, f64)> = (0..10)
            .map(|minute| (minute * 60, if minute == 4 { 0.8 } else { 0.99 }))
            .collect();
        assert!(run(&bound, &samples).is_empty());
        // The value exactly at the bound is not a breach.
        assert!(run(&bound, &[(0, 0.9), (600, 0.9)]).is_empty());
    }

    #[test]
    fn resolve_for_and_the_hysteresis_band_hold_the_alert() {
        let bound = Bound {
            resolve_value: 0.8,
            ..above(0.9, 0, 120)
        };
        let samples = [
            (0, 0.95),  // fires at once (for = 0)
            (60, 0.85), // inside the bound but in the band: still firing
            (120, 0.7), // cleared from 120
            (180, 0.7),
            (200, 0.85), // back in the band: the clear run restarts
            (260, 0.5),  // cleared from 260
            (380, 0.5),  // 120 s later: resolves
        ];
        let changes = run(&bound, &samples);
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[0].0, 0);
        assert_eq!(changes[1], (380, Transition::Resolved { ends_at: 380 * S }));
    }

    #[test]
    fn below_bounds() {
        let bound = Bound {
            direction: Direction::Below,
            value: 1.0,
            resolve_value: 1.0,
            for_nanos: 60 * S,
            resolve_for_nanos: 0,
        };
        let changes = run(&bound, &[(0, 5.0), (60, 0.0), (120, 0.0), (180, 1.0)]);
        assert_eq!(changes.len(), 2);
        assert!(matches!(changes[0], (120, Transition::Fired { .. })));
        assert_eq!(changes[1].0, 180);
    }

    #[test]
    fn checks_decoded_state() {
        let firing = Tracker {
            firing_since: Some(10),
            clear_since: Some(20),
            ..Tracker::default()
        };
        assert!(firing.check(30).is_ok());
        assert!(firing.check(15).is_err());
        let both = Tracker {
            breach_since: Some(5),
            ..firing.clone()
        };
        assert!(both.check(30).is_err());
        let clear_only = Tracker {
            clear_since: Some(5),
            ..Tracker::default()
        };
        assert!(clear_only.check(30).is_err());
    }
}
