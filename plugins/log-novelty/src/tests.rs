use super::*;
use sluice_sdk::{AlertSeverity, LogRecord};

/// 2026-11-23T10:00:00Z, in seconds.
const BASE_SECONDS: i64 = 1_795_428_000;

/// The config most tests use: 10 minutes of learning, 5 minutes to resolve, bursts of 10 in
/// 5 minutes.
const CONFIG: &str = r#"{"learning_period_seconds": 600, "resolve_after_seconds": 300,
    "burst_count": 10, "burst_window_seconds": 300}"#;

/// Unix nanoseconds `seconds` after the base time.
fn at(seconds: f64) -> i64 {
    BASE_SECONDS * NANOS_PER_SECOND + (seconds * 1e9).round() as i64
}

fn record(service: &str, severity: u8, seconds: f64, body: &str) -> LogRecord {
    LogRecord {
        timestamp: at(seconds),
        ..LogRecord::new(severity, body).with_resource_attribute("service.name", service)
    }
}

/// A small deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }

    fn hex(&mut self, digits: usize) -> String {
        (0..digits)
            .map(|_| char::from_digit(self.next(16) as u32, 16).unwrap_or('0'))
            .collect()
    }

    fn uuid(&mut self) -> String {
        format!(
            "{}-{}-{}-{}-{}",
            self.hex(8),
            self.hex(4),
            self.hex(4),
            self.hex(4),
            self.hex(12)
        )
    }
}

/// Normal traffic of three services, one record every `step` seconds in `[from, to)`, with
/// numbers, ids, addresses and names varying from line to line.
fn normal_logs(rng: &mut Rng, from: f64, to: f64, step: f64) -> Vec<LogRecord> {
    let mut records = Vec::new();
    let mut time = from;
    while time < to {
        let (service, severity, body) = match rng.next(10) {
            0 => (
                "frontend",
                9,
                format!(
                    "GET /api/v1/products/{} 200 {}ms",
                    rng.next(9000),
                    rng.next(400)
                ),
            ),
            1 => (
                "frontend",
                9,
                format!(
                    "user u{} session {} started from 10.1.{}.{}",
                    rng.next(100_000),
                    rng.uuid(),
                    rng.next(255),
                    rng.next(255)
                ),
            ),
            2 => (
                "frontend",
                9,
                format!(
                    "POST /api/v1/cart/{} 201 {}ms",
                    rng.next(9000),
                    rng.next(400)
                ),
            ),
            3 => (
                "checkout",
                9,
                format!(
                    "cart {} priced: {} items, total {}.{:02} EUR",
                    rng.hex(6),
                    rng.next(20),
                    rng.next(500),
                    rng.next(100)
                ),
            ),
            4 => (
                "checkout",
                9,
                format!(
                    "order {} placed for customer cust-{}",
                    rng.next(1_000_000),
                    rng.next(5_000)
                ),
            ),
            5 => (
                "checkout",
                5,
                format!(
                    "cache lookup key=order:{} hit={}",
                    rng.next(1000),
                    rng.next(2)
                ),
            ),
            6 => (
                "payments",
                9,
                format!(
                    "refund {} queued by {}",
                    rng.hex(8),
                    ["alice", "bob", "carol"][rng.next(3) as usize]
                ),
            ),
            7 => (
                "payments",
                9,
                format!(
                    "connected to 10.0.{}.{}:5432 in {}ms",
                    rng.next(255),
                    rng.next(255),
                    rng.next(50)
                ),
            ),
            8 => (
                "payments",
                13,
                format!("retrying provider call, attempt {} of 3", rng.next(3) + 1),
            ),
            _ => (
                "checkout",
                13,
                format!("slow query on table orders: {}ms", 500 + rng.next(3000)),
            ),
        };
        records.push(record(service, severity, time, &body));
        time += step;
    }
    records
}

fn detector(config: &str) -> LogNovelty {
    LogNovelty::from_json_config(config).expect("valid config")
}

