use super::*;
use crate::clock::NANOS_PER_SECOND;
use sluice_sdk::{AlertSeverity, MetricPoint, Span, span_kind};

/// 2026-11-23T00:00:00Z, in seconds.
const BASE_SECONDS: i64 = 1_795_392_000;

/// Unix nanoseconds `seconds` after the base time.
fn at(seconds: f64) -> i64 {
    BASE_SECONDS * NANOS_PER_SECOND + (seconds * 1e9).round() as i64
}

/// Unix nanoseconds at minute `minute` after the base time.
fn minute(minute: u32) -> i64 {
    at(f64::from(minute) * 60.0)
}

fn detector(config: &str) -> SloBurn {
    SloBurn::from_json_config(config).expect("valid config")
}

fn observe_spans(plugin: &mut SloBurn, spans: &[Span]) -> Vec<Alert> {
    let mut alerts = Vec::new();
    plugin.observe_spans(&SpanBatch::from_spans(spans), &mut alerts);
    alerts
}

fn observe_points(plugin: &mut SloBurn, points: &[MetricPoint]) -> Vec<Alert> {
    let mut alerts = Vec::new();
    plugin.observe_metrics(&MetricBatch::from_points(points), &mut alerts);
    alerts
}

fn tick(plugin: &mut SloBurn, seconds: f64) -> Vec<Alert> {
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

/// A server span of `service` ending at `end` (ns), 20 ms long.
fn request(service: &str, end: i64, error: bool) -> Span {
    Span::new("GET /cart", end - 20_000_000, end)
        .with_kind(span_kind::SERVER)
        .with_status(if error {
            status_code::ERROR
        } else {
            status_code::OK
        })
        .with_resource_attribute("service.name", service)
}

/// `per_minute` requests of `service` each minute of `minutes`, a share `ratio(minute)` of them
/// failing (spread so the average is exact over time), one batch a minute.
struct Traffic {
    service: &'static str,
    per_minute: u32,
    /// Errors owed so far (fractional).
    owed: f64,
}

impl Traffic {
    fn new(service: &'static str, per_minute: u32) -> Self {
        Traffic {
            service,
            per_minute,
            owed: 0.0,
        }
    }

    /// The spans of minute `m` with error ratio `ratio`.
    fn minute(&mut self, m: u32, ratio: f64) -> Vec<Span> {
        self.owed += ratio * f64::from(self.per_minute);
        let errors = self.owed.floor() as u32;
        self.owed -= f64::from(errors);
        (0..self.per_minute)
            .map(|i| {
                let end =
                    minute(m) + i64::from(i) * 60 * NANOS_PER_SECOND / i64::from(self.per_minute);
                request(self.service, end + 1, i < errors)
            })
            .collect()
    }
}

/// Runs `traffic` over `minutes` with the error ratio `ratio(minute)`; the alerts.
fn run(
    plugin: &mut SloBurn,
    traffic: &mut Traffic,
    minutes: std::ops::Range<u32>,
    ratio: impl Fn(u32) -> f64,
) -> Vec<Alert> {
    let mut alerts = Vec::new();
    for m in minutes {
        alerts.extend(observe_spans(plugin, &traffic.minute(m, ratio(m))));
    }
    alerts
}

const AVAILABILITY: &str = r#"{"slos": [{"name": "availability", "target": 0.999, "spans": {}}]}"#;

#[test]
fn a_fast_burn_pages_once_on_the_1h_5m_pair_and_resolves_quickly() {
    let mut plugin = detector(AVAILABILITY);
    let mut traffic = Traffic::new("checkout", 200);
    // 0.1 % errors (burn rate 1) for 3 hours, then 5 % (burn 50) for 30 minutes, then 0.1 %.
    let alerts = run(&mut plugin, &mut traffic, 0..300, |m| {
        if (180..210).contains(&m) { 0.05 } else { 0.001 }
    });
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    let page = &alerts[0];
    assert_eq!(page.name, "SloBurnRate");
    assert_eq!(page.severity, AlertSeverity::Critical);
    assert_eq!(page.status, AlertStatus::Firing);
    assert_eq!(label(page, "service"), "checkout");
    assert_eq!(label(page, "slo"), "availability");
    assert_eq!(label(page, "window"), "1h/5m");
    assert!(page.fingerprint.is_empty());
    // The hour holds k bad minutes: (0.05 k + 0.001 (60 − k)) / 60 > 0.0144 from k = 17, so
    // the boundary at 3:17 (evaluated 10 s later) fires. The 6h/30m pair would need 37 bad
    // minutes (its 6 hours reach before the first event: that time counts as good).
    assert_eq!(page.starts_at, minute(197));
    assert!(
        page.summary.starts_with(
            "service checkout: SLO availability (99.9 %) burns its error budget 14.9× over 1h \
             and 50× over 5m (threshold 14.4×): 1.49 % bad of 12000 events in 1h"
        ),
        "{}",
        page.summary
    );
    // Four good minutes bring the 5 minutes back under 1.44 %: resolved at 3:34.
    let resolved = &alerts[1];
    assert_eq!(resolved.status, AlertStatus::Resolved);
    assert_eq!(resolved.ends_at, Some(minute(214)));
    assert_eq!(
        Alert {
            status: AlertStatus::Firing,
            ends_at: None,
            ..resolved.clone()
        },
        *page
    );
}

#[test]
fn a_slow_burn_opens_a_ticket_on_the_6h_30m_pair_only() {
    let mut plugin = detector(AVAILABILITY);
    let mut traffic = Traffic::new("payments", 100);
    // 1.2 % errors (burn 12: under the page's 14.4, over the ticket's 6) from 6:00 for 8 hours.
    let alerts = run(&mut plugin, &mut traffic, 0..900, |m| {
        if (360..840).contains(&m) {
            0.012
        } else {
            0.001
        }
    });
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    let ticket = &alerts[0];
    assert_eq!(ticket.severity, AlertSeverity::Warning);
    assert_eq!(label(ticket, "window"), "6h/30m");
    // Six hours with k bad minutes: (0.012 k + 0.001 (360 − k)) / 360 > 0.006 from k = 164;
    // the errors come whole (1.2 a minute on average), which puts it one minute later.
    assert_eq!(ticket.starts_at, minute(360 + 165));
    // The 30 minutes drop to 0.6 % once about 16.4 good minutes are in them (16 with whole
    // errors).
    assert_eq!(alerts[1].ends_at, Some(minute(840 + 16)));
}

#[test]
fn a_short_burst_that_recovers_by_itself_stays_quiet() {
    let mut plugin = detector(AVAILABILITY);
    let mut traffic = Traffic::new("checkout", 200);
    // Each hour at :30, one minute at 20 % errors: the hour burns 4.3×, under both thresholds.
    let alerts = run(&mut plugin, &mut traffic, 0..720, |m| {
        if m % 60 == 30 { 0.2 } else { 0.001 }
    });
    assert!(alerts.is_empty(), "{alerts:?}");
}

#[test]
fn traffic_that_stops_resolves_through_ticks() {
    let mut plugin = detector(AVAILABILITY);
    let mut traffic = Traffic::new("checkout", 200);
    let alerts = run(&mut plugin, &mut traffic, 0..100, |m| {
        if m >= 60 { 0.5 } else { 0.001 }
    });
    assert_eq!(alerts.len(), 2, "both pairs fire: {alerts:?}");
    // The service goes away at 1:40. Ticks carry the clock; with no events a short window
    // empties (a burn rate of 0) once it has passed the last bucket.
    let mut alerts = Vec::new();
    for second in (6_000..8_000).step_by(10) {
        alerts.extend(tick(&mut plugin, f64::from(second)));
    }
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert_eq!(label(&alerts[0], "window"), "1h/5m");
    assert_eq!(alerts[0].ends_at, Some(minute(105)));
    assert_eq!(label(&alerts[1], "window"), "6h/30m");
    assert_eq!(alerts[1].ends_at, Some(minute(130)));
    // Nothing is left of the service once its hours have passed.
    for second in (6_600..30_000).step_by(60) {
        tick(&mut plugin, f64::from(second));
    }
    assert_eq!(plugin.budgets.len(), 0);
}

#[test]
fn spans_are_selected_by_kind_name_attribute_and_service() {
    let mut plugin = detector(
        r#"{"slos": [{"name": "cart", "target": 0.99, "services": ["checkout"],
            "spans": {"kinds": ["server", "consumer"], "names": ["GET /cart"],
                      "attributes": {"http.route": "/cart"}},
            "windows": [{"long_seconds": 600, "short_seconds": 60, "burn_rate": 10}]}]}"#,
    );
    let failing = |end: i64| request("checkout", end, true).with_attribute("http.route", "/cart");
    let mut spans = Vec::new();
    for i in 0..100 {
        let end = at(f64::from(i));
        spans.push(failing(end));
        // None of these counts.
        spans.push(request("checkout", end, true)); // no route
        spans.push(failing(end).with_kind(span_kind::CLIENT));
        spans.push(request("web", end, true).with_attribute("http.route", "/cart"));
        let mut other = failing(end);
        other.name = "GET /other".to_owned();
        spans.push(other);
    }
    observe_spans(&mut plugin, &spans);
    let alerts = tick(&mut plugin, 0.0);
    assert!(alerts.is_empty());
    let budgets: Vec<&Budget> = plugin.budgets.in_recency_order().map(|(_, b)| b).collect();
    assert_eq!(budgets.len(), 1);
    assert_eq!(budgets[0].service, "checkout");
    let counts = budgets[0].sums(i64::MAX, i64::MAX);
    assert_eq!((counts.total, counts.bad), (100.0, 100.0));
}

