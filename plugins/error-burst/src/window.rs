//! A sliding window of record counts, cut into time buckets.

use std::collections::VecDeque;

use serde::ser::SerializeSeq;
use serde::{Deserialize, Serialize, Serializer};

use crate::config::NANOS_PER_SECOND;

/// Most buckets one window keeps. Windows up to this many seconds use one-second buckets; longer
/// windows use wider buckets, so one service never holds more than this many.
pub const MAX_BUCKETS: u32 = 60;

/// How a window is cut into buckets. Bucket `slot` covers the times
/// `[slot * width, (slot + 1) * width)`; at clock time `t` the window holds the `count` slots
/// ending with the slot of `t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Width of a bucket in seconds.
    pub bucket_seconds: u32,
    /// Buckets in the window.
    pub count: u32,
}

impl Geometry {
    /// The geometry of a window of `window_seconds` (at least 1): one-second buckets up to
    /// [`MAX_BUCKETS`] seconds, else `ceil(window / MAX_BUCKETS)`-second buckets, so the window
    /// is rounded up to a whole number of buckets.
    pub fn for_window(window_seconds: u32) -> Self {
        let window_seconds = window_seconds.max(1);
        Geometry::with_bucket_seconds(window_seconds, window_seconds.div_ceil(MAX_BUCKETS))
    }

    /// A window of `window_seconds` cut into buckets of `bucket_seconds`.
    pub fn with_bucket_seconds(window_seconds: u32, bucket_seconds: u32) -> Self {
        let bucket_seconds = bucket_seconds.max(1);
        Geometry {
            bucket_seconds,
            count: window_seconds.max(1).div_ceil(bucket_seconds),
        }
    }

    fn bucket_nanos(&self) -> i64 {
        i64::from(self.bucket_seconds) * NANOS_PER_SECOND
    }

    /// The slot of the bucket holding `time` (Unix nanoseconds).
    pub fn slot(&self, time: i64) -> i64 {
        time.div_euclid(self.bucket_nanos())
    }

    /// The oldest slot still in the window when the clock reads `time`.
    pub fn first_live_slot(&self, time: i64) -> i64 {
        self.slot(time) - i64::from(self.count) + 1
    }

    /// The instant at which `slot` leaves the window.
    pub fn expiry(&self, slot: i64) -> i64 {
        (slot + i64::from(self.count)).saturating_mul(self.bucket_nanos())
    }
}

/// Counts of one bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Bucket {
    slot: i64,
    errors: u32,
    total: u32,
}

/// The buckets of one service that hold at least one record, oldest first, with running sums.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Vec<i64>")]
pub struct Window {
    buckets: VecDeque<Bucket>,
    errors: u64,
    total: u64,
}

impl Window {
    /// Errors in the window.
    pub fn errors(&self) -> u64 {
        self.errors
    }

    /// Records counted in the window (errors included).
    pub fn total(&self) -> u64 {
        self.total
    }

    /// True when the window holds nothing.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// Counts one record in bucket `slot`.
    pub fn add(&mut self, slot: i64, is_error: bool) {
        let index = match self.buckets.back() {
            // In-order records land in the newest bucket or a new one after it.
            Some(last) if last.slot == slot => self.buckets.len() - 1,
            Some(last) if last.slot > slot => {
                match self
                    .buckets
                    .binary_search_by_key(&slot, |bucket| bucket.slot)
                {
                    Ok(index) => index,
                    Err(index) => {
                        self.buckets.insert(index, Bucket::empty(slot));
                        index
                    }
                }
            }
            _ => {
                self.buckets.push_back(Bucket::empty(slot));
                self.buckets.len() - 1
            }
        };
        let bucket = &mut self.buckets[index];
        // A bucket saturates rather than wrapping; the sums only count what the buckets hold.
        if bucket.total == u32::MAX {
            return;
        }
        bucket.total += 1;
        self.total += 1;
        if is_error {
            bucket.errors += 1;
            self.errors += 1;
        }
    }

    /// The slot of the oldest bucket.
    pub fn oldest_slot(&self) -> Option<i64> {
        self.buckets.front().map(|bucket| bucket.slot)
    }

    /// The slot of the newest bucket.
    pub fn newest_slot(&self) -> Option<i64> {
        self.buckets.back().map(|bucket| bucket.slot)
    }

    /// Drops the oldest bucket.
    pub fn pop_oldest(&mut self) {
        if let Some(bucket) = self.buckets.pop_front() {
            self.errors -= u64::from(bucket.errors);
            self.total -= u64::from(bucket.total);
        }
    }

    /// Drops every bucket older than `first_live_slot`.
    pub fn drop_before(&mut self, first_live_slot: i64) {
        while self
            .oldest_slot()
            .is_some_and(|slot| slot < first_live_slot)
        {
            self.pop_oldest();
        }
    }

    /// Moves the counts from buckets of `from_seconds` to buckets of `to_seconds`, each old
    /// bucket going to the new bucket holding its start.
    pub fn rebucket(&mut self, from_seconds: u32, to_seconds: u32) {
        if from_seconds == to_seconds {
            return;
        }
        let (from, to) = (i64::from(from_seconds), i64::from(to_seconds));
        let mut buckets: VecDeque<Bucket> = VecDeque::with_capacity(self.buckets.len());
        for bucket in self.buckets.drain(..) {
            let slot = bucket.slot.saturating_mul(from).div_euclid(to);
            match buckets.back_mut() {
                Some(last) if last.slot == slot => {
                    last.errors = last.errors.saturating_add(bucket.errors);
                    last.total = last.total.saturating_add(bucket.total);
                }
                _ => buckets.push_back(Bucket { slot, ..bucket }),
            }
        }
        *self = Window::from_buckets(buckets);
    }

