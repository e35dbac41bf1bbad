use super::*;
use crate::clock::NANOS_PER_SECOND;
use sluice_sdk::{AlertSeverity, LogRecord, MetricPoint};

/// 2026-11-23T10:00:00Z, in seconds.
const BASE_SECONDS: i64 = 1_795_428_000;

/// Unix nanoseconds `seconds` after the base time.
fn at(seconds: f64) -> i64 {
    BASE_SECONDS * NANOS_PER_SECOND + (seconds * 1e9).round() as i64
}

fn detector(config: &str) -> Threshold {
    Threshold::from_json_config(config).expect("valid config")
}

/// A gauge point of `service` on host `db-1` with `attributes`.
fn gauge(
    name: &str,
    seconds: f64,
    value: f64,
    attributes: &[(&str, &str)],
    service: &str,
) -> MetricPoint {
    let mut point = MetricPoint::gauge(name, at(seconds), value)
        .with_resource_attribute("service.name", service)
        .with_resource_attribute("host.name", "db-1");
    for (key, value) in attributes {
        point = point.with_attribute(key, *value);
    }
    point
}

fn observe_points(plugin: &mut Threshold, points: &[MetricPoint]) -> Vec<Alert> {
    let mut alerts = Vec::new();
    plugin.observe_metrics(&MetricBatch::from_points(points), &mut alerts);
    alerts
}

/// One gauge point, in a batch of its own.
fn point(
    plugin: &mut Threshold,
    name: &str,
    seconds: f64,
    value: f64,
    attributes: &[(&str, &str)],
    service: &str,
) -> Vec<Alert> {
    observe_points(plugin, &[gauge(name, seconds, value, attributes, service)])
}

/// The disk-usage point of `mountpoint` on service `db`.
fn disk(plugin: &mut Threshold, seconds: f64, value: f64, mountpoint: &str) -> Vec<Alert> {
    point(
        plugin,
        "system.filesystem.utilization",
        seconds,
        value,
        &[("mountpoint", mountpoint), ("device", "sda1")],
        "db",
    )
}

fn record(severity: u8, body: &str, service: &str, seconds: f64) -> LogRecord {
    LogRecord {
        timestamp: at(seconds),
        ..LogRecord::new(severity, body).with_resource_attribute("service.name", service)
    }
}

fn observe(plugin: &mut Threshold, records: &[LogRecord]) -> Vec<Alert> {
    let mut alerts = Vec::new();
    plugin.observe(&LogBatch::from_records(records), &mut alerts);
    alerts
}

fn tick(plugin: &mut Threshold, seconds: f64) -> Vec<Alert> {
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

const DISK: &str = r#"{"rules": [{"name": "disk-full", "metric": "system.filesystem.utilization",
    "above": 0.9, "for_seconds": 300, "severity": "critical"}]}"#;

/// Disk usage of `/data` every 60 s from minute 0: filling from 0.80 by 0.01 a minute, so it
/// passes 0.9 between minutes 10 and 11, and is freed at minute `freed` (back to 0.5).
fn filling_disk(plugin: &mut Threshold, minutes: std::ops::Range<u32>, freed: u32) -> Vec<Alert> {
    let mut alerts = Vec::new();
    for minute in minutes {
        let value = if minute >= freed {
            0.5
        } else {
            0.80 + 0.01 * f64::from(minute)
        };
        alerts.extend(disk(plugin, f64::from(minute) * 60.0, value, "/data"));
        // The root disk stays at 40 %.
        alerts.extend(disk(plugin, f64::from(minute) * 60.0 + 1.0, 0.4, "/"));
    }
    alerts
}