#[test]
fn slow_spans_count_as_bad_with_a_latency_threshold() {
    let mut plugin = detector(
        r#"{"slos": [{"name": "latency", "target": 0.9,
            "spans": {"errors": false, "latency_threshold_ms": 300},
            "windows": [{"long_seconds": 600, "short_seconds": 120, "burn_rate": 2.2}]}]}"#,
    );
    let mut alerts = Vec::new();
    for m in 0..30u32 {
        let spans: Vec<Span> = (0..60)
            .map(|i| {
                let end = minute(m) + i64::from(i) * NANOS_PER_SECOND + 1;
                // From minute 10, half the requests take 500 ms; errors never count.
                let slow = m >= 10 && i % 2 == 0;
                let duration = if slow { 500 } else { 100 } * 1_000_000;
                Span::new("GET /", end - duration, end)
                    .with_kind(span_kind::SERVER)
                    .with_status(status_code::ERROR * u8::from(i == 1))
            })
            .collect();
        alerts.extend(observe_spans(&mut plugin, &spans));
    }
    // 50 % slow is a burn of 5: over 2.2 on the 10 minutes once they hold 5 slow minutes
    // (0.5 k / 10 > 0.22); the 2 minutes are over from the second slow minute.
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(label(&alerts[0], "window"), "10m/2m");
    assert_eq!(alerts[0].starts_at, minute(15));
}