/// Feeds `records` in batches of `batch_size`; returns the alerts.
fn feed(plugin: &mut LogNovelty, records: &[LogRecord], batch_size: usize) -> Vec<Alert> {
    let mut alerts = Vec::new();
    for batch in records.chunks(batch_size) {
        plugin.observe(&LogBatch::from_records(batch), &mut alerts);
    }
    alerts
}

fn tick(plugin: &mut LogNovelty, seconds: f64) -> Vec<Alert> {
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

fn templates(plugin: &LogNovelty, service: &str) -> Vec<String> {
    plugin.registry.services[service]
        .drain
        .clusters()
        .map(|(_, cluster)| cluster.text())
        .collect()
}

/// A plugin that learnt 20 minutes of normal traffic (10 of them after learning).
fn learnt(config: &str) -> (LogNovelty, Rng) {
    let mut rng = Rng(7);
    let mut plugin = detector(config);
    let alerts = feed(&mut plugin, &normal_logs(&mut rng, 0.0, 1200.0, 0.5), 100);
    assert!(alerts.is_empty(), "normal traffic raised {alerts:?}");
    (plugin, rng)
}

#[test]
fn normal_traffic_learns_few_templates_and_stays_quiet() {
    let (mut plugin, mut rng) = learnt(CONFIG);
    // Masking and merging keep each service to its handful of templates.
    for (service, expected) in [("frontend", 3), ("checkout", 4), ("payments", 3)] {
        let found = templates(&plugin, service);
        assert_eq!(found.len(), expected, "{service}: {found:#?}");
    }
    let found = templates(&plugin, "frontend");
    assert!(
        found.contains(&"user <*> session <UUID> started from <IP>".to_owned()),
        "{found:#?}"
    );
    // Another hour of the same traffic, ticks included: nothing.
    let later = normal_logs(&mut rng, 1200.0, 4800.0, 0.5);
    let mut alerts = Vec::new();
    for (index, batch) in later.chunks(200).enumerate() {
        plugin.observe(&LogBatch::from_records(batch), &mut alerts);
        plugin.tick(at(1200.0 + index as f64), &mut alerts);
    }
    assert!(alerts.is_empty(), "{alerts:?}");
}

#[test]
fn new_error_template_fires_once_and_resolves_once() {
    let (mut plugin, mut rng) = learnt(CONFIG);
    let mut records = normal_logs(&mut rng, 1200.0, 1500.0, 0.5);
    // The precursor: a never-seen error, repeated with varying numbers, among normal traffic.
    for (i, time) in [1300.25, 1310.25, 1340.75, 1400.25].into_iter().enumerate() {
        let body = format!(
            "payment provider timeout after {}ms, circuit open",
            3000 + i * 17
        );
        records.push(record("checkout", 17, time, &body));
    }
    records.sort_by_key(|record| record.timestamp);
    let alerts = feed(&mut plugin, &records, 64);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let alert = &alerts[0];
    assert_eq!(alert.name, "LogNovelty");
    assert_eq!(alert.status, AlertStatus::Firing);
    assert_eq!(alert.severity, AlertSeverity::Warning);
    assert_eq!(alert.starts_at, at(1300.25));
    assert_eq!(label(alert, "service"), "checkout");
    assert_eq!(label(alert, "template_id").len(), 16);
    assert!(alert.fingerprint.is_empty());
    assert!(
        alert.summary.contains(
            "new ERROR log template `payment provider timeout after <NUM>ms, circuit open`"
        ) && alert
            .summary
            .contains("e.g. `payment provider timeout after 3000ms"),
        "{}",
        alert.summary
    );
    // Normal traffic goes on: the alert resolves 300 s after the template's last line.
    let alerts = feed(&mut plugin, &normal_logs(&mut rng, 1500.0, 1800.0, 0.5), 64);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let resolved = &alerts[0];
    assert_eq!(resolved.status, AlertStatus::Resolved);
    assert_eq!(resolved.name, "LogNovelty");
    assert_eq!(resolved.labels, alert.labels);
    assert_eq!(resolved.starts_at, alert.starts_at);
    assert_eq!(resolved.ends_at, Some(at(1700.25)));
    // The template is known now: it raises nothing more.
    let again = record(
        "checkout",
        17,
        1900.0,
        "payment provider timeout after 1ms, circuit open",
    );
    assert!(feed(&mut plugin, &[again], 1).is_empty());
}

#[test]
fn new_template_below_min_severity_is_quiet() {
    let (mut plugin, _) = learnt(CONFIG);
    let records = [
        record(
            "checkout",
            9,
            1300.0,
            "feature flag new-pricing enabled for tenant 42",
        ),
        record(
            "payments",
            5,
            1301.0,
            "debug dump of provider handshake follows",
        ),
    ];
    assert!(feed(&mut plugin, &records, 10).is_empty());
    // With a lower bar, the same kind of line fires.
    let (mut plugin, _) = learnt(&CONFIG.replace('}', r#", "min_severity": "info"}"#));
    let alerts = feed(&mut plugin, &records, 10);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(label(&alerts[0], "service"), "checkout");
}

#[test]
fn same_sentence_at_a_new_level_is_new() {
    let (mut plugin, _) = learnt(CONFIG);
    // Learnt as INFO; as ERROR it is a new template.
    let line = record("payments", 17, 1300.0, "refund 1a2b3c4d queued by alice");
    let alerts = feed(&mut plugin, &[line], 1);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert!(
        alerts[0]
            .summary
            .contains("new ERROR log template `refund <HEX> queued by alice`")
    );
}

#[test]
fn severity_text_stands_in_for_a_missing_number() {
    let (mut plugin, _) = learnt(CONFIG);
    let mut line = record("payments", 0, 1300.0, "ledger checksum mismatch on shard 3");
    line.severity_text = "ERROR".to_owned();
    let alerts = feed(&mut plugin, &[line], 1);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
}

#[test]
fn nothing_fires_during_learning() {
    let mut plugin = detector(CONFIG);
    let records = [
        record("payments", 9, 0.0, "started"),
        record("payments", 21, 100.0, "ledger checksum mismatch on shard 3"),
    ];
    assert!(feed(&mut plugin, &records, 1).is_empty());
    // Learning is per service, from its first record: a service first seen late learns then.
    let late = record("search", 17, 2000.0, "index shard 4 unavailable");
    assert!(feed(&mut plugin, &[late], 1).is_empty());
    let after = record("search", 17, 2700.0, "replica lag exceeded on shard 4");
    assert_eq!(feed(&mut plugin, &[after], 1).len(), 1);
}

/// A rare error template seen once during learning, then `count` times from `start`, every
/// `step` seconds, amid normal traffic until `end`.
fn rare_burst(rng: &mut Rng, start: f64, step: f64, count: usize, end: f64) -> Vec<LogRecord> {
    let mut records = normal_logs(rng, 1200.0, end, 0.5);
    for i in 0..count {
        let body = format!("ledger sync lagging by {} entries", 100 + i);
        records.push(record(
            "payments",
            17,
            start + step * i as f64 + 0.25,
            &body,
        ));
    }
    records.sort_by_key(|record| record.timestamp);
    records
}

/// A learnt plugin that also saw the rare template once, at 100 s.
fn learnt_with_rare(config: &str) -> (LogNovelty, Rng) {
    let mut rng = Rng(11);
    let mut plugin = detector(config);
    let mut records = normal_logs(&mut rng, 0.0, 1200.0, 0.5);
    records.push(record(
        "payments",
        17,
        100.25,
        "ledger sync lagging by 3 entries",
    ));
    records.sort_by_key(|record| record.timestamp);
    assert!(feed(&mut plugin, &records, 100).is_empty());
    (plugin, rng)
}

#[test]
fn rare_template_burst_fires_once_and_resolves() {
    let (mut plugin, mut rng) = learnt_with_rare(CONFIG);
    // 12 occurrences 10 s apart from 2000 s: the 10th (at 2090.25) makes 10 in 300 s.
    let records = rare_burst(&mut rng, 2000.0, 10.0, 12, 2300.0);
    let alerts = feed(&mut plugin, &records, 50);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let alert = &alerts[0];
    assert_eq!(alert.name, "LogTemplateBurst");
    assert_eq!(alert.starts_at, at(2090.25));
    assert_eq!(label(alert, "service"), "payments");
    assert!(
        alert
            .summary
            .contains("rare ERROR log template `ledger sync lagging by <NUM> entries`")
            && alert.summary.contains("seen 10 times in 300 s"),
        "{}",
        alert.summary
    );
    // The count drops below 10 when the 10th newest (2020.25) leaves the window.
    let alerts = feed(&mut plugin, &normal_logs(&mut rng, 2300.0, 2320.0, 0.5), 50);
    assert!(alerts.is_empty(), "{alerts:#?}");
    let resolved = feed(&mut plugin, &normal_logs(&mut rng, 2320.0, 2700.0, 0.5), 50);
    // Nothing else: the sparse occurrences before the burst do not reach 10 again.
    assert_eq!(resolved.len(), 1, "{resolved:#?}");
    assert_eq!(resolved[0].status, AlertStatus::Resolved);
    assert_eq!(resolved[0].labels, alert.labels);
    assert_eq!(resolved[0].ends_at, Some(at(2320.25)));
}

#[test]
fn frequent_templates_and_slow_trickles_do_not_burst() {
    let (mut plugin, mut rng) = learnt_with_rare(CONFIG);
    // The rare template, 9 times in 300 s: below the bound.
    let records = rare_burst(&mut rng, 2000.0, 33.0, 9, 2400.0);
    assert!(feed(&mut plugin, &records, 50).is_empty());
    // A frequent baseline warning at 10 in 300 s is not rare.
    let (mut plugin, mut rng) = learnt_with_rare(CONFIG);
    let mut records = normal_logs(&mut rng, 1200.0, 1500.0, 0.5);
    for i in 0..20 {
        let body = format!("retrying provider call, attempt {} of 3", i % 3 + 1);
        records.push(record("payments", 13, 1300.0 + f64::from(i), &body));
    }
    records.sort_by_key(|record| record.timestamp);
    assert!(feed(&mut plugin, &records, 50).is_empty());
}

#[test]
fn new_template_bursting_right_away_raises_only_novelty() {
    let (mut plugin, _) = learnt(CONFIG);
    let records: Vec<LogRecord> = (0..30)
        .map(|i| {
            let body = format!("disk /data{i} write error, errno 5");
            record("payments", 17, 1300.0 + f64::from(i), &body)
        })
        .collect();
    let alerts = feed(&mut plugin, &records, 7);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].name, "LogNovelty");
}

#[test]
fn ticks_resolve_when_the_stream_stops_but_not_during_a_fast_replay() {
    let (mut plugin, _) = learnt(CONFIG);
    let error = record(
        "checkout",
        17,
        1300.0,
        "inventory service unreachable, using stale prices",
    );
    assert_eq!(feed(&mut plugin, &[error], 1).len(), 1);
    // A replay pushing records fast: ticks between batches do not move the clock, whatever
    // the wall clock says.
    let wall = 5_000_000.0;
    assert!(tick(&mut plugin, wall).is_empty());
    let early = record("frontend", 9, 1301.0, "GET /api/v1/products/1 200 3ms");
    assert!(feed(&mut plugin, &[early], 1).is_empty());
    assert!(tick(&mut plugin, wall + 1.0).is_empty());
    assert_eq!(plugin.clock, at(1301.0));
    // The stream stops: each quiet tick moves the clock by the wall time since the last.
    assert!(tick(&mut plugin, wall + 200.0).is_empty());
    assert_eq!(plugin.clock, at(1500.0));
    let resolved = tick(&mut plugin, wall + 400.0);
    assert_eq!(resolved.len(), 1, "{resolved:#?}");
    assert_eq!(resolved[0].ends_at, Some(at(1600.0)));
}

#[test]
fn same_alerts_whatever_the_batch_size() {
    let run = |batch_size: usize| {
        let (mut plugin, mut rng) = learnt_with_rare(CONFIG);
        let mut records = rare_burst(&mut rng, 2000.0, 10.0, 12, 2800.0);
        records.push(record(
            "checkout",
            17,
            2100.0,
            "payment provider timeout, circuit open",
        ));
        records.sort_by_key(|record| record.timestamp);
        feed(&mut plugin, &records, batch_size)
            .into_iter()
            .map(|alert| {
                (
                    alert.name,
                    alert.status,
                    alert.labels,
                    alert.starts_at,
                    alert.ends_at,
                )
            })
            .collect::<BTreeSet<_>>()
    };
    let one = run(1);
    assert_eq!(one.len(), 4, "{one:#?}");
    assert_eq!(run(1000), one);
    assert_eq!(run(37), one);
}

#[test]
fn template_cap_evicts_least_recently_seen_and_counts() {
    let mut plugin = detector(r#"{"learning_period_seconds": 0, "max_clusters": 3}"#);
    let lines = [
        "alpha started",
        "beta connection opened to primary",
        "gamma cache warmed in full",
        "alpha started",
        "delta queue drained after flush completed",
    ];
    for (i, line) in lines.into_iter().enumerate() {
        feed(&mut plugin, &[record("svc", 9, i as f64, line)], 1);
    }
    let mut found = templates(&plugin, "svc");
    found.sort();
    assert_eq!(
        found,
        [
            "alpha started",
            "delta queue drained after flush completed",
            "gamma cache warmed in full"
        ]
    );
    let evicted = sluice_sdk::host::recorded_counters()
        .into_iter()
        .find(|(name, _)| name == "templates_evicted");
    assert!(evicted.is_some_and(|(_, count)| count >= 1));
    // An evicted template that fired resolves as it goes.
    let mut plugin = detector(r#"{"learning_period_seconds": 0, "max_clusters": 1}"#);
    let fired = feed(
        &mut plugin,
        &[record("svc", 17, 1.0, "disk failure on sda")],
        1,
    );
    assert_eq!(fired.len(), 1);
    let next = feed(
        &mut plugin,
        &[record("svc", 9, 2.0, "volume remounted read only now")],
        1,
    );
    assert_eq!(next.len(), 1, "{next:#?}");
    assert_eq!(next[0].status, AlertStatus::Resolved);
    assert_eq!(next[0].labels, fired[0].labels);
    assert_eq!(next[0].ends_at, Some(at(2.0)));
}

#[test]
fn service_cap_evicts_least_recently_seen_and_bounds_lines() {
    let mut plugin = detector(r#"{"max_services": 2, "max_tokens": 4, "max_line_bytes": 64}"#);
    for (i, service) in ["a", "b", "a", "c"].into_iter().enumerate() {
        feed(
            &mut plugin,
            &[record(service, 9, i as f64, "hello there")],
            1,
        );
    }
    let tracked: Vec<&str> = plugin
        .registry
        .services
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(tracked, ["a", "c"]);
    let long = "word ".repeat(1000);
    let name = "s".repeat(1000);
    feed(&mut plugin, &[record(&name, 9, 5.0, &long)], 1);
    let service = plugin
        .registry
        .services
        .keys()
        .find(|n| n.starts_with('s'))
        .cloned()
        .unwrap();
    assert_eq!(service.len(), 256);
    assert_eq!(templates(&plugin, &service), ["word word word word"]);
}

#[test]
fn restore_keeps_the_tree_exactly() {
    let (plugin, mut rng) = learnt(CONFIG);
    let state = plugin.snapshot();
    let mut restored = detector(CONFIG);
    restored.restore(&state).expect("restores");
    assert_eq!(restored.snapshot(), state);
    for (name, service) in &plugin.registry.services {
        assert_eq!(restored.registry.services[name].drain, service.drain);
    }
    // The same normal line gets the same template id in both, and raises nothing.
    let line = record(
        "checkout",
        9,
        1300.0,
        "cart 9e9e01 priced: 4 items, total 12.50 EUR",
    );
    let id_of = |plugin: &mut LogNovelty| {
        assert!(feed(plugin, std::slice::from_ref(&line), 1).is_empty());
        let drain = &plugin.registry.services["checkout"].drain;
        let newest = drain
            .clusters()
            .max_by_key(|(_, cluster)| cluster.seen)
            .unwrap();
        (newest.1.id_text(), newest.1.text())
    };
    let mut original = plugin;
    assert_eq!(id_of(&mut restored), id_of(&mut original));
    // And both go on alike.
    let records = normal_logs(&mut rng, 1300.0, 1400.0, 0.5);
    assert_eq!(
        feed(&mut restored, &records, 30),
        feed(&mut original, &records, 30)
    );
    assert_eq!(restored.snapshot(), original.snapshot());
}

#[test]
fn restore_mid_burst_and_mid_incident_gives_the_same_alerts() {
    let (mut plugin, mut rng) = learnt_with_rare(CONFIG);
    let mut records = rare_burst(&mut rng, 2000.0, 10.0, 12, 2800.0);
    records.push(record(
        "checkout",
        17,
        2010.0,
        "payment provider timeout, circuit open",
    ));
    records.sort_by_key(|record| record.timestamp);
    // Split mid-burst: 5 of the 12 occurrences seen, the novelty alert already firing.
    let split = records
        .iter()
        .position(|r| r.timestamp >= at(2045.0))
        .unwrap();
    let mut first_half = feed(&mut plugin, &records[..split], 20);
    assert_eq!(first_half.len(), 1);
    let mut restored = detector(CONFIG);
    restored.restore(&plugin.snapshot()).expect("restores");
    let rest_restored = feed(&mut restored, &records[split..], 20);
    let rest_original = feed(&mut plugin, &records[split..], 20);
    assert_eq!(rest_restored, rest_original);
    // One burst firing + resolved, one novelty resolution: nothing fires twice.
    assert_eq!(rest_restored.len(), 3, "{rest_restored:#?}");
    first_half.extend(rest_restored);
    let firing = first_half
        .iter()
        .filter(|a| a.status == AlertStatus::Firing)
        .count();
    assert_eq!(firing, 2);
}

#[test]
fn restore_refuses_bad_state_without_touching_its_own() {
    let (mut plugin, _) = learnt(CONFIG);
    let before = plugin.snapshot();
    let other_version =
        String::from_utf8(before.clone())
            .unwrap()
            .replacen("\"version\":1", "\"version\":9", 1);
    let error = plugin.restore(other_version.as_bytes()).unwrap_err();
    assert!(error.contains("version 9"), "{error}");
    for bad in [&b"not json"[..], b"{}", b"{\"version\":1}", b""] {
        let error = plugin.restore(bad).unwrap_err();
        assert!(error.contains("invalid log-novelty state"), "{error}");
    }
    let broken =
        String::from_utf8(before.clone())
            .unwrap()
            .replacen("\"count\":", "\"count\":0,\"x\":", 1);
    assert!(plugin.restore(broken.as_bytes()).is_err());
    assert_eq!(plugin.snapshot(), before);
}

#[test]
fn bad_config_is_refused_naming_the_field() {
    for (config, field) in [
        (r#"{"sim_th": 0}"#, "sim_th"),
        (r#"{"sim_th": 1.5}"#, "sim_th"),
        (r#"{"depth": 2}"#, "depth"),
        (r#"{"max_children": 1}"#, "max_children"),
        (r#"{"max_clusters": 0}"#, "max_clusters"),
        (r#"{"max_services": 0}"#, "max_services"),
        (r#"{"burst_count": 1}"#, "burst_count"),
        (r#"{"burst_window_seconds": 0}"#, "burst_window_seconds"),
        (r#"{"rare_max_per_hour": -1}"#, "rare_max_per_hour"),
        (r#"{"min_severity": "loud"}"#, "min_severity"),
        (r#"{"min_severity": 30}"#, "min_severity"),
        (r#"{"service_attribute": " "}"#, "service_attribute"),
        (r#"{"max_tokens": 0}"#, "max_tokens"),
        // Serde names the bad value rather than the field for these two.
        (r#"{"severity": "page"}"#, "page"),
        (r#"{"sim_threshold": 0.5}"#, "sim_threshold"),
        (r#"{"learning_period_seconds": "1h"}"#, "\"1h\""),
    ] {
        let error = LogNovelty::from_json_config(config).unwrap_err();
        assert!(error.contains(field), "{config}: {error}");
    }
    let error = LogNovelty::from_json_config(r#"{"depth": 1, "max_clusters": 0}"#).unwrap_err();
    assert!(
        error.contains("depth") && error.contains("max_clusters"),
        "{error}"
    );
    assert!(LogNovelty::from_json_config("").is_ok());
    assert!(LogNovelty::from_json_config(CONFIG).is_ok());
}

#[test]
fn a_hundred_thousand_lines_stay_bounded() {
    let mut plugin = detector(r#"{"learning_period_seconds": 600, "max_clusters": 200}"#);
    let mut rng = Rng(3);
    let mut records = normal_logs(&mut rng, 0.0, 40_000.0, 0.5);
    // One line in ten has a fresh unmaskable word in front: the worst case for the tree.
    for (i, record) in records.iter_mut().enumerate() {
        if i % 10 == 0 {
            record.body = format!(
                "op{}x {}",
                rng.hex(3).replace(char::is_numeric, "q"),
                record.body
            );
        }
    }
    assert_eq!(records.len(), 80_000);
    records.extend(normal_logs(&mut rng, 40_000.0, 50_000.0, 0.5));
    let alerts = feed(&mut plugin, &records, 1024);
    // Alerts are bounded by the new warning/error templates, far below one per line.
    assert!(alerts.len() < 2_000, "{}", alerts.len());
    for service in plugin.registry.services.values() {
        assert!(service.drain.len() <= 200);
    }
    assert!(plugin.snapshot().len() < 2_000_000);
}

/// 2026-11-23T10:00:00.000Z-style UTC timestamps as Unix nanoseconds.
fn parse_utc(text: &str) -> i64 {
    let number = |range: std::ops::Range<usize>| -> i64 { text[range].parse().unwrap() };
    let (hours, minutes, seconds) = (number(11..13), number(14..16), number(17..19));
    let millis = if text.len() > 20 { number(20..23) } else { 0 };
    assert_eq!(&text[..11], "2026-11-23T");
    BASE_SECONDS * NANOS_PER_SECOND
        + ((hours - 10) * 3600 + minutes * 60 + seconds) * NANOS_PER_SECOND
        + millis * 1_000_000
}

#[test]
fn sample_file_fires_on_the_new_error_only() {
    let records: Vec<LogRecord> = include_str!("../samples/records.jsonl")
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let json: serde_json::Value = serde_json::from_str(line).expect("sample line is JSON");
            let mut record = LogRecord::new(
                json["severity_number"].as_u64().expect("severity_number") as u8,
                json["body"].as_str().unwrap_or(""),
            );
            record.timestamp = parse_utc(json["timestamp"].as_str().expect("timestamp"));
            record.severity_text = json["severity_text"].as_str().unwrap_or("").to_owned();
            for (key, value) in json["resource"].as_object().into_iter().flatten() {
                record = record.with_resource_attribute(key, value.as_str().unwrap_or(""));
            }
            record
        })
        .collect();
    let mut plugin = detector(r#"{"learning_period_seconds": 300, "resolve_after_seconds": 120}"#);
    let alerts = feed(&mut plugin, &records, 10);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(label(&alerts[0], "service"), "checkout");
    assert_eq!(alerts[0].starts_at, parse_utc("2026-11-23T10:06:10.000Z"));
    let resolved = tick(&mut plugin, 10_000.0);
    assert!(resolved.is_empty());
    let resolved = tick(&mut plugin, 10_300.0);
    assert_eq!(resolved.len(), 1, "{resolved:#?}");
}