    fn from_buckets(buckets: VecDeque<Bucket>) -> Self {
        Window {
            errors: buckets.iter().map(|bucket| u64::from(bucket.errors)).sum(),
            total: buckets.iter().map(|bucket| u64::from(bucket.total)).sum(),
            buckets,
        }
    }
}

impl Bucket {
    fn empty(slot: i64) -> Self {
        Bucket {
            slot,
            errors: 0,
            total: 0,
        }
    }
}

/// Encoded compactly as one flat list, oldest bucket first: the first bucket as
/// `slot, errors, total`, each following one as `slots after the previous, errors, total`.
/// A full window of 60 one-second buckets costs about 360 bytes.
impl Serialize for Window {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.buckets.len() * 3))?;
        let mut previous = None;
        for bucket in &self.buckets {
            let slot = match previous {
                None => bucket.slot,
                Some(previous) => bucket.slot - previous,
            };
            previous = Some(bucket.slot);
            seq.serialize_element(&slot)?;
            seq.serialize_element(&i64::from(bucket.errors))?;
            seq.serialize_element(&i64::from(bucket.total))?;
        }
        seq.end()
    }
}

impl TryFrom<Vec<i64>> for Window {
    type Error = String;

    fn try_from(flat: Vec<i64>) -> Result<Self, String> {
        if !flat.len().is_multiple_of(3) {
            return Err(format!(
                "a window has 3 numbers per bucket, not {}",
                flat.len()
            ));
        }
        let mut buckets = VecDeque::with_capacity(flat.len() / 3);
        let mut previous: Option<i64> = None;
        for entry in flat.chunks_exact(3) {
            let (step, errors, total) = (entry[0], entry[1], entry[2]);
            let slot = match previous {
                None => step,
                Some(_) if step <= 0 => return Err(format!("bucket step {step} is not positive")),
                Some(previous) => previous
                    .checked_add(step)
                    .ok_or_else(|| format!("bucket step {step} is out of range"))?,
            };
            let counts = (u32::try_from(errors), u32::try_from(total));
            let (Ok(errors), Ok(total)) = counts else {
                return Err(format!("bucket counts {errors}/{total} are out of range"));
            };
            if total == 0 || errors > total {
                return Err(format!("bucket has {errors} errors of {total} records"));
            }
            previous = Some(slot);
            buckets.push_back(Bucket {
                slot,
                errors,
                total,
            });
        }
        Ok(Window::from_buckets(buckets))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_uses_one_second_buckets_for_short_windows() {
        assert_eq!(
            Geometry::for_window(60),
            Geometry {
                bucket_seconds: 1,
                count: 60
            }
        );
        assert_eq!(Geometry::for_window(7).count, 7);
        // Longer windows are rounded up to whole buckets, never more than MAX_BUCKETS of them.
        let hour = Geometry::for_window(3600);
        assert_eq!((hour.bucket_seconds, hour.count), (60, 60));
        let odd = Geometry::for_window(301);
        assert_eq!((odd.bucket_seconds, odd.count), (6, 51));
        assert!(Geometry::for_window(86_400).count <= MAX_BUCKETS);
    }

    #[test]
    fn slots_and_expiry() {
        let geometry = Geometry::for_window(60);
        let t = 1_000 * NANOS_PER_SECOND + 500_000_000;
        assert_eq!(geometry.slot(t), 1_000);
        assert_eq!(geometry.first_live_slot(t), 941);
        assert_eq!(geometry.expiry(1_000), 1_060 * NANOS_PER_SECOND);
        assert_eq!(geometry.slot(-1), -1);
    }

    #[test]
    fn add_keeps_buckets_sorted_and_sums_right() {
        let mut window = Window::default();
        for (slot, error) in [
            (5, true),
            (5, false),
            (7, true),
            (6, true),
            (3, false),
            (7, true),
        ] {
            window.add(slot, error);
        }
        let slots: Vec<i64> = window.buckets.iter().map(|b| b.slot).collect();
        assert_eq!(slots, vec![3, 5, 6, 7]);
        assert_eq!((window.errors(), window.total()), (4, 6));
        window.pop_oldest();
        window.drop_before(6);
        assert_eq!((window.errors(), window.total()), (3, 3));
    }

    #[test]
    fn encodes_and_decodes() {
        let mut window = Window::default();
        window.add(10, true);
        window.add(12, false);
        window.add(12, true);
        window.add(13, true);
        let json = serde_json::to_string(&window).unwrap();
        assert_eq!(json, "[10,1,1,2,1,2,1,1,1]");
        assert_eq!(serde_json::from_str::<Window>(&json).unwrap(), window);
        assert_eq!(
            serde_json::from_str::<Window>("[]").unwrap(),
            Window::default()
        );
        for bad in [
            "[10,1,1,0,1,1]",
            "[10,1,1,-2,1,1]",
            "[10,2,1]",
            "[10,0,0]",
            "[10,-1,1]",
            "[10,1,4294967296]",
            "[10,1]",
            "[9223372036854775807,1,1,1,1,1]",
            "[[10,1,1]]",
        ] {
            assert!(serde_json::from_str::<Window>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rebucket_merges_into_wider_buckets() {
        let mut window = Window::default();
        for slot in [0, 1, 2, 3, 7] {
            window.add(slot, true);
        }
        window.rebucket(1, 3);
        let buckets: Vec<(i64, u32)> = window.buckets.iter().map(|b| (b.slot, b.errors)).collect();
        assert_eq!(buckets, vec![(0, 3), (1, 1), (2, 1)]);
        assert_eq!(window.errors(), 5);
    }
}