/// A cumulative counter point of `service`.
fn counter(name: &str, seconds: f64, value: f64, service: &str) -> MetricPoint {
    MetricPoint::sum(name, at(seconds), value)
        .with_attribute("http.route", "/pay")
        .with_resource_attribute("service.name", service)
}

#[test]
fn cumulative_counters_feed_the_budget_across_a_reset() {
    let mut plugin = detector(
        r#"{"slos": [{"name": "pay", "target": 0.999,
            "metrics": {"total": "http.requests", "errors": "http.errors"}}]}"#,
    );
    let (mut total, mut errors) = (0.0, 0.0);
    let mut alerts = Vec::new();
    for step in 0..(6 * 60 * 4) {
        // A point every 15 s: 50 requests, 0.1 % failing; 10 % failing from 3:00 to 3:15.
        let seconds = f64::from(step) * 15.0;
        let m = step / 4;
        total += 50.0;
        errors += if (180..195).contains(&m) { 5.0 } else { 0.05 };
        if step == 500 {
            // The process restarts: both counters start again from (almost) zero.
            (total, errors) = (50.0, 0.0);
        }
        alerts.extend(observe_points(
            &mut plugin,
            &[
                counter("http.requests", seconds, total, "pay"),
                counter("http.errors", seconds, errors, "pay"),
                counter("unrelated", seconds, 1e9, "pay"),
            ],
        ));
    }
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert_eq!(label(&alerts[0], "window"), "1h/5m");
    assert_eq!(label(&alerts[0], "service"), "pay");
    // 10 % is a burn of 100: the hour is over 1.44 % after 9 bad minutes; five good minutes
    // after the end clear the short window. The 6h/30m pair stays under 6.
    assert_eq!(alerts[0].starts_at, minute(189));
    assert_eq!(alerts[1].ends_at, Some(minute(200)));
    // Both counters were reset once.
    assert_eq!(
        sluice_sdk::host::recorded_counters()
            .iter()
            .find(|(name, _)| name == "counter_resets")
            .map(|(_, count)| *count),
        Some(2)
    );
}

