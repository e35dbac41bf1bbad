use super::*;
use sluice_sdk::{AlertSeverity, LogRecord};

/// 2026-11-23T10:00:00Z, in seconds.
const BASE_SECONDS: i64 = 1_795_428_000;

/// Unix nanoseconds `seconds` after the base time.
fn at(seconds: f64) -> i64 {
    BASE_SECONDS * NANOS_PER_SECOND + (seconds * 1e9).round() as i64
}

fn record(severity: u8, service: &str, seconds: f64) -> LogRecord {
    LogRecord {
        timestamp: at(seconds),
        ..LogRecord::new(severity, "something happened")
            .with_resource_attribute("service.name", service)
    }
}

fn error(service: &str, seconds: f64) -> LogRecord {
    record(17, service, seconds)
}

fn info(service: &str, seconds: f64) -> LogRecord {
    record(9, service, seconds)
}

/// `count` errors of `service`, one every `step` seconds from `start`.
fn errors(service: &str, start: f64, step: f64, count: usize) -> Vec<LogRecord> {
    (0..count)
        .map(|i| error(service, start + step * i as f64))
        .collect()
}

fn detector(config: &str) -> ErrorBurst {
    ErrorBurst::from_json_config(config).expect("valid config")
}

fn observe(plugin: &mut ErrorBurst, records: &[LogRecord]) -> Vec<Alert> {
    let mut alerts = Vec::new();
    plugin.observe(&LogBatch::from_records(records), &mut alerts);
    alerts
}

