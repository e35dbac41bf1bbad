//! `sluice run` and `sluice validate` driven as an operator would: a config file, input on
//! stdin, output in a file, and configs broken in each way `validate` must catch.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use support::{plugin_wasm, sluice_binary, workspace_root};

fn sluice() -> Command {
    let mut command = Command::new(sluice_binary());
    command.env(
        "SLUICE_CACHE_DIR",
        workspace_root().join("target/test-plugin-cache"),
    );
    command
}

#[test]
fn stdin_pipeline_parses_filters_redacts_and_writes_the_file_sink() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out/records.jsonl");
    let config = format!(
        r#"
[receivers.in]
type = "stdin"

[plugins.json]
path = "{parser}"
config = {{ timestamp_field = "timestamp", severity_field = "level", message_field = "message" }}

[plugins.sev]
path = "{filter}"
config = {{ min_severity = "info" }}

[plugins.redact]
path = "{redact}"

[pipelines.main]
receivers = ["in"]
stages = ["json", "sev", "redact"]
sinks = ["out"]

[sinks.out]
type = "file"
path = "{out}"
"#,
        parser = plugin_wasm("json-parser").display(),
        filter = plugin_wasm("severity-filter").display(),
        redact = plugin_wasm("redact").display(),
        out = out.display(),
    );
    let config_path = dir.path().join("sluice.toml");
    std::fs::write(&config_path, config).unwrap();
    let mut child = sluice()
        .arg("run")
        .arg(&config_path)
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input = [
        r#"{"timestamp":"2026-11-23T10:00:00Z","level":"error","message":"login for bob@example.com failed","user":"bob"}"#,
        r#"{"level":"debug","message":"dropped by the severity filter"}"#,
        "this line is not JSON",
        r#"{"level":"warn","message":"card 4111 1111 1111 1111 declined","order":{"id":42}}"#,
    ];
    child
        .stdin
        .take()
        .unwrap()
        .write_all((input.join("\n") + "\n").as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let records: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(records.len(), 3, "{records:?}");
    assert_eq!(records[0]["signal"], "logs");
    assert_eq!(records[0]["timestamp"], "2026-11-23T10:00:00.000000000Z");
    assert_eq!(records[0]["severity_number"], 17);
    assert!(
        !records[0]["body"]
            .as_str()
            .unwrap()
            .contains("bob@example.com"),
        "{records:?}"
    );
    assert_eq!(records[0]["attributes"]["user"], "bob");
    assert_eq!(records[1]["body"], "this line is not JSON");
    assert!(records[1]["attributes"]["sluice.parse_error"].is_string());
    assert!(
        !records[2]["body"]
            .as_str()
            .unwrap()
            .contains("4111 1111 1111 1111"),
        "{records:?}"
    );
    assert_eq!(records[2]["attributes"]["order.id"], 42);
    assert!(
        stderr.contains("pipeline main: 4 in, 3 out, 1 dropped by filters"),
        "{stderr}"
    );
    assert!(stderr.contains("sink out: 3 written"), "{stderr}");
}

#[test]
fn validate_accepts_the_default_config() {
    let output = sluice().arg("validate").output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("pipeline logs: [otlp, json-lines] → [json-parser (parser) → severity-filter (filter) → redact (filter) → error-burst (detector)] → [archive]"),
        "{stderr}"
    );
}

/// Runs `sluice CMD` on a config that must be refused; returns what it printed.
fn refused(command: &str, config: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.toml");
    std::fs::write(&path, config).unwrap();
    let output = sluice().arg(command).arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.code(),
        Some(2),
        "{command} accepted:\n{config}\n{stderr}"
    );
    stderr
}

/// A valid config with `extra` appended (TOML tables may come in any order).
fn config_with(extra: &str) -> String {
    format!(
        r#"
[receivers.in]
type = "stdin"

[plugins.json]
path = "{parser}"

[plugins.sev]
path = "{filter}"

[sinks.out]
type = "stdout"
{extra}
"#,
        parser = plugin_wasm("json-parser").display(),
        filter = plugin_wasm("severity-filter").display(),
    )
}

#[test]
fn validate_reports_every_problem_with_its_location() {
    let many = refused(
        "validate",
        &config_with(
            r#"
[pipelines.main]
receivers = ["in", "nowhere"]
stages = ["json", "nope"]
sinks = ["out", "missing"]
alerts = ["gone"]
[[pipelines.main.routes]]
sinks = ["out"]
min_severity = "loud"
"#,
        ),
    );
    for expected in [
        "pipelines.main.receivers[1]: unknown receiver `nowhere`",
        "pipelines.main.stages[1]: unknown plugin `nope`",
        "pipelines.main.sinks[1]: unknown sink `missing`",
        "pipelines.main.alerts[0]: unknown sink `gone`",
        "pipelines.main.routes[0].min_severity: `loud` is not a severity",
    ] {
        assert!(many.contains(expected), "missing {expected:?} in:\n{many}");
    }
}

#[test]
fn validate_reports_syntax_typos_and_bad_addresses_with_their_line() {
    let typo = refused(
        "validate",
        &config_with("[pipelines.main]\nreceivers = [\"in\"]\nsinks = [\"out\"]\nsinkz = [1]\n"),
    );
    assert!(typo.contains("unknown field `sinkz`"), "{typo}");

    let address = refused(
        "validate",
        &config_with(
            "[receivers.net]\ntype = \"otlp\"\ngrpc = \"127.0.0.1:99999\"\n[pipelines.main]\nreceivers = [\"in\"]\nsinks = [\"out\"]\n",
        ),
    );
    assert!(address.contains("line "), "{address}");
    assert!(address.contains("invalid socket address"), "{address}");
}

