use super::*;
use crate::clock::NANOS_PER_SECOND;
use sluice_sdk::{AlertSeverity, MetricPoint};

/// 2026-11-23T10:00:00Z, in seconds.
const BASE_SECONDS: i64 = 1_795_428_000;

/// Unix nanoseconds `seconds` after the base time.
fn at(seconds: f64) -> i64 {
    BASE_SECONDS * NANOS_PER_SECOND + (seconds * 1e9).round() as i64
}

fn detector(config: &str) -> EwmaAnomaly {
    EwmaAnomaly::from_json_config(config).expect("valid config")
}

fn observe(plugin: &mut EwmaAnomaly, points: &[MetricPoint]) -> Vec<Alert> {
    let mut alerts = Vec::new();
    plugin.observe_metrics(&MetricBatch::from_points(points), &mut alerts);
    alerts
}

fn tick(plugin: &mut EwmaAnomaly, seconds: f64) -> Vec<Alert> {
    let mut alerts = Vec::new();
    plugin.tick(at(seconds), &mut alerts);
    alerts
}

fn label<'a>(alert: &'a Alert, key: &str) -> &'a str {
    alert
        .labels
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("alert has no `{key}` label: {alert:?}"))
}

/// Deterministic standard normal noise (xorshift and Box-Muller).
struct Noise(u64);

impl Noise {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

const LATENCY: &str = "http.server.active_requests";

/// A gauge point of `checkout` at `seconds`.
fn gauge(seconds: f64, value: f64) -> MetricPoint {
    MetricPoint::gauge(LATENCY, at(seconds), value)
        .with_attribute("http.route", "/cart")
        .with_resource_attribute("service.name", "checkout")
}

/// Feeds a gauge every 10 s for `seconds` (from 0), value `level(t)` plus noise of σ 5, in
/// batches of 6 points (a minute); returns the alerts with the time of their batch.
fn run(
    plugin: &mut EwmaAnomaly,
    range: std::ops::Range<u32>,
    level: impl Fn(f64) -> f64,
) -> Vec<Alert> {
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    let mut alerts = Vec::new();
    let points: Vec<MetricPoint> = (0..range.end)
        .map(|step| {
            let t = f64::from(step) * 10.0;
            gauge(t, level(t) + 5.0 * noise.normal())
        })
        .collect();
    for batch in points[range.start as usize..].chunks(6) {
        alerts.extend(observe(plugin, batch));
    }
    alerts
}

const CONFIG: &str = r#"{"metrics": ["http.server.active_requests"], "z_threshold": 4,
    "min_duration_seconds": 120, "resolve_after_seconds": 300, "warmup_points": 30}"#;

#[test]
fn a_level_shift_fires_once_and_resolves_after_it_ends() {
    let mut plugin = detector(CONFIG);
    // 100 ± 5 for 2 hours, 150 from 2:00 to 2:30, then 100 again.
    let alerts = run(&mut plugin, 0..1_800, |t| {
        if (7_200.0..9_000.0).contains(&t) {
            150.0
        } else {
            100.0
        }
    });
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    let fired = &alerts[0];
    assert_eq!(fired.name, "MetricAnomaly");
    assert_eq!(fired.severity, AlertSeverity::Warning);
    assert_eq!(fired.status, AlertStatus::Firing);
    // Every point of the shift is anomalous: 120 s after the first, it fires.
    assert_eq!(fired.starts_at, at(7_320.0));
    assert!(fired.fingerprint.is_empty());
    assert_eq!(label(fired, "service"), "checkout");
    assert_eq!(label(fired, "metric"), LATENCY);
    assert_eq!(
        label(fired, "series"),
        r#"http.server.active_requests{http.route="/cart"}"#
    );
    assert!(
        fired.summary.starts_with(
            r#"service checkout: http.server.active_requests{http.route="/cart"} = 1"#
        ) && fired.summary.contains("σ above its baseline 10")
            && fired.summary.ends_with(" for 2m"),
        "{}",
        fired.summary
    );
    // The baseline stayed frozen through the shift: the alert held until the level came back,
    // and resolved 300 s of normal points later.
    let resolved = &alerts[1];
    assert_eq!(resolved.status, AlertStatus::Resolved);
    assert_eq!(resolved.ends_at, Some(at(9_300.0)));
    assert_eq!(
        Alert {
            status: AlertStatus::Firing,
            ends_at: None,
            ..resolved.clone()
        },
        *fired
    );
}

