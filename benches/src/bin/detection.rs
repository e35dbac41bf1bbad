//! `detection`: the detection-quality benchmark. Replays the labelled incident set through a real
//! `sluice run` with the five detectors and scores their alerts against the labels.
//!
//! It builds nothing itself; build first (release):
//!
//! ```sh
//! bash scripts/build-plugins
//! cargo build --release -p sluice -p sluice-benches
//! target/release/detection --seed 1 --hours 8 --markdown /tmp/detection.md
//! ```
//!
//! What it does:
//! 1. generates the set (`sluice_benches::incidents`, seeded) into a work directory:
//!    `telemetry.jsonl` and `labels.json`;
//! 2. starts an HTTP server that records every alert POSTed to it (the generic webhook body of
//!    docs/alerts.md);
//! 3. fills `benches/conf/detection.toml` (ports, work directory), takes out the detectors whose
//!    plugin is not built (and says so), and starts `sluice run` on it;
//! 4. runs `sluice replay telemetry.jsonl` as fast as the gateway accepts, **without** `--restamp`:
//!    the detectors run on event time, so the eight hours replay in seconds and give the alerts
//!    they would give live;
//! 5. waits (on the gateway's `/metrics`) until every detector has seen every record of its
//!    signal, reads what each raised (`alerts_fired`) and any plugin fault, then stops the gateway
//!    with SIGTERM (it drains: every alert delivered) and waits until the webhook has been quiet
//!    for a second;
//! 6. scores each detector (an alert's detector is its `source`, the plugin's name in the config):
//!    - a firing alert is **right** when it names the service of an incident meant for its
//!      detector (or one that accepts it: an error burst may also raise `LogTemplateBurst`) and
//!      starts within [onset, end + grace] of it;
//!    - **precision** = right firing alerts / all its firing alerts;
//!    - **recall** = incidents meant for it with at least one right alert / incidents meant for it;
//!    - **time to detect** = the first right alert's `starts_at` − the incident's `start`, event
//!      time (median over caught incidents);
//!    - **alerts per incident** = right firing alerts on its own incidents / caught incidents.
//!
//! Prints the table, the incidents one by one and the wrong alerts (with the noise episode they
//! fell in, if any); `--markdown FILE` writes the same as markdown.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use serde_json::Value;
use sluice_benches::incidents::{self, Options};

/// The detectors scored, with the plugin file each is built to.
const DETECTORS: [(&str, &str); 5] = [
    ("error-burst", "error_burst.wasm"),
    ("log-novelty", "log_novelty.wasm"),
    ("ewma-anomaly", "ewma_anomaly.wasm"),
    ("threshold", "threshold.wasm"),
    ("slo-burn", "slo_burn.wasm"),
];

/// Which stage list of the config each detector sits in.
const PIPELINE_OF: [(&str, &str); 5] = [
    ("error-burst", "logs"),
    ("log-novelty", "logs"),
    ("ewma-anomaly", "metrics"),
    ("threshold", "metrics"),
    ("slo-burn", "traces"),
];

/// Command-line arguments.
#[derive(Parser, Debug)]
#[command(
    about = "Detection quality: replay the labelled incident set through `sluice run` and \
                   score each detector's alerts (precision, recall, time to detect, alerts per \
                   incident)"
)]
struct Args {
    /// Seed of the generated set.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Simulated hours of the set.
    #[arg(long, default_value_t = 8.0)]
    hours: f64,
    /// Seconds after an incident's end during which an alert still counts for it. Default: the
    /// set's own (labels.json `grace_seconds`).
    #[arg(long)]
    grace: Option<i64>,
    /// Records per replayed request (`sluice replay --batch`).
    #[arg(long, default_value_t = 2000)]
    batch: u64,
    /// Gateway config template. Default: `benches/conf/detection.toml` of the workspace.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The gateway binary. Default: `sluice` next to this binary (`target/release/sluice`).
    #[arg(long)]
    sluice: Option<PathBuf>,
    /// Where the detector plugins are. Default: `$SLUICE_PLUGIN_DIR`, else the workspace's
    /// `target/wasm32-wasip2/plugin`.
    #[arg(long)]
    plugin_dir: Option<PathBuf>,
    /// Work directory (set, config, buffer, archive). Default: a temporary one, removed after.
    #[arg(long)]
    work: Option<PathBuf>,
    /// Also write the results as markdown to this file.
    #[arg(long)]
    markdown: Option<PathBuf>,
}