/// The gateway's tick with the wall clock at `seconds`, the stream having gone quiet at its
/// newest record (wall time and event time coincide in these tests): a tick notices the last
/// records first, then the quiet time moves the event clock on.
fn tick(plugin: &mut ErrorBurst, seconds: f64) -> Vec<Alert> {
    let mut alerts = Vec::new();
    if plugin.events_since_tick || plugin.last_tick.is_none() {
        plugin.tick(plugin.latest, &mut alerts);
    }
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

fn services(plugin: &ErrorBurst) -> Vec<&str> {
    plugin
        .registry
        .services
        .keys()
        .map(String::as_str)
        .collect()
}

#[test]
fn fires_once_per_burst_not_per_batch() {
    let mut plugin = detector(r#"{"threshold": 5}"#);
    // 3 errors per batch, one a second: the fifth error (t = 4) crosses.
    let mut fired = Vec::new();
    for batch in 0..5 {
        let start = f64::from(batch * 3);
        fired.extend(observe(&mut plugin, &errors("checkout", start, 1.0, 3)));
    }
    assert_eq!(fired.len(), 1, "{fired:?}");
    let alert = &fired[0];
    assert_eq!(alert.name, "ErrorBurst");
    assert_eq!(alert.severity, AlertSeverity::Error);
    assert_eq!(alert.status, AlertStatus::Firing);
    assert_eq!(alert.starts_at, at(4.0));
    assert_eq!(alert.ends_at, None);
    assert!(alert.fingerprint.is_empty());
    assert_eq!(label(alert, "service"), "checkout");
    assert_eq!(label(alert, "window"), "60s");
    assert_eq!(alert.labels.len(), 2);
    // The crossing batch ended with 6 errors in the window.
    assert_eq!(
        alert.summary,
        "service checkout: 6 errors in the last 60 s (threshold 5)"
    );
    // More errors while firing raise nothing.
    assert!(observe(&mut plugin, &errors("checkout", 15.0, 0.1, 100)).is_empty());
}

#[test]
fn crossing_inside_one_batch_starts_at_the_crossing_record() {
    let mut plugin = detector(r#"{"threshold": 50, "window_seconds": 60}"#);
    let records = errors("checkout", 0.0, 0.5, 73);
    let alerts = observe(&mut plugin, &records);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].starts_at, at(49.0 * 0.5));
    assert_eq!(
        alerts[0].summary,
        "service checkout: 73 errors in the last 60 s (threshold 50)"
    );
}

#[test]
fn below_threshold_stays_quiet() {
    let mut plugin = detector(r#"{"threshold": 4, "window_seconds": 60}"#);
    // One error every 20 s is at most 3 in any 60 s window; info records never count.
    for minute in 0..10 {
        let start = f64::from(minute) * 60.0;
        let mut records = errors("checkout", start, 20.0, 3);
        records.extend((0..50).map(|i| info("checkout", start + f64::from(i))));
        assert!(observe(&mut plugin, &records).is_empty());
        assert!(tick(&mut plugin, start + 59.0).is_empty());
    }
    // Warnings are below the default minimum severity (17).
    let warnings: Vec<LogRecord> = (0..10)
        .map(|i| record(13, "checkout", 700.0 + f64::from(i)))
        .collect();
    assert!(observe(&mut plugin, &warnings).is_empty());
}

#[test]
fn services_are_isolated() {
    let mut plugin = detector(r#"{"threshold": 5}"#);
    let mut records = errors("checkout", 0.0, 1.0, 5);
    records.extend(errors("payments", 0.0, 1.0, 4));
    // Records without the attribute count as `unknown`.
    records.extend((0..4).map(|i| LogRecord {
        timestamp: at(f64::from(i)),
        ..LogRecord::new(17, "no service")
    }));
    let alerts = observe(&mut plugin, &records);
    assert_eq!(alerts.len(), 1);
    assert_eq!(label(&alerts[0], "service"), "checkout");
    assert_eq!(services(&plugin), vec!["checkout", "payments", "unknown"]);

    // The fifth error of payments fires payments alone, the fifth `unknown` fires `unknown`.
    let alerts = observe(&mut plugin, &[error("payments", 5.0)]);
    assert_eq!(alerts.len(), 1);
    assert_eq!(label(&alerts[0], "service"), "payments");
    let alerts = observe(
        &mut plugin,
        &[LogRecord {
            timestamp: at(6.0),
            ..LogRecord::new(21, "fatal")
        }],
    );
    assert_eq!(label(&alerts[0], "service"), "unknown");
}

#[test]
fn custom_service_attribute_and_alert_fields() {
    let mut plugin = detector(
        r#"{"threshold": 2, "service_attribute": "k8s.deployment.name",
            "alert_name": "CheckoutErrors", "severity": "critical", "min_severity": "fatal"}"#,
    );
    let record = |sev: u8, t: f64| LogRecord {
        timestamp: at(t),
        ..LogRecord::new(sev, "x").with_resource_attribute("k8s.deployment.name", "cart")
    };
    assert!(
        observe(
            &mut plugin,
            &[record(17, 0.0), record(17, 1.0), record(21, 2.0)]
        )
        .is_empty()
    );
    let alerts = observe(&mut plugin, &[record(24, 3.0)]);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].name, "CheckoutErrors");
    assert_eq!(alerts[0].severity, AlertSeverity::Critical);
    assert_eq!(label(&alerts[0], "service"), "cart");
}

#[test]
fn resolves_after_errors_stop() {
    let mut plugin = detector(r#"{"threshold": 5, "window_seconds": 60}"#);
    let fired = observe(&mut plugin, &errors("checkout", 10.0, 1.0, 5));
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].starts_at, at(14.0));

    // The error of second 10 leaves the window at 70: the count falls to 4 there, and the alert
    // resolves after resolve_after_seconds (default: the window, 60 s) at 130.
    assert!(tick(&mut plugin, 69.0).is_empty());
    assert!(tick(&mut plugin, 100.0).is_empty());
    assert!(tick(&mut plugin, 129.9).is_empty());
    let resolved = tick(&mut plugin, 131.0);
    assert_eq!(resolved.len(), 1, "{resolved:?}");
    let alert = &resolved[0];
    assert_eq!(alert.status, AlertStatus::Resolved);
    assert_eq!(alert.ends_at, Some(at(130.0)));
    // The same alert as the one that fired.
    assert_eq!(
        Alert {
            status: AlertStatus::Firing,
            ends_at: None,
            ..alert.clone()
        },
        fired[0]
    );
    assert!(tick(&mut plugin, 300.0).is_empty());
    // Nothing left to track.
    assert!(services(&plugin).is_empty());

    // A new burst is a new incident.
    let again = observe(&mut plugin, &errors("checkout", 400.0, 1.0, 5));
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].starts_at, at(404.0));
}