#[test]
fn without_the_freeze_the_shift_becomes_its_own_baseline() {
    // The control of the test above: with anomalous points weighing fully, the baseline (and
    // its variance) follows the shift within the minimum duration, so it never fires.
    let mut plugin = detector(
        r#"{"metrics": ["http.server.active_requests"], "anomaly_weight": 1,
            "min_duration_seconds": 120, "resolve_after_seconds": 300}"#,
    );
    let alerts = run(&mut plugin, 0..1_800, |t| {
        if (7_200.0..9_000.0).contains(&t) {
            150.0
        } else {
            100.0
        }
    });
    assert!(alerts.is_empty(), "{alerts:?}");
}

#[test]
fn a_spike_shorter_than_min_duration_stays_quiet() {
    let mut plugin = detector(CONFIG);
    // Each "day" (an hour here) a 90 s burst to 300 that recovers by itself.
    let alerts = run(&mut plugin, 0..2_160, |t| {
        if (1_800.0..1_890.0).contains(&(t % 3_600.0)) {
            300.0
        } else {
            100.0
        }
    });
    assert!(alerts.is_empty(), "{alerts:?}");
}

#[test]
fn slow_drift_stays_quiet() {
    let mut plugin = detector(CONFIG);
    // From 100 to 400 over 10 hours: 0.08 a point, far below the noise.
    let alerts = run(&mut plugin, 0..3_600, |t| 100.0 + 300.0 * t / 36_000.0);
    assert!(alerts.is_empty(), "{alerts:?}");
}

#[test]
fn no_alert_during_warm_up() {
    let mut plugin = detector(CONFIG);
    // A shift from the 11th point on: the first 30 points are the baseline, so by the end of
    // the warm-up the "shift" is normal.
    let alerts = run(
        &mut plugin,
        0..200,
        |t| if t >= 100.0 { 150.0 } else { 100.0 },
    );
    assert!(alerts.is_empty(), "{alerts:?}");
}

#[test]
fn a_lasting_shift_becomes_the_new_baseline() {
    let mut plugin = detector(
        r#"{"metrics": ["http.server.active_requests"], "rebaseline_after_seconds": 1800,
            "min_duration_seconds": 120, "resolve_after_seconds": 300}"#,
    );
    // 100 for an hour, then 150 for good.
    let alerts = run(&mut plugin, 0..1_800, |t| {
        if t >= 3_600.0 { 150.0 } else { 100.0 }
    });
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert_eq!(alerts[0].starts_at, at(3_720.0));
    // 1800 s into the anomaly (at 5400) its points become the baseline; the next point is
    // the first normal one, and 300 s of normal points later the alert resolves.
    assert_eq!(alerts[1].ends_at, Some(at(5_410.0 + 300.0)));
}

#[test]
fn direction_up_ignores_drops() {
    let config = r#"{"metrics": ["http.server.active_requests"], "direction": "up"}"#;
    // A drop that stays: the baseline follows it down, quietly.
    let drop = |t: f64| if t >= 3_600.0 { 20.0 } else { 100.0 };
    assert!(run(&mut detector(config), 0..1_000, drop).is_empty());
    // The same as a rise fires (and resolves once it has become the baseline).
    let rise = |t: f64| if t >= 3_600.0 { 180.0 } else { 100.0 };
    let alerts = run(&mut detector(config), 0..1_000, rise);
    assert_eq!(alerts[0].starts_at, at(3_720.0), "{alerts:?}");
}