#[test]
fn disk_filling_fires_once_after_five_minutes_and_resolves_when_freed() {
    let mut plugin = detector(DISK);
    let alerts = filling_disk(&mut plugin, 0..30, 25);
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    let fired = &alerts[0];
    assert_eq!(fired.name, "Threshold");
    assert_eq!(fired.severity, AlertSeverity::Critical);
    assert_eq!(fired.status, AlertStatus::Firing);
    // 0.91 at minute 11 is the first breach; it has lasted 5 minutes at minute 16.
    assert_eq!(fired.starts_at, at(16.0 * 60.0));
    assert!(fired.fingerprint.is_empty());
    assert_eq!(label(fired, "service"), "db");
    assert_eq!(label(fired, "rule"), "disk-full");
    assert_eq!(label(fired, "metric"), "system.filesystem.utilization");
    assert_eq!(
        label(fired, "series"),
        r#"system.filesystem.utilization{device="sda1",mountpoint="/data"}"#
    );
    assert_eq!(
        fired.summary,
        r#"service db: system.filesystem.utilization{device="sda1",mountpoint="/data"} = 0.96, above 0.9 for 5m"#
    );
    let resolved = &alerts[1];
    assert_eq!(resolved.status, AlertStatus::Resolved);
    assert_eq!(resolved.ends_at, Some(at(25.0 * 60.0)));
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
fn a_daily_burst_that_recovers_inside_for_stays_quiet() {
    let mut plugin = detector(DISK);
    let mut alerts = Vec::new();
    // A batch job fills the disk to 95 % for 4 minutes each day, then cleans up.
    for day in 0..3 {
        for minute in 0..60 {
            let value = if (20..24).contains(&minute) {
                0.95
            } else {
                0.7
            };
            let seconds = f64::from(day * 86_400 + minute * 60);
            alerts.extend(disk(&mut plugin, seconds, value, "/data"));
        }
    }
    assert!(alerts.is_empty(), "{alerts:?}");
}

#[test]
fn resolve_for_and_resolve_value_hold_the_alert() {
    let mut plugin = detector(
        r#"{"rules": [{"metric": "queue.depth", "above": 100, "resolve_value": 80,
            "resolve_for_seconds": 120}]}"#,
    );
    let mut alerts = Vec::new();
    for (seconds, value) in [
        (0.0, 150.0),
        (60.0, 90.0),  // inside the bound, but not below 80
        (120.0, 50.0), // cleared from here
        (180.0, 50.0),
        (240.0, 50.0), // 120 s cleared: resolves
    ] {
        alerts.extend(point(&mut plugin, "queue.depth", seconds, value, &[], "q"));
    }
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert_eq!(alerts[0].starts_at, at(0.0));
    assert_eq!(label(&alerts[0], "rule"), "queue.depth");
    assert_eq!(label(&alerts[0], "series"), "queue.depth");
    assert_eq!(alerts[0].summary, "service q: queue.depth = 150, above 100");
    assert_eq!(alerts[1].ends_at, Some(at(240.0)));
}

#[test]
fn matchers_select_the_series() {
    let mut plugin = detector(
        r#"{"rules": [{"name": "root", "metric": "system.filesystem.utilization",
            "attributes": {"mountpoint": "/"}, "resource": {"host.name": "db-1"}, "above": 0.9},
           {"name": "elsewhere", "metric": "system.filesystem.utilization",
            "resource": {"host.name": "db-2"}, "above": 0.9}]}"#,
    );
    assert!(disk(&mut plugin, 0.0, 0.99, "/data").is_empty());
    let alerts = disk(&mut plugin, 1.0, 0.99, "/");
    assert_eq!(alerts.len(), 1);
    assert_eq!(label(&alerts[0], "rule"), "root");
    // Other metrics are not watched at all.
    assert!(point(&mut plugin, "other", 2.0, 5.0, &[], "db").is_empty());
    assert_eq!(plugin.series.len(), 1);
}

#[test]
fn out_of_order_points_and_bad_values_are_ignored() {
    let mut plugin = detector(DISK);
    disk(&mut plugin, 60.0, 0.95, "/data");
    // An older point, a duplicate and a NaN change nothing.
    disk(&mut plugin, 30.0, 0.2, "/data");
    disk(&mut plugin, 60.0, 0.2, "/data");
    disk(&mut plugin, 90.0, f64::NAN, "/data");
    let alerts: Vec<Alert> = (2..8)
        .flat_map(|minute| disk(&mut plugin, f64::from(minute) * 60.0, 0.95, "/data"))
        .collect();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].starts_at, at(360.0));
}