#[test]
fn resolution_does_not_depend_on_tick_cadence() {
    let mut one_tick = detector(r#"{"threshold": 5, "resolve_after_seconds": 10}"#);
    let mut many_ticks = detector(r#"{"threshold": 5, "resolve_after_seconds": 10}"#);
    observe(&mut one_tick, &errors("checkout", 0.0, 1.0, 5));
    observe(&mut many_ticks, &errors("checkout", 0.0, 1.0, 5));
    let mut resolved = Vec::new();
    for second in 5..200 {
        resolved.extend(tick(&mut many_ticks, f64::from(second)));
    }
    let single = tick(&mut one_tick, 1_000.0);
    assert_eq!(single, resolved);
    // Below at 60 (second 0 expired), resolved 10 s later.
    assert_eq!(single[0].ends_at, Some(at(70.0)));
}

#[test]
fn errors_returning_during_the_hold_keep_the_incident() {
    let mut plugin = detector(r#"{"threshold": 5, "resolve_after_seconds": 30}"#);
    assert_eq!(
        observe(&mut plugin, &errors("checkout", 0.0, 1.0, 5)).len(),
        1
    );
    // Below from 60; 20 s later errors come back above the threshold: no new alert.
    assert!(tick(&mut plugin, 80.0).is_empty());
    assert!(observe(&mut plugin, &errors("checkout", 80.0, 1.0, 5)).is_empty());
    // Not resolved at 90 (60 + 30), since the count went back up at 84.
    assert!(tick(&mut plugin, 95.0).is_empty());
    // Second 80 leaves the window at 140; resolved 30 s later.
    let resolved = tick(&mut plugin, 200.0);
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].starts_at, at(4.0));
    assert_eq!(resolved[0].ends_at, Some(at(170.0)));
}

#[test]
fn records_also_move_the_clock() {
    // Without any tick, newer records of the same service move its window on and resolve.
    let mut plugin = detector(r#"{"threshold": 5, "resolve_after_seconds": 0}"#);
    assert_eq!(
        observe(&mut plugin, &errors("checkout", 0.0, 1.0, 5)).len(),
        1
    );
    let alerts = observe(&mut plugin, &[error("checkout", 100.0)]);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].status, AlertStatus::Resolved);
    assert_eq!(alerts[0].ends_at, Some(at(60.0)));
}

#[test]
fn late_records_are_ignored_and_out_of_order_ones_counted() {
    let mut plugin = detector(r#"{"threshold": 3, "window_seconds": 60}"#);
    assert!(observe(&mut plugin, &[error("checkout", 100.0)]).is_empty());
    // 30 s and 59 s old: inside the window, counted.
    let alerts = observe(
        &mut plugin,
        &[error("checkout", 70.0), error("checkout", 41.0)],
    );
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].starts_at, at(100.0));
    // 60 s old: outside, ignored.
    let mut quiet = detector(r#"{"threshold": 2, "window_seconds": 60}"#);
    observe(&mut quiet, &[error("checkout", 100.0)]);
    assert!(
        observe(
            &mut quiet,
            &[error("checkout", 40.0), error("checkout", 10.0)]
        )
        .is_empty()
    );
    assert!(
        host::recorded_counters()
            .iter()
            .any(|(name, total)| name == "late_records" && *total >= 2)
    );
}