#[test]
fn prefixes_and_attribute_matchers_select_the_series() {
    let mut plugin = detector(
        r#"{"metric_prefixes": ["queue."], "attributes": {"queue": "orders"},
            "warmup_points": 2, "min_duration_seconds": 0, "min_relative_stddev": 0.1}"#,
    );
    let point = |name: &str, queue: &str, seconds: f64, value: f64| {
        MetricPoint::gauge(name, at(seconds), value).with_attribute("queue", queue)
    };
    let mut alerts = observe(
        &mut plugin,
        &[
            point("queue.depth", "orders", 0.0, 10.0),
            point("queue.depth", "orders", 10.0, 10.0),
            point("queue.depth", "audit", 10.0, 10.0),
            point("other.depth", "orders", 10.0, 10.0),
        ],
    );
    alerts.extend(observe(
        &mut plugin,
        &[
            point("queue.depth", "audit", 20.0, 1e6),
            point("other.depth", "orders", 20.0, 1e6),
            point("queue.depth", "orders", 20.0, 1e6),
        ],
    ));
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(
        label(&alerts[0], "series"),
        r#"queue.depth{queue="orders"}"#
    );
    assert_eq!(label(&alerts[0], "service"), "unknown");
    assert_eq!(plugin.series.len(), 1);
}

#[test]
fn cumulative_counters_are_watched_as_rates_across_resets() {
    let mut plugin = detector(
        r#"{"metrics": ["http.server.requests"], "warmup_points": 20, "min_duration_seconds": 60,
            "resolve_after_seconds": 60}"#,
    );
    let mut noise = Noise(7);
    let mut total = 0.0;
    let mut alerts = Vec::new();
    for step in 0..200 {
        let t = f64::from(step) * 10.0;
        // 10 requests a second, 40 from 1000 s to 1300 s; the process restarts at 500 s.
        let rate = if (1_000.0..1_300.0).contains(&t) {
            40.0
        } else {
            10.0
        };
        total += 10.0 * (rate + noise.normal());
        if step == 50 {
            total = 3.0;
        }
        let point = MetricPoint::sum("http.server.requests", at(t), total)
            .with_resource_attribute("service.name", "api");
        alerts.extend(observe(&mut plugin, &[point]));
    }
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    // The point at 1000 s is the first whose rate (over the 10 s before it) is 40 a second.
    assert_eq!(alerts[0].starts_at, at(1_060.0));
    assert!(
        alerts[0].summary.contains("σ above its baseline 9.9"),
        "{}",
        alerts[0].summary
    );
    assert_eq!(alerts[1].ends_at, Some(at(1_360.0)));
}

#[test]
fn cumulative_histograms_are_watched_by_the_mean_of_new_observations() {
    let mut plugin = detector(
        r#"{"metrics": ["rpc.duration"], "warmup_points": 10, "min_duration_seconds": 0}"#,
    );
    let (mut count, mut sum) = (0u64, 0.0);
    let mut alerts = Vec::new();
    for step in 0..40 {
        // 100 calls every 10 s, 50 ms each (± a little), 500 ms from step 30.
        let mean = if step >= 30 {
            0.5
        } else {
            0.05 + 0.001 * f64::from(step % 3)
        };
        count += 100;
        sum += 100.0 * mean;
        let point = MetricPoint::histogram("rpc.duration", at(f64::from(step) * 10.0), count, sum);
        alerts.extend(observe(&mut plugin, &[point]));
    }
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].starts_at, at(300.0));
}

#[test]
fn delta_temporality_reads_points_as_they_are() {
    let mut plugin = detector(
        r#"{"metrics": ["jobs"], "temporality": "delta", "warmup_points": 10,
            "min_duration_seconds": 0}"#,
    );
    let mut alerts = Vec::new();
    for step in 0..40 {
        let value = if step >= 30 {
            500.0
        } else {
            100.0 + f64::from(step % 4)
        };
        let point = MetricPoint::sum("jobs", at(f64::from(step) * 10.0), value);
        alerts.extend(observe(&mut plugin, &[point]));
    }
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].starts_at, at(300.0));
}

#[test]
fn late_points_are_ignored_and_silence_resolves_via_ticks() {
    let mut plugin = detector(
        r#"{"metrics": ["http.server.active_requests"], "warmup_points": 5,
            "min_duration_seconds": 0, "stale_seconds": 60}"#,
    );
    for step in 0..10 {
        observe(
            &mut plugin,
            &[gauge(f64::from(step) * 10.0, 100.0 + f64::from(step % 2))],
        );
    }
    // Older points change nothing, even wild ones.
    assert!(observe(&mut plugin, &[gauge(50.0, 1e9)]).is_empty());
    assert_eq!(observe(&mut plugin, &[gauge(100.0, 1e9)]).len(), 1);
    // The data stops. Ticks carry the clock: 60 s after the last point it resolves.
    assert!(tick(&mut plugin, 200.0).is_empty());
    assert!(tick(&mut plugin, 260.0).is_empty());
    let alerts = tick(&mut plugin, 261.0);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].ends_at, Some(at(160.0)));
    // The baseline is kept.
    let series = plugin.series.in_recency_order().next().unwrap().1;
    assert_eq!(series.baseline.n, 10);
}