#[test]
fn good_counters_and_error_attributes_tell_bad_events_too() {
    // bad = total − good.
    let mut good_plugin = detector(
        r#"{"slos": [{"name": "s", "target": 0.99, "metrics": {"total": "all", "good": "ok"},
            "windows": [{"long_seconds": 600, "short_seconds": 60, "burn_rate": 5}]}]}"#,
    );
    // Histogram counts of `http.server.request.duration`, bad when `http.response.status_code`
    // starts with 5.
    let mut attribute_plugin = detector(
        r#"{"slos": [{"name": "s", "target": 0.99, "metrics": {
            "total": "http.server.request.duration", "error_attribute": "http.response.status_code",
            "error_value_prefixes": ["5"]},
            "windows": [{"long_seconds": 600, "short_seconds": 60, "burn_rate": 5}]}]}"#,
    );
    let (mut good_alerts, mut attribute_alerts) = (Vec::new(), Vec::new());
    let (mut all, mut ok, mut served, mut failed, mut missing) = (0.0, 0.0, 0u64, 0u64, 0u64);
    for step in 0..40u32 {
        let seconds = f64::from(step) * 30.0;
        // 100 requests each 30 s, half failing from step 20.
        let bad = if step >= 20 { 50.0 } else { 0.0 };
        all += 100.0;
        ok += 100.0 - bad;
        served += 100 - bad as u64;
        failed += bad as u64;
        missing += 3;
        good_alerts.extend(observe_points(
            &mut good_plugin,
            &[
                MetricPoint::sum("all", at(seconds), all),
                MetricPoint::sum("ok", at(seconds), ok),
            ],
        ));
        let histogram = |status: &str, count: u64| {
            MetricPoint::histogram("http.server.request.duration", at(seconds), count, 0.1)
                .with_attribute("http.response.status_code", status)
        };
        attribute_alerts.extend(observe_points(
            &mut attribute_plugin,
            &[
                histogram("200", served),
                histogram("503", failed),
                histogram("404", missing),
            ],
        ));
    }
    for alerts in [&good_alerts, &attribute_alerts] {
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        // Boundary 11 reads minutes 1-10: 100 bad of 2000 is 5 %, not over; boundary 12 is.
        assert_eq!(alerts[0].starts_at, at(12.0 * 60.0));
    }
}

#[test]
fn snapshot_and_restore_mid_window_give_the_same_alerts() {
    let ratio = |m: u32| if (180..210).contains(&m) { 0.05 } else { 0.001 };
    let mut straight = detector(AVAILABILITY);
    let expected = run(
        &mut straight,
        &mut Traffic::new("checkout", 200),
        0..300,
        ratio,
    );
    assert_eq!(expected.len(), 2);
    for split in [120, 190, 200, 211] {
        let mut traffic = Traffic::new("checkout", 200);
        let mut before = detector(AVAILABILITY);
        let mut alerts = run(&mut before, &mut traffic, 0..split, ratio);
        // Half a bucket in flight.
        let spans = traffic.minute(split, ratio(split));
        let (first, rest) = spans.split_at(spans.len() / 2);
        alerts.extend(observe_spans(&mut before, first));
        let state = before.snapshot();
        assert!(state.starts_with(b"{\"version\":1,"));
        let mut after = detector(AVAILABILITY);
        after.restore(&state).expect("restores");
        assert_eq!(after.snapshot(), state);
        alerts.extend(observe_spans(&mut after, rest));
        alerts.extend(run(&mut after, &mut traffic, split + 1..300, ratio));
        assert_eq!(alerts, expected, "split at minute {split}");
    }
}