#[test]
fn a_series_that_stops_reporting_resolves_when_stale() {
    let mut plugin =
        detector(r#"{"rules": [{"metric": "temp", "above": 80, "stale_seconds": 120}]}"#);
    assert_eq!(point(&mut plugin, "temp", 0.0, 90.0, &[], "s").len(), 1);
    assert_eq!(point(&mut plugin, "temp", 10.0, 95.0, &[], "s").len(), 0);
    // Data stops; ticks move the event clock while the stream is quiet (the first tick only
    // sets the wall-clock reference): at the tick of 140 the clock reads 130, the deadline.
    assert!(tick(&mut plugin, 20.0).is_empty());
    assert!(tick(&mut plugin, 140.0).is_empty());
    let alerts = tick(&mut plugin, 141.0);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].status, AlertStatus::Resolved);
    assert_eq!(alerts[0].ends_at, Some(at(130.0)));
    assert_eq!(plugin.series.len(), 0);
}

const OOM: &str = r#"{"rules": [{"name": "oom", "alert_name": "OutOfMemory",
    "logs": {"min_severity": "error", "body_regex": "(?i)out of memory"},
    "window_seconds": 60, "above": 5, "for_seconds": 120}]}"#;

/// `count` matching records of `service` spread over the minute starting at `minute`.
fn ooms(service: &str, minute: u32, count: u32) -> Vec<LogRecord> {
    (0..count)
        .map(|i| {
            let seconds = f64::from(minute) * 60.0 + 60.0 * f64::from(i) / f64::from(count);
            record(
                17,
                "java.lang.OutOfMemoryError: Out of memory",
                service,
                seconds,
            )
        })
        .collect()
}

#[test]
fn log_count_rule_fires_after_three_windows_over_and_resolves_via_ticks() {
    let mut plugin = detector(OOM);
    let mut alerts = Vec::new();
    for minute in 0..10 {
        let mut batch = if (2..7).contains(&minute) {
            ooms("api", minute, 8)
        } else {
            ooms("api", minute, 1)
        };
        // Records that do not match: wrong severity, wrong body, another service under it.
        batch.push(record(9, "out of memory", "api", f64::from(minute) * 60.0));
        batch.push(record(
            17,
            "disk full",
            "api",
            f64::from(minute) * 60.0 + 1.0,
        ));
        batch.extend(ooms("web", minute, 2));
        alerts.extend(observe(&mut plugin, &batch));
    }
    // Windows 2..7 hold 8 each: the window ending at 3:00 starts the breach, the one ending at
    // 5:00 has lasted 120 s; counted 10 s (the lateness) after it ends.
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert_eq!(alerts[0].name, "OutOfMemory");
    assert_eq!(alerts[0].severity, AlertSeverity::Warning);
    assert_eq!(alerts[0].starts_at, at(300.0));
    assert_eq!(label(&alerts[0], "service"), "api");
    assert_eq!(label(&alerts[0], "rule"), "oom");
    assert_eq!(alerts[0].labels.len(), 2);
    assert_eq!(
        alerts[0].summary,
        "service api: 8 records matching rule oom in 1m, above 5 for 2m"
    );
    // Window 7 (ending 8:00) is back to 1.
    assert_eq!(alerts[1].status, AlertStatus::Resolved);
    assert_eq!(alerts[1].ends_at, Some(at(480.0)));

    // A second incident, then silence: ticks close the windows and the alert resolves.
    let mut alerts = Vec::new();
    for minute in 20..24 {
        alerts.extend(observe(&mut plugin, &ooms("api", minute, 9)));
    }
    assert_eq!(alerts.len(), 1);
    for second in (24 * 60..27 * 60).step_by(5) {
        alerts.extend(tick(&mut plugin, f64::from(second)));
    }
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert_eq!(alerts[1].ends_at, Some(at(25.0 * 60.0)));
}