#[test]
fn snapshot_and_restore_mid_anomaly_give_the_same_alerts() {
    let level = |t: f64| {
        if (7_200.0..9_000.0).contains(&t) {
            150.0
        } else {
            100.0
        }
    };
    let mut straight = detector(CONFIG);
    let expected = run(&mut straight, 0..1_800, level);
    assert_eq!(expected.len(), 2);
    // Split before the shift, inside the pending minimum duration, while firing, and while
    // the normal run before the resolution is under way.
    for split in [600u32, 726, 800, 906] {
        let mut before = detector(CONFIG);
        let mut alerts = run(&mut before, 0..split, level);
        let state = before.snapshot();
        assert!(state.starts_with(b"{\"version\":1,"));
        let mut after = detector(CONFIG);
        after.restore(&state).expect("restores");
        assert_eq!(after.snapshot(), state);
        alerts.extend(run(&mut after, split..1_800, level));
        assert_eq!(alerts, expected, "split at point {split}");
    }
}

#[test]
fn restore_rejects_garbage_and_keeps_the_state() {
    let mut plugin = detector(CONFIG);
    assert_eq!(
        run(&mut plugin, 0..800, |t| if t > 7_200.0 {
            150.0
        } else {
            100.0
        })
        .len(),
        1
    );
    let good = plugin.snapshot();
    let text = String::from_utf8(good.clone()).unwrap();
    let bad: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"garbage".to_vec(),
        b"{}".to_vec(),
        br#"{"version": 1}"#.to_vec(),
        text.replace("\"baseline\"", "\"base\"").into_bytes(),
        text.replace("\"var\":", "\"var\":-").into_bytes(),
        text.replace("\"latest\":", "\"latest\":-").into_bytes(),
        good[..good.len() / 2].to_vec(),
    ];
    for state in bad {
        assert!(
            plugin.restore(&state).is_err(),
            "accepted {:?}",
            String::from_utf8_lossy(&state)
        );
    }
    assert!(
        plugin
            .restore(br#"{"version": 2, "whatever": true}"#)
            .unwrap_err()
            .contains("version 2")
    );
    // Still firing: no second alert.
    assert!(observe(&mut plugin, &[gauge(8_000.0, 150.0)]).is_empty());
    assert!(plugin.restore(&good).is_ok());
}