/// One alert as the webhook received it.
#[derive(Clone, Debug)]
struct ReceivedAlert {
    name: String,
    status: String,
    source: String,
    service: String,
    fingerprint: String,
    starts_at: i64,
    summary: String,
}

/// One labelled incident or noise episode.
#[derive(Clone, Debug)]
struct Episode {
    id: String,
    kind: String,
    service: String,
    detector: Option<String>,
    accepted_by: Vec<String>,
    onset: i64,
    start: i64,
    end: i64,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("detection: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    let root = sluice_benches::workspace_root();
    let here = std::env::current_exe().context("cannot find this binary")?;
    let bin_dir = here.parent().context("this binary has no directory")?;
    let sluice = args
        .sluice
        .clone()
        .unwrap_or_else(|| bin_dir.join("sluice"));
    anyhow::ensure!(
        sluice.exists(),
        "{} is missing: build it with `cargo build --release -p sluice`",
        sluice.display()
    );
    let plugin_dir = args
        .plugin_dir
        .clone()
        .or_else(|| std::env::var_os("SLUICE_PLUGIN_DIR").map(PathBuf::from))
        .unwrap_or_else(|| root.join("target/wasm32-wasip2/plugin"));
    let template_path = args
        .config
        .clone()
        .unwrap_or_else(|| root.join("benches/conf/detection.toml"));
    let temporary = tempfile::tempdir().context("cannot make a temporary directory")?;
    let work = args
        .work
        .clone()
        .unwrap_or_else(|| temporary.path().to_path_buf());
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let work = work.canonicalize()?;

    // 1. The set.
    let telemetry = work.join("telemetry.jsonl");
    let options = Options {
        seed: args.seed,
        hours: args.hours,
        ..Options::default()
    };
    let (labels, counts) = {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&telemetry)?);
        incidents::generate(&options, &mut out)?
    };
    std::fs::write(
        work.join("labels.json"),
        serde_json::to_string_pretty(&labels)?,
    )?;
    println!(
        "set: seed {}, {} h, {} records ({} log records, {} metric points, {} spans), {} incidents, \
         {} noise episodes",
        args.seed,
        args.hours,
        counts.records(),
        counts.logs,
        counts.metric_points,
        counts.spans,
        labels["incidents"].as_array().map_or(0, Vec::len),
        labels["noise"].as_array().map_or(0, Vec::len),
    );

    // 2. The webhook receiver.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let received: Arc<Mutex<(Vec<Value>, Instant)>> =
        Arc::new(Mutex::new((Vec::new(), Instant::now())));
    let webhook = runtime.block_on(serve_webhook(received.clone()))?;

    // 3. The config and the gateway.
    let present: Vec<&str> = DETECTORS
        .iter()
        .filter(|(_, file)| plugin_dir.join(file).exists())
        .map(|&(name, _)| name)
        .collect();
    let missing: Vec<&str> = DETECTORS
        .iter()
        .map(|&(name, _)| name)
        .filter(|name| !present.contains(name))
        .collect();
    if !missing.is_empty() {
        println!(
            "detectors missing from {} (skipped): {}",
            plugin_dir.display(),
            missing.join(", ")
        );
    }
    anyhow::ensure!(
        !present.is_empty(),
        "no detector plugin in {}: build them with `bash scripts/build-plugins`",
        plugin_dir.display()
    );
    let otlp_http = free_address()?;
    let admin = free_address()?;
    let config = render_config(&template_path, otlp_http, admin, webhook, &work, &present)?;
    let config_path = work.join("detection.toml");
    std::fs::write(&config_path, &config)?;
    let mut gateway = Command::new(&sluice)
        .arg("run")
        .arg(&config_path)
        .current_dir(&work)
        .env("SLUICE_PLUGIN_DIR", &plugin_dir)
        .env("SLUICE_CACHE_DIR", work.join("plugin-cache"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", sluice.display()))?;
    let stderr = Arc::new(Mutex::new(String::new()));
    let (running_sender, running) = std::sync::mpsc::channel::<()>();
    let reader = {
        let pipe = gateway.stderr.take().context("stderr is piped")?;
        let stderr = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("sluice: running") {
                    let _ = running_sender.send(());
                }
                let mut text = stderr.lock().unwrap_or_else(|poison| poison.into_inner());
                text.push_str(&line);
                text.push('\n');
            }
        })
    };
    if running.recv_timeout(Duration::from_secs(60)).is_err() {
        let _ = gateway.kill();
        let _ = gateway.wait();
        let _ = reader.join();
        bail!(
            "sluice run did not start:\n{}",
            stderr.lock().unwrap_or_else(|poison| poison.into_inner())
        );
    }

    // 4. The replay, as fast as the gateway takes it, on event time.
    let replay_started = Instant::now();
    let replay = Command::new(&sluice)
        .arg("replay")
        .arg(&telemetry)
        .arg("--endpoint")
        .arg(format!("http://{otlp_http}"))
        .arg("--batch")
        .arg(args.batch.to_string())
        .stdin(Stdio::null())
        .output()
        .context("running sluice replay")?;
    let replay_seconds = replay_started.elapsed().as_secs_f64();
    let replay_stderr = String::from_utf8_lossy(&replay.stderr);
    print!("{replay_stderr}");

    // Wait until every detector has seen every record of its signal, then read what each
    // raised by its own counters (`alerts_fired`): the alert router may notify fewer (it folds
    // a resolution and a new firing of the same alert that come within its wall-clock grouping
    // time into one still-firing alert, and a fast replay puts minutes of event time into
    // milliseconds).
    let expected = |detector: &str| match PIPELINE_OF
        .iter()
        .find(|(name, _)| *name == detector)
        .map(|(_, pipeline)| *pipeline)
    {
        Some("logs") => counts.logs,
        Some("metrics") => counts.metric_points,
        _ => counts.spans,
    };
    let wait_until = Instant::now() + Duration::from_secs(300);
    let mut metrics_text = String::new();
    loop {
        if let Ok(text) = admin_metrics(admin) {
            metrics_text = text;
            let done = present.iter().all(|detector| {
                metric_value(
                    &metrics_text,
                    "sluice_plugin_records_in_total",
                    &[("plugin", detector)],
                ) >= expected(detector) as f64
            });
            if done {
                break;
            }
        }
        if Instant::now() >= wait_until {
            println!("(not every record reached the detectors within 5 minutes of the replay)");
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let raised: BTreeMap<String, u64> = present
        .iter()
        .map(|detector| {
            let fired = metric_value(
                &metrics_text,
                "sluice_plugin_custom_total",
                &[("plugin", detector), ("name", "alerts_fired")],
            );
            (detector.to_string(), fired as u64)
        })
        .collect();

    // The plugins' health: a detector that faulted or was re-instantiated may have lost
    // state, which the scores would not show by themselves.
    let plugin_health = admin_metrics(admin)
        .map(|text| {
            text.lines()
                .filter(|line| {
                    (line.starts_with("sluice_plugin_faults_total")
                        || line.starts_with("sluice_plugin_instances_created_total")
                        || line.starts_with("sluice_plugin_quarantined"))
                        && !line.ends_with(" 0")
                })
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .unwrap_or_else(|error| vec![format!("(no /metrics: {error})")]);
    println!("plugin faults and instances (non-zero):");
    for line in &plugin_health {
        println!("  {line}");
    }

    // 5. Drain: SIGTERM, the exit, then a quiet webhook.
    let stop_started = Instant::now();
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(gateway.id().to_string())
        .status()?;
    anyhow::ensure!(status.success(), "kill -TERM {} failed", gateway.id());
    let deadline = Instant::now() + Duration::from_secs(600);
    let exit = loop {
        if let Some(exit) = gateway.try_wait()? {
            break exit;
        }
        if Instant::now() >= deadline {
            let _ = gateway.kill();
            bail!("sluice run did not exit within 10 minutes of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = reader.join();
    let drain_seconds = stop_started.elapsed().as_secs_f64();
    loop {
        let last = received
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .1;
        if last.elapsed() >= Duration::from_secs(1) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let gateway_stderr = stderr
        .lock()
        .unwrap_or_else(|poison| poison.into_inner())
        .clone();
    std::fs::write(work.join("gateway.log"), &gateway_stderr)?;
    let summary: Vec<&str> = gateway_stderr
        .lines()
        .skip_while(|line| !line.starts_with("sluice: stopped"))
        .collect();
    println!("{}", summary.join("\n"));
    anyhow::ensure!(
        exit.success() && replay.status.success(),
        "the gateway exited with {exit} / the replay with {}:\n{gateway_stderr}",
        replay.status
    );
    println!(
        "replayed {:.1} h of event time in {replay_seconds:.1} s, drained in {drain_seconds:.1} s",
        args.hours
    );

    // 6. The score.
    let bodies = received
        .lock()
        .unwrap_or_else(|poison| poison.into_inner())
        .0
        .clone();
    let mut alerts_file = String::new();
    for body in &bodies {
        alerts_file.push_str(&body.to_string());
        alerts_file.push('\n');
    }
    std::fs::write(work.join("alerts.jsonl"), alerts_file)?;
    let alerts = parse_alerts(&bodies)?;
    let incidents = parse_episodes(&labels["incidents"])?;
    let noise = parse_episodes(&labels["noise"])?;
    let grace = args
        .grace
        .or_else(|| labels["grace_seconds"].as_i64())
        .unwrap_or(incidents::GRACE_SECONDS)
        * 1_000_000_000;
    let report = score(
        &alerts, &incidents, &noise, grace, &present, &missing, &raised,
    );
    let command = format!(
        "target/release/detection --seed {} --hours {}",
        args.seed, args.hours
    );
    let markdown = report.markdown(&command, &args, counts.records(), replay_seconds);
    println!("\n{markdown}");
    if let Some(path) = &args.markdown {
        std::fs::write(path, &markdown).with_context(|| format!("writing {}", path.display()))?;
        println!("written to {}", path.display());
    }
    if args.work.is_some() {
        println!("work directory kept: {}", work.display());
    }
    Ok(())
}

/// The gateway's `/metrics` text (a plain HTTP/1.0 GET).
fn admin_metrics(admin: SocketAddr) -> anyhow::Result<String> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect_timeout(&admin, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {admin}\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let (_, body) = answer
        .split_once("\r\n\r\n")
        .context("an HTTP answer without a body")?;
    Ok(body.to_owned())
}

/// The sum of the samples of `name` whose labels include every pair of `labels` (0 if none).
fn metric_value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?.strip_prefix('{')?;
            let (label_text, value) = rest.rsplit_once("} ")?;
            labels
                .iter()
                .all(|(key, wanted)| label_text.contains(&format!("{key}=\"{wanted}\"")))
                .then(|| value.trim().parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

/// A free TCP address on 127.0.0.1 (bound then released).
fn free_address() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// Serves `POST /alerts`: every body is kept, with the time of the last one.
async fn serve_webhook(received: Arc<Mutex<(Vec<Value>, Instant)>>) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/alerts",
        axum::routing::post(move |body: axum::body::Bytes| {
            let received = received.clone();
            async move {
                let Ok(body) = serde_json::from_slice::<Value>(&body) else {
                    return axum::http::StatusCode::BAD_REQUEST;
                };
                let mut received = received.lock().unwrap_or_else(|poison| poison.into_inner());
                received.0.push(body);
                received.1 = Instant::now();
                axum::http::StatusCode::OK
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(address)
}

/// The config template with its placeholders filled and the absent detectors taken out.
fn render_config(
    template_path: &Path,
    otlp_http: SocketAddr,
    admin: SocketAddr,
    webhook: SocketAddr,
    work: &Path,
    present: &[&str],
) -> anyhow::Result<String> {
    let template = std::fs::read_to_string(template_path)
        .with_context(|| format!("reading {}", template_path.display()))?;
    let text = template
        .replace("{otlp_http}", &otlp_http.to_string())
        .replace("{admin}", &admin.to_string())
        .replace("{webhook}", &webhook.to_string())
        .replace("{work}", &work.display().to_string());
    let mut config: toml::Table = text
        .parse()
        .with_context(|| format!("{} is not TOML", template_path.display()))?;
    if let Some(toml::Value::Table(plugins)) = config.get_mut("plugins") {
        plugins.retain(|name, _| {
            !DETECTORS.iter().any(|&(detector, _)| detector == name) || present.contains(&name)
        });
    }
    if let Some(toml::Value::Table(pipelines)) = config.get_mut("pipelines") {
        for (_, pipeline) in pipelines.iter_mut() {
            if let Some(toml::Value::Array(stages)) = pipeline.get_mut("stages") {
                stages.retain(|stage| {
                    stage.as_str().is_none_or(|name| {
                        !PIPELINE_OF.iter().any(|&(detector, _)| detector == name)
                            || present.contains(&name)
                    })
                });
            }
        }
    }
    Ok(toml::to_string(&config)?)
}

fn parse_alerts(bodies: &[Value]) -> anyhow::Result<Vec<ReceivedAlert>> {
    let mut alerts = Vec::new();
    let mut seen = BTreeSet::new();
    for body in bodies {
        for alert in body["alerts"].as_array().context("a body without alerts")? {
            let text = |key: &str| alert[key].as_str().unwrap_or_default().to_owned();
            let labels: BTreeMap<String, String> = alert["labels"]
                .as_object()
                .map(|labels| {
                    labels
                        .iter()
                        .map(|(key, value)| (key.clone(), value.as_str().unwrap_or("").to_owned()))
                        .collect()
                })
                .unwrap_or_default();
            let starts_at = parse_time(&text("starts_at"))
                .with_context(|| format!("alert without a valid starts_at: {alert}"))?;
            let received = ReceivedAlert {
                name: text("name"),
                status: text("status"),
                source: text("source"),
                service: labels.get("service").cloned().unwrap_or_default(),
                fingerprint: text("fingerprint"),
                starts_at,
                summary: text("summary"),
            };
            // Delivery is at least once: a repeated notification is one alert.
            if seen.insert((
                received.fingerprint.clone(),
                received.status.clone(),
                received.starts_at,
            )) {
                alerts.push(received);
            }
        }
    }
    Ok(alerts)
}

fn parse_time(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()?
        .timestamp_nanos_opt()
}

fn parse_episodes(list: &Value) -> anyhow::Result<Vec<Episode>> {
    let mut episodes = Vec::new();
    for item in list.as_array().context("labels: not a list")? {
        let text = |key: &str| item[key].as_str().unwrap_or_default().to_owned();
        let time = |key: &str| {
            item[key]
                .as_i64()
                .with_context(|| format!("labels: {key} missing in {item}"))
        };
        episodes.push(Episode {
            id: text("id"),
            kind: text("kind"),
            service: text("service"),
            detector: item["detector"].as_str().map(str::to_owned),
            accepted_by: item["accepted_by"]
                .as_array()
                .map(|list| {
                    list.iter()
                        .filter_map(|value| value.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            onset: item["onset_unix_nano"]
                .as_i64()
                .map_or_else(|| time("start_unix_nano"), Ok)?,
            start: time("start_unix_nano")?,
            end: time("end_unix_nano")?,
        });
    }
    Ok(episodes)
}

/// The scores of one detector.
#[derive(Debug, Default)]
struct DetectorScore {
    names: BTreeSet<String>,
    incidents: usize,
    caught: usize,
    /// Firing alerts the detector raised (its `alerts_fired` counter), before the router.
    raised: Option<u64>,
    firing: usize,
    right: usize,
    right_on_own: usize,
    detect_seconds: Vec<f64>,
}

/// What happened to one incident.
struct IncidentOutcome {
    incident: Episode,
    detect_seconds: Option<f64>,
    alerts: usize,
    others: Vec<String>,
}

struct Report {
    detectors: Vec<(String, Option<DetectorScore>)>,
    incidents: Vec<IncidentOutcome>,
    wrong: Vec<(ReceivedAlert, Option<String>)>,
    resolved: usize,
}

fn score(
    alerts: &[ReceivedAlert],
    incidents: &[Episode],
    noise: &[Episode],
    grace: i64,
    present: &[&str],
    missing: &[&str],
    raised: &BTreeMap<String, u64>,
) -> Report {
    let mut scores: BTreeMap<String, DetectorScore> = present
        .iter()
        .map(|&name| (name.to_owned(), DetectorScore::default()))
        .collect();
    let mut outcomes: Vec<IncidentOutcome> = incidents
        .iter()
        .map(|incident| IncidentOutcome {
            incident: incident.clone(),
            detect_seconds: None,
            alerts: 0,
            others: Vec::new(),
        })
        .collect();
    for outcome in &outcomes {
        if let Some(score) = outcome
            .incident
            .detector
            .as_ref()
            .and_then(|detector| scores.get_mut(detector))
        {
            score.incidents += 1;
        }
    }
    let mut wrong = Vec::new();
    let mut resolved = 0;
    for alert in alerts {
        if alert.status != "firing" {
            resolved += 1;
            continue;
        }
        let score = scores.entry(alert.source.clone()).or_default();
        score.firing += 1;
        score.names.insert(alert.name.clone());
        let within = |incident: &Episode| {
            incident.service == alert.service
                && alert.starts_at >= incident.onset
                && alert.starts_at <= incident.end + grace
        };
        let mut right = false;
        for outcome in &mut outcomes {
            if !within(&outcome.incident) {
                continue;
            }
            if outcome.incident.detector.as_deref() == Some(alert.source.as_str()) {
                right = true;
                outcome.alerts += 1;
                let seconds = (alert.starts_at - outcome.incident.start) as f64 / 1e9;
                outcome.detect_seconds = Some(
                    outcome
                        .detect_seconds
                        .map_or(seconds, |first| first.min(seconds)),
                );
            } else if outcome.incident.accepted_by.contains(&alert.source) {
                right = true;
                outcome.others.push(alert.name.clone());
            }
        }
        if right {
            score.right += 1;
        } else {
            let in_noise = noise
                .iter()
                .find(|episode| {
                    episode.service == alert.service
                        && alert.starts_at >= episode.start
                        && alert.starts_at <= episode.end + grace
                })
                .map(|episode| format!("{} ({})", episode.id, episode.kind));
            wrong.push((alert.clone(), in_noise));
        }
    }
    for outcome in &outcomes {
        let Some(score) = outcome
            .incident
            .detector
            .as_ref()
            .and_then(|detector| scores.get_mut(detector))
        else {
            continue;
        };
        if let Some(seconds) = outcome.detect_seconds {
            score.caught += 1;
            score.right_on_own += outcome.alerts;
            score.detect_seconds.push(seconds);
        }
    }
    let mut detectors: Vec<(String, Option<DetectorScore>)> = DETECTORS
        .iter()
        .map(|&(name, _)| {
            let score = if missing.contains(&name) {
                None
            } else {
                let mut score = scores.remove(name).unwrap_or_default();
                score.raised = raised.get(name).copied();
                Some(score)
            };
            (name.to_owned(), score)
        })
        .collect();
    // Alerts from anything else (the gateway's own, say) are listed too.
    detectors.extend(scores.into_iter().map(|(name, score)| (name, Some(score))));
    Report {
        detectors,
        incidents: outcomes,
        wrong,
        resolved,
    }
}

fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    Some(if sorted.len().is_multiple_of(2) {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    } else {
        sorted[middle]
    })
}

fn duration_text(seconds: f64) -> String {
    let sign = if seconds < 0.0 { "−" } else { "" };
    let seconds = seconds.abs();
    if seconds < 60.0 {
        format!("{sign}{seconds:.0} s")
    } else {
        format!(
            "{sign}{} min {:02.0} s",
            (seconds / 60.0).floor(),
            seconds % 60.0
        )
    }
}

impl Report {
    fn markdown(&self, command: &str, args: &Args, records: u64, replay_seconds: f64) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Set: seed {}, {} h of event time, {records} records; replayed in {replay_seconds:.1} s \
             (`sluice replay --batch {}`, no restamp). Grace after an incident's end: see labels.json.\n",
            args.seed, args.hours, args.batch
        );
        let _ = writeln!(
            out,
            "| detector | alerts | incidents | caught | recall | raised | firing alerts | right | precision | median time to detect | alerts per incident |"
        );
        let _ = writeln!(
            out,
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for (name, score) in &self.detectors {
            let Some(score) = score else {
                let _ = writeln!(
                    out,
                    "| {name} | (plugin not built: skipped) | | | | | | | | |"
                );
                continue;
            };
            let recall = if score.incidents == 0 {
                "–".to_owned()
            } else {
                format!("{:.2}", score.caught as f64 / score.incidents as f64)
            };
            let precision = if score.firing == 0 {
                "–".to_owned()
            } else {
                format!("{:.2}", score.right as f64 / score.firing as f64)
            };
            let per_incident = if score.caught == 0 {
                "–".to_owned()
            } else {
                format!("{:.1}", score.right_on_own as f64 / score.caught as f64)
            };
            let _ = writeln!(
                out,
                "| {name} | {} | {} | {} | {recall} | {} | {} | {} | {precision} | {} | {per_incident} |",
                score.names.iter().cloned().collect::<Vec<_>>().join(", "),
                score.incidents,
                score.caught,
                score
                    .raised
                    .map_or("?".to_owned(), |raised| raised.to_string()),
                score.firing,
                score.right,
                median(&score.detect_seconds).map_or("–".to_owned(), duration_text),
            );
        }
        let _ = writeln!(out, "\nIncidents:\n");
        let _ = writeln!(
            out,
            "| incident | kind | service | meant for | detected after | its alerts | also |"
        );
        let _ = writeln!(out, "|---|---|---|---|---:|---:|---|");
        for outcome in &self.incidents {
            let incident = &outcome.incident;
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                incident.id,
                incident.kind,
                incident.service,
                incident.detector.as_deref().unwrap_or("–"),
                outcome
                    .detect_seconds
                    .map_or("missed".to_owned(), duration_text),
                outcome.alerts,
                outcome.others.join(", "),
            );
        }
        if self.wrong.is_empty() {
            let _ = writeln!(out, "\nNo wrong alerts.");
        } else {
            let _ = writeln!(
                out,
                "\nWrong alerts (matching no incident of their detector):\n"
            );
            let _ = writeln!(
                out,
                "| detector | alert | service | starts at | during noise | summary |"
            );
            let _ = writeln!(out, "|---|---|---|---|---|---|");
            for (alert, noise) in &self.wrong {
                let summary: String = alert.summary.chars().take(140).collect();
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} |",
                    alert.source,
                    alert.name,
                    alert.service,
                    incidents::rfc3339(alert.starts_at),
                    noise.as_deref().unwrap_or("–"),
                    summary.replace('|', "\\|"),
                );
            }
        }
        let _ = writeln!(
            out,
            "\n{} resolutions received. Command: `{command}`",
            self.resolved
        );
        out
    }
}