#[test]
fn validate_loads_every_plugin_and_reports_its_refusal() {
    let pipeline =
        "[pipelines.main]\nreceivers = [\"in\"]\nstages = [\"json\", \"sev\"]\nsinks = [\"out\"]\n";
    let bad_plugin_config = refused(
        "validate",
        &config_with(pipeline).replace(
            "[plugins.sev]\n",
            "[plugins.sev]\nconfig = { min_severity = \"loud\" }\n",
        ),
    );
    assert!(
        bad_plugin_config.contains("pipelines.main.stages[1]: plugin `sev`"),
        "{bad_plugin_config}"
    );
    assert!(
        bad_plugin_config.contains("refused its config"),
        "{bad_plugin_config}"
    );
    assert!(bad_plugin_config.contains("loud"), "{bad_plugin_config}");

    let wrong_pin = refused(
        "validate",
        &config_with(pipeline).replace(
            "[plugins.json]\n",
            &format!("[plugins.json]\nsha256 = \"{}\"\n", "0".repeat(64)),
        ),
    );
    assert!(wrong_pin.contains("sha256 mismatch"), "{wrong_pin}");

    let missing_file = refused(
        "validate",
        &config_with(pipeline).replace(
            &plugin_wasm("json-parser").display().to_string(),
            "/nonexistent/x.wasm",
        ),
    );
    assert!(
        missing_file.contains("loading plugin `json` from /nonexistent/x.wasm"),
        "{missing_file}"
    );

    let parser_not_first = refused(
        "validate",
        &config_with(&pipeline.replace("[\"json\", \"sev\"]", "[\"sev\", \"json\"]")),
    );
    assert!(
        parser_not_first.contains("a parser must be the first stage"),
        "{parser_not_first}"
    );

    let alerts_to_records = refused(
        "validate",
        &config_with(&format!(
            "{pipeline}[sinks.hook]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\n"
        ))
        .replace("sinks = [\"out\"]", "sinks = [\"hook\"]"),
    );
    assert!(
        alerts_to_records.contains("sink `hook` takes only alerts"),
        "{alerts_to_records}"
    );
}

#[test]
fn run_refuses_a_bad_config_before_opening_any_port() {
    let port = support::free_port();
    let config = config_with(&format!(
        "[receivers.net]\ntype = \"otlp\"\ngrpc = \"127.0.0.1:{port}\"\n[pipelines.main]\nreceivers = [\"in\", \"net\"]\nstages = [\"nope\"]\nsinks = [\"out\"]\n"
    ));
    let stderr = refused("run", &config);
    assert!(stderr.contains("unknown plugin `nope`"), "{stderr}");
    assert!(!stderr.contains("running"), "{stderr}");
}

/// `GET path` on the admin address; returns (status line, body).
fn http_get(port: u16, path: &str) -> (String, String) {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (
        head.lines().next().unwrap_or("").to_owned(),
        body.to_owned(),
    )
}

#[test]
fn admin_endpoint_serves_health_and_prometheus_metrics_of_every_part() {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let config = format!(
        r#"
[admin]
address = "127.0.0.1:{port}"

[receivers.in]
type = "stdin"
flush_ms = 10

[plugins.json]
path = "{parser}"

[plugins.sev]
path = "{filter}"
config = {{ min_severity = "warn" }}

[pipelines.main]
receivers = ["in"]
stages = ["json", "sev"]
sinks = ["out"]

[sinks.out]
type = "file"
path = "{out}"
"#,
        parser = plugin_wasm("json-parser").display(),
        filter = plugin_wasm("severity-filter").display(),
        out = dir.path().join("out.jsonl").display(),
    );
    let config_path = dir.path().join("sluice.toml");
    std::fs::write(&config_path, config).unwrap();
    let mut child = sluice()
        .arg("run")
        .arg(&config_path)
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(
            b"{\"level\":\"error\",\"message\":\"a\"}\n{\"level\":\"info\",\"message\":\"b\"}\n",
        )
        .unwrap();
    stdin.flush().unwrap();
    let mut metrics = String::new();
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            metrics = http_get(port, "/metrics").1;
            if metrics.contains("sluice_sink_records_written_total{sink=\"out\"} 1\n") {
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    for expected in [
        "sluice_receiver_records_accepted_total{receiver=\"in\"} 2\n",
        "sluice_pipeline_records_in_total{pipeline=\"main\"} 2\n",
        "sluice_pipeline_records_dropped_total{pipeline=\"main\"} 1\n",
        "sluice_sink_records_written_total{sink=\"out\"} 1\n",
        "sluice_plugin_calls_total{pipeline=\"main\",plugin=\"sev\"} 1\n",
        "sluice_plugin_faults_total{pipeline=\"main\",plugin=\"sev\",kind=\"trap\"} 0\n",
        "# TYPE sluice_plugin_memory_high_water_bytes gauge\n",
        "sluice_process_resident_memory_bytes ",
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected:?} in:\n{metrics}"
        );
    }
    assert_eq!(http_get(port, "/healthz").0, "HTTP/1.1 200 OK");
    assert_eq!(http_get(port, "/readyz").0, "HTTP/1.1 200 OK");
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn validate_accepts_the_full_example_config() {
    let output = sluice()
        .arg("validate")
        .arg(workspace_root().join("conf/full.toml"))
        .current_dir(workspace_root())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("pipeline telemetry: [otlp, prometheus]"),
        "{stderr}"
    );
}