#[test]
fn restore_rejects_garbage_and_keeps_the_state() {
    let mut plugin = detector(AVAILABILITY);
    let mut traffic = Traffic::new("checkout", 200);
    assert_eq!(
        run(&mut plugin, &mut traffic, 0..90, |m| if m > 60 {
            0.5
        } else {
            0.001
        })
        .len(),
        2
    );
    let good = plugin.snapshot();
    let text = String::from_utf8(good.clone()).unwrap();
    let bad: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"garbage".to_vec(),
        b"{}".to_vec(),
        br#"{"version": 1}"#.to_vec(),
        text.replace("\"budgets\"", "\"series\"").into_bytes(),
        text.replacen(",200,", ",-200,", 1).into_bytes(),
        text.replacen(",200,", ",\"-200\",", 1).into_bytes(),
        text.replacen(",200,", ",200.5,", 1).into_bytes(),
        text.replace("\"width\":", "\"width\":-").into_bytes(),
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
    assert!(run(&mut plugin, &mut traffic, 90..100, |_| 0.5).is_empty());
    assert!(plugin.restore(&good).is_ok());
}

#[test]
fn state_is_bounded_by_max_series() {
    let mut plugin = detector(
        r#"{"slos": [{"name": "a", "target": 0.99, "spans": {},
            "windows": [{"long_seconds": 600, "short_seconds": 60, "burn_rate": 2}]}],
            "max_series": 3}"#,
    );
    // Service s0 fires, then nine others arrive.
    let failing: Vec<Span> = (0..100)
        .map(|i| request("s0", at(f64::from(i)), true))
        .collect();
    assert_eq!(observe_spans(&mut plugin, &failing).len(), 1);
    let mut alerts = Vec::new();
    for i in 1..10 {
        let service: &'static str = Box::leak(format!("s{i}").into_boxed_str());
        alerts.extend(observe_spans(
            &mut plugin,
            &[request(service, at(100.0 + f64::from(i)), false)],
        ));
        assert!(plugin.budgets.len() <= 3);
    }
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].status, AlertStatus::Resolved);
    assert_eq!(label(&alerts[0], "service"), "s0");
    let kept: Vec<&str> = plugin
        .budgets
        .in_recency_order()
        .map(|(_, budget)| budget.service.as_str())
        .collect();
    assert_eq!(kept, vec!["s7", "s8", "s9"]);
    assert_eq!(
        sluice_sdk::host::recorded_counters()
            .iter()
            .find(|(name, _)| name == "series_evicted")
            .map(|(_, count)| *count),
        Some(7)
    );
}

