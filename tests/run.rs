//! `sluice run` and `sluice validate` driven as an operator would: the default config, stdin in,
//! stdout out, and configs broken in each way `validate` must catch.

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
fn default_pipeline_parses_filters_and_redacts_stdin() {
    plugin_wasm("json-parser");
    let mut child = sluice()
        .arg("run")
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
    let records: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(records.len(), 3, "{records:?}");
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
        stderr.contains("3 records out, 1 dropped by filters"),
        "{stderr}"
    );
}

#[test]
fn validate_accepts_the_default_config() {
    let output = sluice().arg("validate").output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("json-parser (parser) → severity-filter (filter) → redact (filter) → error-burst (detector)"), "{stderr}");
}

fn validate(config: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.toml");
    std::fs::write(&path, config).unwrap();
    let output = sluice().arg("validate").arg(&path).output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(2),
        "validate accepted:\n{config}"
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn validate_reports_each_class_of_error() {
    let parser = plugin_wasm("json-parser").display().to_string();
    let filter = plugin_wasm("severity-filter").display().to_string();

    let unknown_stage = validate(&format!(
        "[pipeline]\nstages = [\"json\", \"nope\"]\n[plugins.json]\npath = \"{parser}\"\n"
    ));
    assert!(
        unknown_stage.contains("names `nope`, which no [plugins.nope] table defines"),
        "{unknown_stage}"
    );

    let typo = validate(&format!(
        "[pipeline]\nstages = [\"json\"]\nbatch_sise = 3\n[plugins.json]\npath = \"{parser}\"\n"
    ));
    assert!(typo.contains("unknown field `batch_sise`"), "{typo}");

    let bad_plugin_config = validate(&format!(
        "[pipeline]\nstages = [\"json\", \"sev\"]\n[plugins.json]\npath = \"{parser}\"\n[plugins.sev]\npath = \"{filter}\"\nconfig = {{ min_severity = \"loud\" }}\n"
    ));
    assert!(
        bad_plugin_config.contains("plugin `sev`"),
        "{bad_plugin_config}"
    );
    assert!(
        bad_plugin_config.contains("refused its config"),
        "{bad_plugin_config}"
    );
    assert!(bad_plugin_config.contains("loud"), "{bad_plugin_config}");

    let wrong_pin = validate(&format!(
        "[pipeline]\nstages = [\"json\"]\n[plugins.json]\npath = \"{parser}\"\nsha256 = \"{}\"\n",
        "0".repeat(64)
    ));
    assert!(wrong_pin.contains("sha256 mismatch"), "{wrong_pin}");

    let missing_file = validate(
        "[pipeline]\nstages = [\"json\"]\n[plugins.json]\npath = \"/nonexistent/x.wasm\"\n",
    );
    assert!(
        missing_file.contains("loading plugin `json` from /nonexistent/x.wasm"),
        "{missing_file}"
    );

    let parser_not_first = validate(&format!(
        "[pipeline]\nstages = [\"sev\", \"json\"]\n[plugins.json]\npath = \"{parser}\"\n[plugins.sev]\npath = \"{filter}\"\n"
    ));
    assert!(
        parser_not_first.contains("a parser must be the first stage"),
        "{parser_not_first}"
    );
}