#[test]
fn falls_back_to_observed_time() {
    let mut plugin = detector(r#"{"threshold": 3}"#);
    let records: Vec<LogRecord> = (0..3)
        .map(|i| LogRecord {
            timestamp: 0,
            observed_timestamp: at(10.0 + f64::from(i)),
            ..LogRecord::new(17, "x").with_resource_attribute("service.name", "checkout")
        })
        .collect();
    let alerts = observe(&mut plugin, &records);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].starts_at, at(12.0));
}

#[test]
fn a_record_from_the_far_future_counts_at_its_observed_time() {
    let mut plugin = detector(r#"{"threshold": 3}"#);
    let future = LogRecord {
        timestamp: at(365.0 * 86_400.0),
        observed_timestamp: at(0.0),
        ..error("checkout", 0.0)
    };
    assert!(observe(&mut plugin, &[future]).is_empty());
    // Had the clock jumped a year ahead, these would be dropped as late.
    let alerts = observe(
        &mut plugin,
        &[error("checkout", 1.0), error("checkout", 2.0)],
    );
    assert_eq!(alerts.len(), 1);
}

#[test]
fn ticks_follow_a_delayed_stream() {
    // Records reach the gateway 120 s after they happen, more than the window, and the
    // gateway ticks every wall-clock second. The ticks must not flush them as if their event
    // time were the gateway's clock.
    let delayed = |t: f64| LogRecord {
        observed_timestamp: at(t + 120.0),
        ..error("checkout", t)
    };
    let mut plugin = detector(r#"{"threshold": 4, "window_seconds": 60}"#);
    let mut alerts = observe(&mut plugin, &[delayed(0.0), delayed(1.0)]);
    for wall in 122..126 {
        plugin.tick(at(f64::from(wall)), &mut alerts);
    }
    alerts.extend(observe(&mut plugin, &[delayed(5.0), delayed(6.0)]));
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].starts_at, at(6.0));
    // Idle time still counts: once the stream stops, each quiet wall-clock second moves the
    // event clock on by a second. Below at 60 s event time, resolved 60 s later, at 120 s,
    // which the clock reaches at wall time 127 + (120 - 6) = 241.
    let mut resolved = Vec::new();
    for wall in 126..240 {
        plugin.tick(at(f64::from(wall)), &mut resolved);
    }
    assert!(resolved.is_empty(), "{resolved:?}");
    for wall in 240..300 {
        plugin.tick(at(f64::from(wall)), &mut resolved);
    }
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].ends_at, Some(at(120.0)));
}

#[test]
fn ticks_do_not_disturb_a_replay() {
    // A recorded file replayed fast, ten days later: old timestamps, no observed time, and the
    // gateway's ticks at today's wall clock between batches. The alerts are those of the same
    // records without any tick.
    let wall = at(10.0 * 86_400.0);
    let mut records = errors("checkout", 0.0, 2.0, 40);
    records.extend((0..80).map(|i| info("frontend", f64::from(i))));
    records.sort_by_key(|record| record.timestamp);
    let config = r#"{"threshold": 20, "resolve_after_seconds": 10}"#;
    let mut replayed = detector(config);
    let mut alerts = Vec::new();
    for (index, batch) in records.chunks(4).enumerate() {
        alerts.extend(observe(&mut replayed, batch));
        replayed.tick(wall + index as i64 * 100_000_000, &mut alerts);
    }
    let mut plain = detector(config);
    let expected = observe(&mut plain, &records);
    // The summaries differ only in the count at the end of the batch that crossed.
    let key = |alert: &Alert| {
        (
            alert.status,
            alert.labels.clone(),
            alert.starts_at,
            alert.ends_at,
        )
    };
    assert_eq!(
        alerts.iter().map(key).collect::<Vec<_>>(),
        expected.iter().map(key).collect::<Vec<_>>()
    );
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].starts_at, at(38.0));
    // The replay ends: quiet ticks resolve it (below at 100 s when second 40 leaves; 10 s later).
    let end = wall + 31 * 100_000_000;
    let mut resolved = Vec::new();
    replayed.tick(end + 30 * NANOS_PER_SECOND, &mut resolved);
    assert!(resolved.is_empty(), "{resolved:?}");
    replayed.tick(end + 60 * NANOS_PER_SECOND, &mut resolved);
    assert_eq!(resolved.len(), 1, "{resolved:?}");
    assert_eq!(resolved[0].ends_at, Some(at(110.0)));
}