#[test]
fn rejects_bad_config() {
    let error = |config: &str| match SloBurn::from_json_config(config) {
        Ok(_) => panic!("accepted {config}"),
        Err(error) => error,
    };
    for (config, expected) in [
        ("", "at least one SLO"),
        (
            r#"{"slos": [{"name": "a", "spans": {}}]}"#,
            "missing field `target`",
        ),
        (
            r#"{"slos": [{"name": "a", "target": 1, "spans": {}}]}"#,
            "slos[0].target 1",
        ),
        (
            r#"{"slos": [{"name": "a", "target": 99.9, "spans": {}}]}"#,
            "slos[0].target 99.9",
        ),
        (
            r#"{"slos": [{"name": "", "target": 0.9, "spans": {}}]}"#,
            "slos[0].name",
        ),
        (
            r#"{"slos": [{"name": "a", "target": 0.9}]}"#,
            "exactly one of `spans` and `metrics`",
        ),
        (
            r#"{"slos": [{"name": "a", "target": 0.9, "spans": {"kinds": ["server", "sever"]}}]}"#,
            "`sever` is not one of",
        ),
        (
            r#"{"slos": [{"name": "a", "target": 0.9, "spans": {"kinds": []}}]}"#,
            "at least one kind",
        ),
        (
            r#"{"slos": [{"name": "a", "target": 0.9, "spans": {"errors": false}}]}"#,
            "latency_threshold_ms",
        ),
        (
            r#"{"slos": [{"name": "a", "target": 0.9, "spans": {"latency_threshold_ms": -5}}]}"#,
            "latency_threshold_ms -5",
        ),
        (
            r#"{"slos": [{"name": "a", "target": 0.9, "metrics": {"total": "t"}}]}"#,
            "exactly one of `errors`, `good` and `error_attribute`",
        ),
        (
            r#"{"slos": [{"name": "a", "target": 0.9, "metrics": {"total": "t", "errors": "e", "good": "g"}}]}"#,
            "exactly one of `errors`",
        ),
        (
            r#"{"slos": [{"name": "a", "target": 0.9, "metrics": {"total": "t", "errors": "t"}}]}"#,
            "differ from `total`",
        ),
        (
            r#"{"slos": [{"name": "a", "target": 0.9, "spans": {}}, {"name": "a", "target": 0.9, "spans": {}}]}"#,
            "slos[1]: another SLO is named `a`",
        ),
        (
            r#"{"slos": [{"name": "a", "target": 0.9, "spans": {}, "windows": []}]}"#,
            "slos[0].windows: at least one",
        ),
        (
            r#"{"slos": [{"name": "a", "target": 0.9, "spans": {}, "windows": [{"long_seconds": 300, "short_seconds": 600, "burn_rate": 2}]}]}"#,
            "must be shorter",
        ),
        (
            r#"{"slos": [{"name": "a", "target": 0.9, "spans": {}, "windows": [{"long_seconds": 3630, "short_seconds": 300, "burn_rate": 2}]}]}"#,
            "not a multiple of bucket_seconds 60",
        ),
        (
            r#"{"slos": [{"name": "a", "target": 0.9, "spans": {}, "windows": [{"long_seconds": 3600, "short_seconds": 300, "burn_rate": 0}]}]}"#,
            "burn_rate 0",
        ),
        (
            r#"{"slos": [{"name": "a", "target": 0.9, "spans": {}}], "bucket_seconds": 0}"#,
            "bucket_seconds 0",
        ),
        (
            r#"{"slos": [{"name": "a", "target": 0.9, "spans": {}}], "bucket_seconds": 1}"#,
            "spans more than 10080 buckets",
        ),
        (
            r#"{"slos": [{"name": "a", "target": 0.9, "spans": {}}], "max_series": 0}"#,
            "max_series",
        ),
        (
            r#"{"slos": [{"name": "a", "target": 0.9, "spans": {}}], "max_counters": 0}"#,
            "max_counters",
        ),
        (
            r#"{"slos": [{"name": "a", "target": 0.9, "spans": {}}], "temporality": "weekly"}"#,
            "unknown variant `weekly`",
        ),
        (
            r#"{"slos": [{"name": "a", "target": 0.9, "spans": {}, "objective": 3}]}"#,
            "unknown field `objective`",
        ),
        (
            r#"{"slos": [{"name": "a", "target": 0.9, "spans": {}, "resolve_after_seconds": 9999999}]}"#,
            "slos[0].resolve_after_seconds 9999999",
        ),
        ("not json", "invalid plugin config"),
    ] {
        let message = error(config);
        assert!(message.contains(expected), "{config}: {message}");
    }
    let message = error(r#"{"slos": [{"name": "a", "target": 2, "spans": {}}], "max_series": 0}"#);
    assert!(
        message.contains("target") && message.contains("max_series"),
        "{message}"
    );
}

#[test]
fn defaults_are_the_workbook_pairs() {
    let plugin = detector(AVAILABILITY);
    let settings = &plugin.settings;
    assert_eq!(settings.bucket, 60 * NANOS_PER_SECOND);
    assert_eq!(settings.allowed_lateness, 10 * NANOS_PER_SECOND);
    assert_eq!(settings.alert_name, "SloBurnRate");
    assert_eq!(settings.service_attribute, "service.name");
    assert_eq!((settings.max_series, settings.max_counters), (400, 1_000));
    let windows = &settings.slos[0].windows;
    assert_eq!(windows.len(), 2);
    assert_eq!(
        (
            windows[0].label.as_str(),
            windows[0].long,
            windows[0].short,
            windows[0].burn_rate,
            windows[0].severity
        ),
        ("1h/5m", 60, 5, 14.4, AlertLevel::Critical)
    );
    assert_eq!(
        (
            windows[1].label.as_str(),
            windows[1].long,
            windows[1].short,
            windows[1].burn_rate,
            windows[1].severity
        ),
        ("6h/30m", 360, 30, 6.0, AlertLevel::Warning)
    );
    assert!(matches!(
        &settings.slos[0].source,
        Source::Spans { kinds, errors: true, latency_threshold: None, .. } if *kinds == vec![span_kind::SERVER]
    ));
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

/// The sample line's `attributes` and `resource` objects.
fn sample_attributes(json: &serde_json::Value, field: &str) -> Vec<(String, String)> {
    json[field]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(key, value)| (key.clone(), value.as_str().unwrap_or("").to_owned()))
        .collect()
}

#[test]
fn requests_sample_pages_and_tickets_for_the_bad_deploy() {
    let spans: Vec<Span> = include_str!("../samples/requests.jsonl")
        .lines()
        .map(|line| {
            let json: serde_json::Value = serde_json::from_str(line).expect("JSON");
            assert_eq!(json["kind"], "server");
            let mut span = Span::new(
                json["name"].as_str().expect("name"),
                parse_utc(json["start"].as_str().expect("start")),
                parse_utc(json["end"].as_str().expect("end")),
            )
            .with_kind(span_kind::SERVER)
            .with_status(if json["status"] == "error" {
                status_code::ERROR
            } else {
                status_code::OK
            });
            for (key, value) in sample_attributes(&json, "attributes") {
                span = span.with_attribute(&key, value);
            }
            for (key, value) in sample_attributes(&json, "resource") {
                span = span.with_resource_attribute(&key, value);
            }
            span
        })
        .collect();
    assert_eq!(spans.len(), 900);
    let mut plugin = detector(AVAILABILITY);
    let mut alerts = Vec::new();
    for batch in spans.chunks(25) {
        alerts.extend(observe_spans(&mut plugin, batch));
    }
    let summary: Vec<(&str, AlertStatus, i64)> = alerts
        .iter()
        .map(|alert| {
            (
                label(alert, "window"),
                alert.status,
                alert.ends_at.unwrap_or(alert.starts_at),
            )
        })
        .collect();
    // Half the requests fail from 10:40 to 10:55. The service's first hour reaches before its
    // first request (that time counts as good): 500× over the 42 minutes seen is 8.3× per bad
    // minute over the hour, so the page fires at 10:42; the ticket, at 500× over 6 h, at 10:45.
    // Five good minutes clear the page's 5 minutes (11:00), thirty the ticket's (11:25).
    assert_eq!(
        summary,
        vec![
            (
                "1h/5m",
                AlertStatus::Firing,
                parse_utc("2026-11-23T10:42:00Z")
            ),
            (
                "6h/30m",
                AlertStatus::Firing,
                parse_utc("2026-11-23T10:45:00Z")
            ),
            (
                "1h/5m",
                AlertStatus::Resolved,
                parse_utc("2026-11-23T11:00:00Z")
            ),
            (
                "6h/30m",
                AlertStatus::Resolved,
                parse_utc("2026-11-23T11:25:00Z")
            ),
        ]
    );
    assert!(
        alerts
            .iter()
            .all(|alert| label(alert, "service") == "checkout")
    );
}

#[test]
fn counters_sample_tickets_the_slow_burn_and_ignores_the_hourly_blips() {
    let points: Vec<MetricPoint> = include_str!("../samples/counters.jsonl")
        .lines()
        .map(|line| {
            let json: serde_json::Value = serde_json::from_str(line).expect("JSON");
            assert_eq!(
                (json["kind"].as_str(), json["monotonic"].as_bool()),
                (Some("sum"), Some(true))
            );
            let mut point = MetricPoint::sum(
                json["name"].as_str().expect("name"),
                parse_utc(json["timestamp"].as_str().expect("timestamp")),
                json["value"].as_f64().expect("value"),
            );
            for (key, value) in sample_attributes(&json, "attributes") {
                point = point.with_attribute(&key, value);
            }
            for (key, value) in sample_attributes(&json, "resource") {
                point = point.with_resource_attribute(&key, value);
            }
            point
        })
        .collect();
    assert_eq!(points.len(), 960);
    let mut plugin = detector(
        r#"{"slos": [{"name": "availability", "target": 0.999,
            "metrics": {"total": "http.server.requests", "errors": "http.server.errors"}}]}"#,
    );
    let mut alerts = Vec::new();
    for batch in points.chunks(8) {
        alerts.extend(observe_points(&mut plugin, batch));
    }
    // payments fails 1.2 % of its requests from 12:00 to 17:00 (burn 12: no page); search has
    // a 2-minute blip at 10 % each hour (burn 3.3 over an hour and over 6 h: nothing).
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert!(
        alerts.iter().all(
            |alert| label(alert, "service") == "payments" && label(alert, "window") == "6h/30m"
        )
    );
    // Six hours (counted from 10:00, the time before as good) pass 0.6 % once about 432
    // errors are in: 24 before 12:00 and 2.4 a minute after, so about 14:50 (the point of 14:50
    // counts in the bucket that the boundary of 14:51 closes).
    assert_eq!(alerts[0].starts_at, parse_utc("2026-11-23T14:51:00Z"));
    // The boundary of 17:17 is the first whose 30 minutes hold fewer than 15 bad ones (6 points
    // of 16:48-16:58 against 9 good ones): 0.54 %.
    assert_eq!(alerts[1].ends_at, Some(parse_utc("2026-11-23T17:17:00Z")));
}

