//! The detector's event clock: windows run on the time the data carries, so a replayed file
//! gives the same alerts at any replay speed. Ticks (wall clock) move the clock only while the
//! stream is quiet, so windows still close and alerts still resolve when data stops. Shared by
//! the shipped detectors; use it in yours to follow the same convention (`docs/detectors.md`).

use serde::{Deserialize, Serialize};

/// Nanoseconds in a second.
pub const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// An event more than this ahead of the latest tick (wall clock) is refused, so one bad clock
/// cannot push every window into the future.
pub const MAX_FUTURE_SKEW: i64 = 300 * NANOS_PER_SECOND;

/// The event clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventClock {
    /// The newest event time seen, moved on by quiet ticks (Unix ns); 0 before any event.
    pub now: i64,
    /// Wall-clock time of the latest tick, if any came.
    pub last_tick: Option<i64>,
    /// Whether an event arrived since the latest tick.
    pub event_since_tick: bool,
}

impl EventClock {
    /// Whether an event at `time` is plausible: positive and not far ahead of the wall clock.
    pub fn accepts(&self, time: i64) -> bool {
        time > 0
            && self
                .last_tick
                .is_none_or(|tick| time <= tick.saturating_add(MAX_FUTURE_SKEW))
    }

    /// Notes an event at `time` (accepted by [`accepts`](Self::accepts)).
    pub fn observe(&mut self, time: i64) {
        self.event_since_tick = true;
        self.now = self.now.max(time);
    }

    /// A wall-clock tick at `now`: if no event arrived since the previous tick, the event clock
    /// moves on by the wall-clock time elapsed. Returns whether it moved.
    pub fn tick(&mut self, now: i64) -> bool {
        let moved = match self.last_tick {
            Some(previous) if !self.event_since_tick && now > previous && self.now > 0 => {
                self.now = self.now.saturating_add(now - previous);
                true
            }
            _ => false,
        };
        self.last_tick = Some(self.last_tick.map_or(now, |previous| previous.max(now)));
        self.event_since_tick = false;
        moved
    }

    /// Checks a clock decoded from a snapshot.
    pub fn check(&self) -> Result<(), String> {
        if self.now < 0 || self.last_tick.is_some_and(|tick| tick < 0) {
            return Err("the clock is negative".to_owned());
        }
        Ok(())
    }
}

/// A duration in seconds as a label: `1h`, `5m`, `90s`, `1h30m`.
pub fn duration_label(seconds: u64) -> String {
    if seconds == 0 {
        return "0s".to_owned();
    }
    let mut text = String::new();
    let (hours, minutes, rest) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    if hours > 0 {
        text.push_str(&format!("{hours}h"));
    }
    if minutes > 0 {
        text.push_str(&format!("{minutes}m"));
    }
    if rest > 0 {
        text.push_str(&format!("{rest}s"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_move_the_clock_only_while_quiet() {
        let mut clock = EventClock::default();
        // Before any event, ticks do not invent a time.
        assert!(!clock.tick(100));
        assert!(!clock.tick(200));
        assert_eq!(clock.now, 0);
        clock.observe(1_000);
        assert!(!clock.tick(300)); // an event came since the last tick
        assert!(clock.tick(350)); // quiet: +50
        assert_eq!(clock.now, 1_050);
        clock.observe(1_020); // older than the clock: the clock stays
        assert_eq!(clock.now, 1_050);
        assert!(!clock.tick(400));
        assert!(!clock.tick(390)); // the wall clock going back moves nothing
        assert!(clock.tick(450)); // elapsed since the latest tick seen (400)
        assert_eq!(clock.now, 1_100);
    }

    #[test]
    fn far_future_events_are_refused_once_the_wall_clock_is_known() {
        let mut clock = EventClock::default();
        assert!(clock.accepts(i64::MAX / 2));
        assert!(!clock.accepts(0));
        clock.tick(10 * NANOS_PER_SECOND);
        assert!(clock.accepts(10 * NANOS_PER_SECOND + MAX_FUTURE_SKEW));
        assert!(!clock.accepts(11 * NANOS_PER_SECOND + MAX_FUTURE_SKEW));
    }

    #[test]
    fn labels() {
        assert_eq!(duration_label(3600), "1h");
        assert_eq!(duration_label(300), "5m");
        assert_eq!(duration_label(21_600), "6h");
        assert_eq!(duration_label(1800), "30m");
        assert_eq!(duration_label(90), "1m30s");
        assert_eq!(duration_label(45), "45s");
        assert_eq!(duration_label(0), "0s");
    }
}