#[test]
fn a_service_trailing_the_others_keeps_its_own_clock() {
    // `batch-jobs` ships its logs two minutes late, more than the window; `frontend` is live.
    // Its errors are neither late nor flushed by the others' newer times, and ticks while the
    // stream flows do not move anything.
    let mut plugin = detector(r#"{"threshold": 5, "window_seconds": 60}"#);
    let mut alerts = Vec::new();
    for second in 0..10 {
        let now = 200.0 + f64::from(second);
        let batch = [info("frontend", now), error("batch-jobs", now - 120.0)];
        alerts.extend(observe(&mut plugin, &batch));
        plugin.tick(at(now + 0.5), &mut alerts);
    }
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(label(&alerts[0], "service"), "batch-jobs");
    assert_eq!(alerts[0].starts_at, at(84.0));
    assert_eq!(plugin.registry.services["batch-jobs"].window.errors(), 10);
    // Frontend goes on alone: batch-jobs' clock follows, two minutes behind. Its errors (80
    // to 89) leave the window from 140, and the alert resolves a window later, at 205 (the
    // count falls below 5 when second 85 leaves, at 145).
    for second in 10..200 {
        let now = 200.0 + f64::from(second);
        alerts.extend(observe(&mut plugin, &[info("frontend", now)]));
    }
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert_eq!(alerts[1].status, AlertStatus::Resolved);
    assert_eq!(alerts[1].ends_at, Some(at(205.0)));
}

#[test]
fn min_ratio_requires_errors_to_be_a_share_of_the_traffic() {
    let mut plugin = detector(r#"{"threshold": 5, "min_ratio": 0.5}"#);
    // Busy service: 5 errors among 25 records (20%): quiet.
    let mut busy: Vec<LogRecord> = (0..20)
        .map(|i| info("frontend", f64::from(i) * 0.5))
        .collect();
    busy.extend(errors("frontend", 0.0, 1.0, 5));
    busy.sort_by_key(|record| record.timestamp);
    assert!(observe(&mut plugin, &busy).is_empty());
    // Failing service: 5 errors among 7 records.
    let mut failing = vec![info("checkout", 0.0), info("checkout", 0.5)];
    failing.extend(errors("checkout", 1.0, 1.0, 5));
    let alerts = observe(&mut plugin, &failing);
    assert_eq!(alerts.len(), 1);
    assert_eq!(label(&alerts[0], "service"), "checkout");
    assert_eq!(
        alerts[0].summary,
        "service checkout: 5 errors in the last 60 s (threshold 5), 71.4% of 7 records (min 50%)"
    );
    // The busy service crosses once its early records leave the window. With 5 more errors at
    // 50 s: at 66 s (second 6 gone) 5 errors of 11 records remain, 45%; at 67 s (second 7 gone)
    // 5 of 9, 56%: it fires then.
    let alerts = observe(&mut plugin, &errors("frontend", 50.0, 0.1, 5));
    assert!(alerts.is_empty(), "10 errors of 30 records: {alerts:?}");
    assert!(tick(&mut plugin, 66.5).is_empty());
    let alerts = tick(&mut plugin, 70.0);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(label(&alerts[0], "service"), "frontend");
    assert_eq!(alerts[0].starts_at, at(67.0));
}

#[test]
fn snapshot_and_restore_mid_burst_continue_the_incident() {
    let config = r#"{"threshold": 5, "resolve_after_seconds": 30}"#;
    let mut before = detector(config);
    observe(&mut before, &errors("payments", 0.0, 1.0, 2));
    let fired = observe(&mut before, &errors("checkout", 0.0, 1.0, 6));
    assert_eq!(fired.len(), 1);
    let state = before.snapshot();
    assert!(state.starts_with(b"{\"version\":2,"));

    let mut after = detector(config);
    after.restore(&state).expect("restores");
    assert_eq!(after.registry.services, before.registry.services);
    // The burst goes on: no second Firing alert.
    assert!(observe(&mut after, &errors("checkout", 6.0, 1.0, 20)).is_empty());
    // The restored window still counts: 3 more payments errors make 5.
    let alerts = observe(&mut after, &errors("payments", 10.0, 1.0, 3));
    assert_eq!(alerts.len(), 1);
    assert_eq!(label(&alerts[0], "service"), "payments");
    // Checkout's last errors are at 25; second 25 leaves at 85, but it went below 5 once
    // second 21 left, at 81; resolved 30 s later, as the same alert that fired before.
    let resolved: Vec<Alert> = tick(&mut after, 200.0)
        .into_iter()
        .filter(|alert| label(alert, "service") == "checkout")
        .collect();
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].ends_at, Some(at(111.0)));
    assert_eq!(
        Alert {
            status: AlertStatus::Firing,
            ends_at: None,
            ..resolved[0].clone()
        },
        fired[0]
    );
}