#[test]
fn log_burst_shorter_than_for_stays_quiet() {
    let mut plugin = detector(OOM);
    let mut alerts = Vec::new();
    // A nightly burst of two minutes, every "day" of an hour.
    for hour in 0..5 {
        for minute in 0..60 {
            let count = if (30..32).contains(&minute) { 50 } else { 1 };
            alerts.extend(observe(
                &mut plugin,
                &ooms("api", hour * 60 + minute, count),
            ));
        }
    }
    assert!(alerts.is_empty(), "{alerts:?}");
}

#[test]
fn below_rule_on_logs_catches_silence() {
    let mut plugin = detector(
        r#"{"rules": [{"name": "heartbeat", "logs": {"body_contains": "heartbeat"},
            "below": 1, "window_seconds": 60, "for_seconds": 120, "severity": "error"}],
            "allowed_lateness_seconds": 0}"#,
    );
    let beat = |seconds: f64| record(9, "heartbeat ok", "worker", seconds);
    let mut alerts = observe(&mut plugin, &[beat(0.0), beat(30.0), beat(61.0)]);
    // The worker goes silent after 1:01; ticks carry the clock.
    for second in (62..400).step_by(2) {
        alerts.extend(tick(&mut plugin, f64::from(second)));
    }
    // The first empty window ends at 3:00: 120 s later, at 5:00, it fires.
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].starts_at, at(300.0));
    assert_eq!(alerts[0].severity, AlertSeverity::Error);
    // The heartbeat returns: the window holding it ends at 8:00 with a count of 1.
    let mut alerts = observe(&mut plugin, &[beat(430.0)]);
    alerts.extend(tick(&mut plugin, 500.0)); // a record came since the last tick: no move
    assert!(alerts.is_empty());
    alerts.extend(tick(&mut plugin, 560.0)); // quiet: the clock moves to 490
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].ends_at, Some(at(480.0)));
}

#[test]
fn late_records_within_the_lateness_count_and_older_ones_do_not() {
    let mut plugin = detector(
        r#"{"rules": [{"logs": {}, "above": 2, "window_seconds": 60}],
            "allowed_lateness_seconds": 10}"#,
    );
    // Window 0 is counted at 1:10; records of it arriving before then still count.
    let mut alerts = observe(
        &mut plugin,
        &[record(9, "a", "s", 10.0), record(9, "b", "s", 65.0)],
    );
    alerts.extend(observe(
        &mut plugin,
        &[record(9, "c", "s", 50.0), record(9, "d", "s", 55.0)],
    ));
    assert!(alerts.is_empty());
    alerts.extend(observe(&mut plugin, &[record(9, "e", "s", 71.0)]));
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].starts_at, at(60.0));
    // Window 0 is counted now: a record of it is late.
    observe(&mut plugin, &[record(9, "late", "s", 20.0)]);
    assert_eq!(plugin.series.len(), 1);
}

/// The disk scenario and the OOM scenario interleaved, fed as one stream.
fn mixed_stream(plugin: &mut Threshold, minutes: std::ops::Range<u32>) -> Vec<Alert> {
    let mut alerts = Vec::new();
    for minute in minutes {
        let value = if (5..15).contains(&minute) { 0.95 } else { 0.5 };
        alerts.extend(disk(plugin, f64::from(minute) * 60.0, value, "/data"));
        let count = if (8..14).contains(&minute) { 9 } else { 1 };
        alerts.extend(observe(plugin, &ooms("api", minute, count)));
    }
    alerts.extend(tick(plugin, 2_000.0));
    alerts.extend(tick(plugin, 2_100.0));
    alerts
}