#[test]
fn state_is_bounded_by_max_series() {
    let mut plugin = detector(
        r#"{"metrics": ["m"], "max_series": 3, "warmup_points": 2, "min_duration_seconds": 0}"#,
    );
    let point = |id: u32, seconds: f64, value: f64| {
        MetricPoint::gauge("m", at(seconds), value).with_attribute("id", i64::from(id))
    };
    // Series 0 fires, then nine others arrive.
    observe(&mut plugin, &[point(0, 0.0, 1.0), point(0, 1.0, 1.0)]);
    assert_eq!(observe(&mut plugin, &[point(0, 2.0, 1e6)]).len(), 1);
    let mut alerts = Vec::new();
    for id in 1..10 {
        alerts.extend(observe(&mut plugin, &[point(id, 2.0 + f64::from(id), 1.0)]));
        assert!(plugin.series.len() <= 3);
    }
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].status, AlertStatus::Resolved);
    assert_eq!(label(&alerts[0], "series"), r#"m{id="0"}"#);
    let kept: Vec<&str> = plugin
        .series
        .in_recency_order()
        .map(|(_, series)| series.series.as_str())
        .collect();
    assert_eq!(kept, vec![r#"m{id="7"}"#, r#"m{id="8"}"#, r#"m{id="9"}"#]);
    assert_eq!(
        sluice_sdk::host::recorded_counters()
            .iter()
            .find(|(name, _)| name == "series_evicted")
            .map(|(_, count)| *count),
        Some(7)
    );
    let mut smaller = detector(r#"{"metrics": ["m"], "max_series": 1}"#);
    smaller.restore(&plugin.snapshot()).unwrap();
    tick(&mut smaller, 20.0);
    assert_eq!(smaller.series.len(), 1);
}

#[test]
fn rejects_bad_config() {
    let error = |config: &str| match EwmaAnomaly::from_json_config(config) {
        Ok(_) => panic!("accepted {config}"),
        Err(error) => error,
    };
    for (config, expected) in [
        ("", "name at least one metric"),
        (r#"{"metrics": [""]}"#, "empty names"),
        (r#"{"metrics": ["m"], "alpha": 0}"#, "alpha 0 is outside"),
        (r#"{"metrics": ["m"], "alpha": 1.5}"#, "alpha 1.5"),
        (
            r#"{"metrics": ["m"], "alpha": 0.1, "half_life_points": 5}"#,
            "not both",
        ),
        (
            r#"{"metrics": ["m"], "half_life_points": 0.5}"#,
            "half_life_points 0.5",
        ),
        (r#"{"metrics": ["m"], "warmup_points": 1}"#, "warmup_points"),
        (r#"{"metrics": ["m"], "z_threshold": 0}"#, "z_threshold 0"),
        (r#"{"metrics": ["m"], "z_threshold": -3}"#, "z_threshold -3"),
        (
            r#"{"metrics": ["m"], "min_duration_seconds": 9999999}"#,
            "min_duration_seconds 9999999",
        ),
        (r#"{"metrics": ["m"], "stale_seconds": 0}"#, "stale_seconds"),
        (
            r#"{"metrics": ["m"], "rebaseline_after_seconds": 60}"#,
            "rebaseline_after_seconds 60",
        ),
        (r#"{"metrics": ["m"], "min_stddev": -1}"#, "min_stddev -1"),
        (
            r#"{"metrics": ["m"], "min_relative_stddev": 2}"#,
            "min_relative_stddev 2",
        ),
        (
            r#"{"metrics": ["m"], "anomaly_weight": 1.5}"#,
            "anomaly_weight 1.5",
        ),
        (r#"{"metrics": ["m"], "max_series": 0}"#, "max_series"),
        (
            r#"{"metrics": ["m"], "service_attribute": ""}"#,
            "service_attribute",
        ),
        (r#"{"metrics": ["m"], "alert_name": " "}"#, "alert_name"),
        (
            r#"{"metrics": ["m"], "severity": "info"}"#,
            "unknown variant `info`",
        ),
        (
            r#"{"metrics": ["m"], "direction": "sideways"}"#,
            "unknown variant `sideways`",
        ),
        (
            r#"{"metrics": ["m"], "temporality": "weekly"}"#,
            "unknown variant `weekly`",
        ),
        (
            r#"{"metrics": ["m"], "threshold": 4}"#,
            "unknown field `threshold`",
        ),
        (r#"{"metrics": "m"}"#, "invalid type"),
        ("not json", "invalid plugin config"),
    ] {
        let message = error(config);
        assert!(message.contains(expected), "{config}: {message}");
    }
    let message = error(r#"{"metrics": ["m"], "z_threshold": 0, "max_series": 0}"#);
    assert!(message.contains("z_threshold") && message.contains("max_series"));
}

#[test]
fn defaults() {
    let plugin = detector(r#"{"metrics": ["m"]}"#);
    let settings = &plugin.settings;
    assert!((settings.alpha - baseline::alpha_of_half_life(30.0)).abs() < 1e-15);
    assert_eq!(settings.warmup_points, 30);
    assert_eq!(settings.z_threshold, 4.0);
    assert_eq!(settings.direction, Direction::Both);
    assert_eq!(settings.min_duration, 120 * NANOS_PER_SECOND);
    assert_eq!(settings.resolve_after, 300 * NANOS_PER_SECOND);
    assert_eq!(settings.floors.min_stddev, 0.0);
    assert_eq!(settings.floors.min_relative_stddev, 0.01);
    assert_eq!(settings.anomaly_weight, 0.0);
    assert_eq!(settings.rebaseline_after, 3_600 * NANOS_PER_SECOND);
    assert_eq!(settings.stale, 900 * NANOS_PER_SECOND);
    assert_eq!(settings.temporality, Temporality::Cumulative);
    assert_eq!(settings.max_series, 3_000);
    assert_eq!(settings.service_attribute, "service.name");
    assert_eq!(settings.alert_name, "MetricAnomaly");
    assert_eq!(settings.severity, AlertLevel::Warning);
    let plugin = detector(r#"{"metrics": ["m"], "alpha": 0.2}"#);
    assert_eq!(plugin.settings.alpha, 0.2);
}

/// Unix nanoseconds of an RFC 3339 UTC time such as `2026-11-23T10:00:00.250Z`.
fn parse_utc(text: &str) -> i64 {
    let text = text.strip_suffix('Z').expect("UTC time");
    let (date, time) = text.split_once('T').expect("date and time");
    let date: Vec<i64> = date.split('-').map(|p| p.parse().unwrap()).collect();
    let (hms, fraction) = time.split_once('.').unwrap_or((time, "0"));
    let hms: Vec<i64> = hms.split(':').map(|p| p.parse().unwrap()).collect();
    let nanos: i64 = format!("{fraction:0<9}")[..9].parse().unwrap();
    // Days from civil (Howard Hinnant's algorithm).
    let (year, month, day) = (date[0], date[1], date[2]);
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    (days * 86_400 + hms[0] * 3_600 + hms[1] * 60 + hms[2]) * NANOS_PER_SECOND + nanos
}

/// `samples/latency.jsonl` as gauge points.
fn sample_points() -> Vec<MetricPoint> {
    include_str!("../samples/latency.jsonl")
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let json: serde_json::Value = serde_json::from_str(line).expect("sample line is JSON");
            assert_eq!(json["kind"], "gauge");
            let mut point = MetricPoint::gauge(
                json["name"].as_str().expect("name"),
                parse_utc(json["timestamp"].as_str().expect("timestamp")),
                json["value"].as_f64().expect("value"),
            );
            for (key, value) in json["attributes"].as_object().into_iter().flatten() {
                point = point.with_attribute(key, value.as_str().unwrap_or(""));
            }
            for (key, value) in json["resource"].as_object().into_iter().flatten() {
                point = point.with_resource_attribute(key, value.as_str().unwrap_or(""));
            }
            point
        })
        .collect()
}

#[test]
fn sample_fires_once_for_the_level_shift_only() {
    let points = sample_points();
    assert_eq!(points.len(), 720);
    let mut plugin = detector(r#"{"metric_prefixes": ["http.server.request.duration"]}"#);
    let mut alerts = Vec::new();
    for batch in points.chunks(16) {
        alerts.extend(observe(&mut plugin, batch));
    }
    // checkout's p95 doubles from 11:30 to 12:00 (a bad deploy): fires at 11:32, resolves at
    // 12:05. frontend's 90 s spike at 11:00 and its slow drift raise nothing.
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert_eq!(label(&alerts[0], "service"), "checkout");
    assert_eq!(alerts[0].starts_at, parse_utc("2026-11-23T11:32:00Z"));
    assert_eq!(alerts[1].ends_at, Some(parse_utc("2026-11-23T12:05:00Z")));
}

#[test]
fn a_full_state_with_the_longest_labels_fits_the_host_bound() {
    // The host refuses to checkpoint a state over 8 MiB (limits.max_state_bytes): the default
    // max_series must keep even the longest labels (and a firing alert each) under it.
    let long = "x".repeat(2_000);
    let name = format!("m{long}");
    let mut plugin =
        detector(r#"{"metric_prefixes": ["m"], "warmup_points": 2, "min_duration_seconds": 0}"#);
    for index in 0..plugin.settings.max_series {
        let point = |seconds: f64, value: f64| {
            MetricPoint::histogram(&name, at(seconds), 10 * (1 + seconds as u64), value)
                .with_attribute("a", format!("{index}{long}").as_str())
                .with_resource_attribute("service.name", format!("{index}{long}").as_str())
        };
        let points = [
            point(0.0, 1.0),
            point(1.0, 2.0),
            point(2.0, 3.0),
            point(3.0, 1e9),
        ];
        observe(&mut plugin, &points);
    }
    assert_eq!(plugin.series.len(), 3_000);
    let size = plugin.snapshot().len();
    assert!(size < 8 << 20, "{size} bytes");
}