#[test]
fn a_full_state_with_the_longest_labels_fits_the_host_bound() {
    // The host refuses to checkpoint a state over 8 MiB (limits.max_state_bytes): the default
    // bounds must keep a worst case under it: every budget with six hours of full buckets of
    // large counts, every counter with the longest key.
    let mut plugin = detector(
        r#"{"slos": [{"name": "a-rather-long-slo-name-for-the-checkout-availability-objective",
            "target": 0.999, "spans": {}}]}"#,
    );
    let long = "x".repeat(300);
    let width = plugin.settings.bucket;
    let mut budgets = Vec::new();
    for index in 0..plugin.settings.max_series {
        let service = cut(&format!("{index}{long}"), 256).to_owned();
        let slo = &plugin.settings.slos[0];
        let mut budget = Budget::new(&slo.name, &service, width, minute(0));
        for m in 0..360 {
            let counts = Counts {
                total: 123_456_789.0,
                bad: 1_234_567.0,
                good: 122_222_222.0,
            };
            budget.add(minute(m), counts, slo);
        }
        budgets.push((format!("{}\u{1f}{service}", slo.name), budget));
    }
    plugin.budgets = Registry::from_ordered(budgets).unwrap();
    let counters = (0..plugin.settings.max_counters)
        .map(|index| {
            let key = cut(&format!("{index}{}", "y".repeat(2_000)), MAX_KEY_BYTES).to_owned();
            let counter = Counter {
                time: minute(0),
                value: Exact(1_234_567_890.5),
            };
            (key, counter)
        })
        .collect();
    plugin.counters = Registry::from_ordered(counters).unwrap();
    let size = plugin.snapshot().len();
    assert!(size < 8 << 20, "{size} bytes");
}