#[test]
fn restore_reads_version_1_state() {
    let mut before = detector(r#"{"threshold": 5, "resolve_after_seconds": 0}"#);
    let fired = observe(&mut before, &errors("checkout", 0.0, 1.0, 5));
    assert_eq!(fired.len(), 1);
    let text = String::from_utf8(before.snapshot()).unwrap();
    let version_1 = text
        .replace("\"version\":2", "\"version\":1")
        .replace("\"last_tick\":null,\"events_since_tick\":true,", "");
    assert!(!version_1.contains("tick"), "{version_1}");
    let mut after = detector(r#"{"threshold": 5, "resolve_after_seconds": 0}"#);
    after
        .restore(version_1.as_bytes())
        .expect("reads version 1");
    // The incident continues and resolves once second 0 leaves the window.
    assert!(observe(&mut after, &[error("checkout", 5.0)]).is_empty());
    let resolved = observe(&mut after, &[info("checkout", 61.0)]);
    assert_eq!(resolved.len(), 1, "{resolved:?}");
    assert_eq!(resolved[0].ends_at, Some(at(61.0)));
}

#[test]
fn restore_survives_a_changed_config() {
    let mut before = detector(r#"{"threshold": 5, "window_seconds": 60}"#);
    let fired = observe(&mut before, &errors("checkout", 0.0, 1.0, 5));
    let state = before.snapshot();
    // A longer window (wider buckets) and a new alert name after the restart: the old incident
    // continues and resolves under the name it fired with.
    let mut after = detector(
        r#"{"threshold": 5, "window_seconds": 600, "resolve_after_seconds": 0, "alert_name": "New"}"#,
    );
    after.restore(&state).unwrap();
    assert!(observe(&mut after, &[error("checkout", 6.0)]).is_empty());
    let resolved = tick(&mut after, 1_000.0);
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].name, fired[0].name);
    assert_eq!(label(&resolved[0], "window"), "60s");
}

#[test]
fn restore_rejects_garbage_and_keeps_the_state() {
    let mut plugin = detector(r#"{"threshold": 5}"#);
    observe(&mut plugin, &errors("checkout", 0.0, 1.0, 5));
    let good = plugin.snapshot();
    let text = String::from_utf8(good.clone()).unwrap();

    let bad: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"garbage".to_vec(),
        vec![0xff, 0x00, 0x13],
        b"{}".to_vec(),
        b"[1,2,3]".to_vec(),
        br#"{"version": 99}"#.to_vec(),
        br#"{"version": 1}"#.to_vec(),
        text.replace("\"latest\"", "\"surprise\"").into_bytes(),
        text.replace("\"bucket_seconds\":1", "\"bucket_seconds\":0")
            .into_bytes(),
        text.replace("\"clock\":", "\"clock\":-").into_bytes(),
        good[..good.len() / 2].to_vec(),
    ];
    for state in bad {
        let result = plugin.restore(&state);
        assert!(
            result.is_err(),
            "accepted {:?}",
            String::from_utf8_lossy(&state)
        );
    }
    assert!(
        plugin
            .restore(br#"{"version": 3, "whatever": true}"#)
            .unwrap_err()
            .contains("version 3")
    );
    // Still firing: no second alert for the same burst, and the state is what it was.
    assert!(observe(&mut plugin, &errors("checkout", 5.0, 1.0, 5)).is_empty());
    assert!(plugin.restore(&good).is_ok());
}

#[test]
fn state_is_bounded_by_max_services() {
    let mut plugin = detector(r#"{"threshold": 2, "max_services": 3}"#);
    // `s0` fires, then nine other services arrive.
    assert_eq!(observe(&mut plugin, &errors("s0", 0.0, 1.0, 2)).len(), 1);
    let mut alerts = Vec::new();
    for i in 1..10 {
        alerts.extend(observe(
            &mut plugin,
            &[error(&format!("s{i}"), 2.0 + f64::from(i))],
        ));
        assert!(plugin.registry.services.len() <= 3);
        assert_eq!(
            plugin.registry.recency.len(),
            plugin.registry.services.len()
        );
    }
    assert_eq!(services(&plugin), vec!["s7", "s8", "s9"]);
    // The firing service was forgotten: its alert was resolved rather than left firing forever.
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].status, AlertStatus::Resolved);
    assert_eq!(label(&alerts[0], "service"), "s0");

    // Seeing a service again makes it the most recent.
    observe(&mut plugin, &[error("s7", 20.0)]);
    observe(&mut plugin, &[error("s10", 21.0)]);
    assert_eq!(services(&plugin), vec!["s10", "s7", "s9"]);

    // A restore into a smaller bound shrinks at the next tick.
    let state = plugin.snapshot();
    let mut smaller = detector(r#"{"threshold": 2, "max_services": 1}"#);
    smaller.restore(&state).unwrap();
    tick(&mut smaller, 22.0);
    assert_eq!(services(&smaller), vec!["s10"]);
}

#[test]
fn many_services_in_one_batch_stay_bounded() {
    let mut plugin = detector(r#"{"threshold": 1000, "max_services": 100}"#);
    let records: Vec<LogRecord> = (0..5_000)
        .map(|i| error(&format!("svc-{i}"), f64::from(i) * 0.001))
        .collect();
    assert!(observe(&mut plugin, &records).is_empty());
    assert_eq!(plugin.registry.services.len(), 100);
    assert_eq!(plugin.registry.recency.len(), 100);
    // Long names are cut.
    let long = "x".repeat(10_000);
    observe(&mut plugin, &[error(&long, 10.0)]);
    assert!(
        plugin
            .registry
            .services
            .keys()
            .all(|name| name.len() <= MAX_SERVICE_NAME_BYTES)
    );
}

#[test]
fn default_config() {
    let plugin = detector("");
    let settings = &plugin.settings;
    assert_eq!(settings.min_severity, 17);
    assert_eq!(settings.window_seconds, 60);
    assert_eq!(settings.threshold, 50);
    assert_eq!(settings.min_ratio, 0.0);
    assert_eq!(settings.service_attribute, "service.name");
    assert_eq!(settings.resolve_after, 60 * NANOS_PER_SECOND);
    assert_eq!(settings.max_services, 10_000);
    assert_eq!(settings.alert_name, "ErrorBurst");
    assert_eq!(settings.severity, AlertLevel::Error);
    // resolve_after_seconds follows the window unless set.
    let plugin = detector(r#"{"window_seconds": 300}"#);
    assert_eq!(plugin.settings.resolve_after, 300 * NANOS_PER_SECOND);
    assert!(ErrorBurst::from_json_config("null").is_ok());
    assert!(ErrorBurst::from_json_config(r#"{"severity": "warning", "min_severity": 21}"#).is_ok());
}

#[test]
fn rejects_bad_config() {
    let error = |config: &str| match ErrorBurst::from_json_config(config) {
        Ok(_) => panic!("accepted {config}"),
        Err(error) => error,
    };
    for (config, expected) in [
        (r#"{"window_seconds": 0}"#, "window_seconds 0"),
        (r#"{"window_seconds": 100000}"#, "window_seconds 100000"),
        (r#"{"threshold": 0}"#, "threshold"),
        (r#"{"threshold": -3}"#, "invalid value"),
        (r#"{"min_ratio": 1.5}"#, "min_ratio 1.5"),
        (r#"{"min_ratio": -0.1}"#, "min_ratio -0.1"),
        (r#"{"min_severity": 30}"#, "min_severity 30"),
        (r#"{"min_severity": 0}"#, "min_severity 0"),
        (r#"{"min_severity": "loud"}"#, "loud"),
        (r#"{"service_attribute": " "}"#, "service_attribute"),
        (r#"{"max_services": 0}"#, "max_services"),
        (r#"{"alert_name": ""}"#, "alert_name"),
        (r#"{"severity": "info"}"#, "unknown variant `info`"),
        (r#"{"window": 60}"#, "unknown field `window`"),
        (r#"{"window_seconds": "60"}"#, "invalid type"),
        ("not json", "invalid plugin config"),
    ] {
        let message = error(config);
        assert!(message.contains(expected), "{config}: {message}");
    }
    // Every problem is reported at once.
    let message = error(r#"{"threshold": 0, "max_services": 0}"#);
    assert!(message.contains("threshold") && message.contains("max_services"));
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

/// The sample file as records.
fn sample_records() -> Vec<LogRecord> {
    include_str!("../samples/records.jsonl")
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let json: serde_json::Value = serde_json::from_str(line).expect("sample line is JSON");
            let timestamp = match &json["timestamp"] {
                serde_json::Value::String(text) => parse_utc(text),
                other => other.as_i64().expect("timestamp"),
            };
            let mut record = LogRecord::new(
                json["severity_number"].as_u64().expect("severity_number") as u8,
                json["body"].as_str().unwrap_or(""),
            );
            record.timestamp = timestamp;
            record.severity_text = json["severity_text"].as_str().unwrap_or("").to_owned();
            for (key, value) in json["resource"].as_object().into_iter().flatten() {
                record = record.with_resource_attribute(key, value.as_str().unwrap_or(""));
            }
            record
        })
        .collect()
}

#[test]
fn sample_file_fires_once_for_checkout_and_resolves() {
    assert_eq!(parse_utc("2026-11-23T10:00:00Z"), at(0.0));
    assert_eq!(parse_utc("2026-11-23T10:02:24.500Z"), at(144.5));
    let records = sample_records();
    assert!((90..=120).contains(&records.len()));
    let mut plugin = detector("");
    let mut alerts = Vec::new();
    for batch in records.chunks(10) {
        alerts.extend(observe(&mut plugin, batch));
    }
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(label(&alerts[0], "service"), "checkout");
    // The 50th error within 60 s: the burst from 10:02:00 plus the error of 10:01:44.
    assert_eq!(alerts[0].starts_at, parse_utc("2026-11-23T10:02:24Z"));
    // Count back below 50 at 10:03:03; resolved a window later.
    assert!(tick(&mut plugin, 240.0).is_empty());
    let resolved = tick(&mut plugin, 300.0);
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].ends_at, Some(parse_utc("2026-11-23T10:04:03Z")));
}