#[test]
fn snapshot_and_restore_mid_window_give_the_same_alerts() {
    let config = r#"{"rules": [
        {"name": "disk", "metric": "system.filesystem.utilization", "above": 0.9, "for_seconds": 300},
        {"name": "oom", "logs": {"body_contains": "memory"}, "above": 5, "for_seconds": 120}]}"#;
    let mut straight = detector(config);
    let expected = mixed_stream(&mut straight, 0..25);
    assert_eq!(expected.len(), 4, "{expected:?}");

    for split in [7, 9, 11, 13] {
        let mut before = detector(config);
        let mut alerts = mixed_stream_part(&mut before, 0..split);
        // Half a window of records in flight: the window of `split` holds some records.
        let records = ooms("api", split, if (8..14).contains(&split) { 9 } else { 1 });
        let (first, rest) = records.split_at(records.len() / 2);
        alerts.extend(observe(&mut before, first));
        let state = before.snapshot();
        assert!(state.starts_with(b"{\"version\":1,"));
        let mut after = detector(config);
        after.restore(&state).expect("restores");
        assert_eq!(after.snapshot(), state);
        alerts.extend(observe(&mut after, rest));
        let value = if (5..15).contains(&split) { 0.95 } else { 0.5 };
        alerts.extend(disk(&mut after, f64::from(split) * 60.0, value, "/data"));
        alerts.extend(mixed_stream(&mut after, split + 1..25));
        assert_eq!(alerts, expected, "split at minute {split}");
    }
}

/// `mixed_stream` without the final ticks.
fn mixed_stream_part(plugin: &mut Threshold, minutes: std::ops::Range<u32>) -> Vec<Alert> {
    let mut alerts = Vec::new();
    for minute in minutes {
        let value = if (5..15).contains(&minute) { 0.95 } else { 0.5 };
        alerts.extend(disk(plugin, f64::from(minute) * 60.0, value, "/data"));
        let count = if (8..14).contains(&minute) { 9 } else { 1 };
        alerts.extend(observe(plugin, &ooms("api", minute, count)));
    }
    alerts
}

#[test]
fn restore_rejects_garbage_and_keeps_the_state() {
    let mut plugin = detector(DISK);
    assert_eq!(filling_disk(&mut plugin, 0..20, 99).len(), 1);
    let good = plugin.snapshot();
    let text = String::from_utf8(good.clone()).unwrap();
    let bad: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"garbage".to_vec(),
        b"{}".to_vec(),
        br#"{"version": 1}"#.to_vec(),
        text.replace("\"clock\"", "\"time\"").into_bytes(),
        text.replace("\"firing_since\"", "\"breach_since\"")
            .into_bytes(),
        text.replace("\"now\":", "\"now\":-").into_bytes(),
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
    assert!(disk(&mut plugin, 20.0 * 60.0, 0.99, "/data").is_empty());
    assert!(plugin.restore(&good).is_ok());
}

#[test]
fn restore_under_a_config_without_the_rule_resolves_its_alert() {
    let mut before = detector(DISK);
    assert_eq!(filling_disk(&mut before, 0..20, 99).len(), 1);
    let mut after = detector(r#"{"rules": [{"metric": "other", "above": 1}]}"#);
    after.restore(&before.snapshot()).unwrap();
    let alerts = tick(&mut after, 1_300.0);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].status, AlertStatus::Resolved);
    assert_eq!(label(&alerts[0], "rule"), "disk-full");
}