/// Runs 8 hours of `per_minute` requests of `service` failing at random (a fixed seed) with
/// probability 0.001, and 0.025 from 6:00 for 100 minutes; the alerts.
fn low_traffic_burn(plugin: &mut SloBurn, per_minute: u32) -> Vec<Alert> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut alerts = Vec::new();
    for m in 0..480u32 {
        let ratio = if (360..460).contains(&m) {
            0.025
        } else {
            0.001
        };
        let spans: Vec<Span> = (0..per_minute)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let failed = (state >> 11) as f64 / (1u64 << 53) as f64 > 1.0 - ratio;
                let end = minute(m) + i64::from(i) * 60 * NANOS_PER_SECOND / i64::from(per_minute);
                request("frontend", end + 1, failed)
            })
            .collect();
        alerts.extend(observe_spans(plugin, &spans));
    }
    alerts
}

#[test]
fn resolve_after_stops_a_low_traffic_alert_from_flapping() {
    let pages = |alerts: &[Alert]| {
        alerts
            .iter()
            .filter(|alert| {
                alert.status == AlertStatus::Firing && label(alert, "window") == "1h/5m"
            })
            .count()
    };
    // 18 requests a minute: the 5-minute window holds 90, about two of them bad during the burn,
    // so its burn rate keeps dipping under 14.4 and coming back: the workbook's rule flaps.
    let mut workbook = detector(AVAILABILITY);
    let flapping = low_traffic_burn(&mut workbook, 18);
    assert!(pages(&flapping) > 1, "{flapping:?}");
    // Ten minutes of clear short window before resolving: one page for the burn.
    let mut held = detector(
        r#"{"slos": [{"name": "availability", "target": 0.999, "spans": {},
            "resolve_after_seconds": 600}]}"#,
    );
    let alerts = low_traffic_burn(&mut held, 18);
    assert_eq!(pages(&alerts), 1, "{alerts:?}");
    let page = alerts
        .iter()
        .find(|alert| label(alert, "window") == "1h/5m" && alert.status == AlertStatus::Resolved)
        .expect("resolves");
    // The burn ends at 7:40: the page resolves 10 minutes after its short window clears.
    assert!(page.ends_at.unwrap() >= minute(460 + 10), "{page:?}");
    assert!(page.ends_at.unwrap() <= minute(460 + 20), "{page:?}");
}