#[test]
fn state_is_bounded_by_max_series() {
    let mut plugin = detector(r#"{"rules": [{"metric": "m", "above": 1}], "max_series": 3}"#);
    assert_eq!(
        point(&mut plugin, "m", 0.0, 5.0, &[("i", "0")], "s").len(),
        1
    );
    let mut alerts = Vec::new();
    for i in 1..10 {
        let id = i.to_string();
        alerts.extend(point(
            &mut plugin,
            "m",
            f64::from(i),
            0.0,
            &[("i", &id)],
            "s",
        ));
        assert!(plugin.series.len() <= 3);
    }
    // The firing series was forgotten: its alert resolved rather than left firing forever.
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].status, AlertStatus::Resolved);
    assert_eq!(label(&alerts[0], "series"), r#"m{i="0"}"#);
    let kept: Vec<&str> = plugin
        .series
        .in_recency_order()
        .map(|(_, series)| series.series.as_str())
        .collect();
    assert_eq!(kept, vec![r#"m{i="7"}"#, r#"m{i="8"}"#, r#"m{i="9"}"#]);
    assert_eq!(
        sluice_sdk::host::recorded_counters()
            .iter()
            .find(|(name, _)| name == "series_evicted")
            .map(|(_, count)| *count),
        Some(7)
    );
    // A restore into a smaller bound shrinks at the next tick.
    let mut smaller = detector(r#"{"rules": [{"metric": "m", "above": 1}], "max_series": 1}"#);
    smaller.restore(&plugin.snapshot()).unwrap();
    tick(&mut smaller, 20.0);
    assert_eq!(smaller.series.len(), 1);
}

#[test]
fn many_log_series_stay_bounded() {
    let mut plugin = detector(r#"{"rules": [{"logs": {}, "above": 1000}], "max_series": 100}"#);
    let records: Vec<LogRecord> = (0..5_000)
        .map(|i| record(9, "x", &format!("svc-{i}"), f64::from(i) * 0.001))
        .collect();
    assert!(observe(&mut plugin, &records).is_empty());
    assert_eq!(plugin.series.len(), 100);
}

#[test]
fn rejects_bad_config() {
    let error = |config: &str| match Threshold::from_json_config(config) {
        Ok(_) => panic!("accepted {config}"),
        Err(error) => error,
    };
    for (config, expected) in [
        ("", "at least one rule"),
        (r#"{"rules": []}"#, "at least one rule"),
        (
            r#"{"rules": [{"above": 1}]}"#,
            "exactly one of `metric` and `logs`",
        ),
        (
            r#"{"rules": [{"metric": "m", "logs": {}, "above": 1}]}"#,
            "exactly one of `metric`",
        ),
        (
            r#"{"rules": [{"metric": "m"}]}"#,
            "exactly one of `above` and `below`",
        ),
        (
            r#"{"rules": [{"metric": "m", "above": 1, "below": 0}]}"#,
            "exactly one of `above`",
        ),
        (
            r#"{"rules": [{"metric": "m", "above": 1, "resolve_value": 2}]}"#,
            "rules[0].resolve_value 2",
        ),
        (
            r#"{"rules": [{"metric": "m", "below": 1, "resolve_value": 0}]}"#,
            "resolve_value 0",
        ),
        (
            r#"{"rules": [{"metric": "", "above": 1}]}"#,
            "rules[0].metric must not be empty",
        ),
        (
            r#"{"rules": [{"metric": "m", "above": 1, "for_seconds": 9999999}]}"#,
            "rules[0].for_seconds 9999999",
        ),
        (
            r#"{"rules": [{"metric": "m", "above": 1, "stale_seconds": 0}]}"#,
            "stale_seconds",
        ),
        (
            r#"{"rules": [{"logs": {}, "above": 1, "window_seconds": 0}]}"#,
            "window_seconds",
        ),
        (
            r#"{"rules": [{"logs": {"min_severity": 30}, "above": 1}]}"#,
            "min_severity 30",
        ),
        (
            r#"{"rules": [{"logs": {"min_severity": "loud"}, "above": 1}]}"#,
            "loud",
        ),
        (
            r#"{"rules": [{"logs": {"body_regex": "("}, "above": 1}]}"#,
            "rules[0].logs.body_regex",
        ),
        (
            r#"{"rules": [{"logs": {"body_contains": ""}, "above": 1}]}"#,
            "body_contains",
        ),
        (
            r#"{"rules": [{"logs": {}, "attributes": {"a": "b"}, "above": 1}]}"#,
            "rules[0].attributes",
        ),
        (
            r#"{"rules": [{"logs": {"body": "x"}, "above": 1}]}"#,
            "unknown field `body`",
        ),
        (
            r#"{"rules": [{"metric": "m", "above": 1, "alert_name": " "}]}"#,
            "alert_name",
        ),
        (
            r#"{"rules": [{"metric": "m", "above": 1, "severity": "info"}]}"#,
            "unknown variant `info`",
        ),
        (
            r#"{"rules": [{"metric": "m", "above": 1}, {"metric": "m", "below": 0}]}"#,
            "rules[1]: another rule is named `m`",
        ),
        (
            r#"{"rules": [{"metric": "m", "above": 1}], "max_series": 0}"#,
            "max_series",
        ),
        (
            r#"{"rules": [{"metric": "m", "above": 1}], "service_attribute": ""}"#,
            "service_attribute",
        ),
        (
            r#"{"rules": [{"metric": "m", "above": 1}], "window": 1}"#,
            "unknown field `window`",
        ),
        (
            r#"{"rules": [{"metric": "m", "above": "high"}]}"#,
            "invalid type",
        ),
        ("not json", "invalid plugin config"),
    ] {
        let message = error(config);
        assert!(message.contains(expected), "{config}: {message}");
    }
    // Every problem is reported at once.
    let message = error(
        r#"{"rules": [{"metric": "m"}, {"logs": {"min_severity": 99}, "above": 1}], "max_series": 0}"#,
    );
    assert!(
        message.contains("rules[0]")
            && message.contains("rules[1]")
            && message.contains("max_series"),
        "{message}"
    );
}

#[test]
fn defaults() {
    let plugin = detector(r#"{"rules": [{"metric": "m", "above": 1}, {"logs": {}, "below": 3}]}"#);
    let settings = &plugin.settings;
    assert_eq!(settings.service_attribute, "service.name");
    assert_eq!(settings.max_series, 3_000);
    assert_eq!(settings.allowed_lateness, 10 * NANOS_PER_SECOND);
    let (metric, logs) = (&settings.rules[0], &settings.rules[1]);
    assert_eq!((metric.name.as_str(), logs.name.as_str()), ("m", "logs"));
    assert_eq!(metric.alert_name, "Threshold");
    assert_eq!(metric.severity, AlertLevel::Warning);
    assert_eq!(metric.bound.for_nanos, 0);
    assert_eq!(metric.bound.resolve_value, 1.0);
    assert!(
        matches!(metric.source, Source::Metric { stale, .. } if stale == 300 * NANOS_PER_SECOND)
    );
    assert!(
        matches!(logs.source, Source::Logs { window, min_severity: 0, .. } if window == 60 * NANOS_PER_SECOND)
    );
}

#[test]
fn histograms_are_watched_by_their_mean() {
    let mut plugin =
        detector(r#"{"rules": [{"metric": "http.server.request.duration", "above": 0.5}]}"#);
    let mut points = vec![
        // Not watched, in the same batch.
        MetricPoint::gauge("other", at(0.0), 100.0),
        // 10 requests adding up to 2 s: a mean of 0.2 s.
        MetricPoint::histogram("http.server.request.duration", at(0.0), 10, 2.0),
        // No observation: no sample.
        MetricPoint::histogram("http.server.request.duration", at(30.0), 0, 0.0),
    ];
    assert!(observe_points(&mut plugin, &points).is_empty());
    points = vec![MetricPoint::histogram(
        "http.server.request.duration",
        at(60.0),
        10,
        9.0,
    )];
    let alerts = observe_points(&mut plugin, &points);
    assert_eq!(alerts.len(), 1);
    assert_eq!(label(&alerts[0], "service"), "unknown");
    assert_eq!(
        alerts[0].summary,
        "service unknown: http.server.request.duration = 0.9, above 0.5"
    );
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

/// The attributes of a JSON object, as strings.
fn json_attributes(object: &serde_json::Value) -> Vec<(String, String)> {
    object
        .as_object()
        .into_iter()
        .flatten()
        .map(|(key, value)| (key.clone(), value.as_str().unwrap_or("").to_owned()))
        .collect()
}

/// `samples/disk.jsonl` as gauge points.
fn sample_points() -> Vec<MetricPoint> {
    include_str!("../samples/disk.jsonl")
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
            for (key, value) in json_attributes(&json["attributes"]) {
                point = point.with_attribute(&key, value);
            }
            for (key, value) in json_attributes(&json["resource"]) {
                point = point.with_resource_attribute(&key, value);
            }
            point
        })
        .collect()
}

/// `samples/records.jsonl` as log records.
fn sample_records() -> Vec<LogRecord> {
    include_str!("../samples/records.jsonl")
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let json: serde_json::Value = serde_json::from_str(line).expect("sample line is JSON");
            let mut record = LogRecord::new(
                json["severity_number"].as_u64().expect("severity_number") as u8,
                json["body"].as_str().unwrap_or(""),
            );
            record.timestamp = parse_utc(json["timestamp"].as_str().expect("timestamp"));
            for (key, value) in json_attributes(&json["resource"]) {
                record = record.with_resource_attribute(&key, value);
            }
            record
        })
        .collect()
}

#[test]
fn disk_sample_fires_once_for_the_filling_disk_and_resolves() {
    assert_eq!(parse_utc("2026-11-23T10:02:24.500Z"), at(144.5));
    let points = sample_points();
    assert_eq!(points.len(), 120);
    let mut plugin = detector(
        r#"{"rules": [{"name": "disk-full", "alert_name": "DiskAlmostFull", "severity": "critical",
            "metric": "system.filesystem.utilization", "above": 0.9, "for_seconds": 300}]}"#,
    );
    let mut alerts = Vec::new();
    for batch in points.chunks(7) {
        alerts.extend(observe_points(&mut plugin, batch));
    }
    // db-1's /data passes 0.9 at 10:11 and has stayed over for 5 minutes at 10:16; it is
    // cleaned up at 10:30. web-1's log rotation (3 minutes over) stays quiet.
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert_eq!(alerts[0].name, "DiskAlmostFull");
    assert_eq!(alerts[0].starts_at, parse_utc("2026-11-23T10:16:00Z"));
    assert_eq!(label(&alerts[0], "service"), "postgres");
    assert_eq!(
        label(&alerts[0], "series"),
        r#"system.filesystem.utilization{device="sda1",mountpoint="/data"}"#
    );
    assert_eq!(alerts[1].ends_at, Some(parse_utc("2026-11-23T10:30:00Z")));
}

#[test]
fn records_sample_fires_once_for_the_oom_storm_and_not_for_the_short_burst() {
    let records = sample_records();
    assert_eq!(records.len(), 204);
    let mut plugin = detector(
        r#"{"rules": [{"name": "oom", "logs": {"min_severity": "error",
            "body_contains": "OutOfMemoryError"}, "above": 10, "for_seconds": 120}]}"#,
    );
    let mut alerts = Vec::new();
    for batch in records.chunks(10) {
        alerts.extend(observe(&mut plugin, batch));
    }
    // api: 12 a minute from 10:03 to 10:09, windows ending 10:04 to 10:09 over; worker: two
    // minutes of 20, shorter than `for`.
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert_eq!(label(&alerts[0], "service"), "api");
    assert_eq!(alerts[0].starts_at, parse_utc("2026-11-23T10:06:00Z"));
    assert_eq!(alerts[1].ends_at, Some(parse_utc("2026-11-23T10:10:00Z")));
}

#[test]
fn a_full_state_with_the_longest_labels_fits_the_host_bound() {
    // The host refuses to checkpoint a state over 8 MiB (limits.max_state_bytes): the default
    // max_series must keep even the longest labels under it.
    let mut plugin = detector(r#"{"rules": [{"name": "disk-full", "metric": "m", "above": 0.9}]}"#);
    let long = "x".repeat(2_000);
    for index in 0..plugin.settings.max_series {
        let point = MetricPoint::gauge("m", at(index as f64 * 0.01), 0.95)
            .with_attribute("a", format!("{index}{long}").as_str())
            .with_resource_attribute("service.name", format!("{index}{long}").as_str());
        observe_points(&mut plugin, &[point]);
    }
    assert_eq!(plugin.series.len(), 3_000);
    let size = plugin.snapshot().len();
    assert!(size < 8 << 20, "{size} bytes");
}
