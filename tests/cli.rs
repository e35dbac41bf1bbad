//! The plugin author's command line, driven as an author would: `sluice plugin new`, then
//! `cargo test` and a wasm build of the new crate, then `sluice plugin test` over files.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::{plugin_wasm, sluice_binary, workspace_root};

fn sluice(args: &[&str]) -> Output {
    Command::new(sluice_binary())
        .args(args)
        .env("SLUICE_CACHE_DIR", cache_dir())
        .output()
        .unwrap()
}

fn cache_dir() -> std::path::PathBuf {
    workspace_root().join("target/test-plugin-cache")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn json_lines(output: &Output) -> Vec<serde_json::Value> {
    text(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn plugin_test_runs_a_filter_over_records() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("records.jsonl");
    std::fs::write(
        &input,
        [
            r#"{"severity_number":9,"body":"started"}"#,
            r#"{"severity_number":17,"body":"payment failed","attributes":{"order":42}}"#,
            r#"{"severity_number":13,"body":"slow"}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let wasm = plugin_wasm("severity-filter");
    let output = sluice(&[
        "plugin",
        "test",
        wasm.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--config",
        r#"{"min_severity":"warn"}"#,
    ]);
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let records = json_lines(&output);
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["body"], "payment failed");
    assert_eq!(records[0]["attributes"]["order"], 42);
    assert_eq!(records[1]["body"], "slow");
    assert!(
        stderr.contains("records    in 3 out 2 dropped 1"),
        "{stderr}"
    );
    assert!(stderr.contains("ns per record"), "{stderr}");
}

#[test]
fn plugin_test_reports_faults_and_bad_input_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("records.jsonl");
    std::fs::write(
        &input,
        "{\"body\":\"fine\"}\nnot json\n{\"body\":\"trigger\"}\n",
    )
    .unwrap();
    let wasm = plugin_wasm("hostile");
    let output = sluice(&[
        "plugin",
        "test",
        wasm.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--config",
        r#"{"mode":"loop"}"#,
        "--batch-size",
        "1",
    ]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(":2: not a record"), "{stderr}");
    assert!(
        stderr.contains("interrupted at its deadline of 10 ms"),
        "{stderr}"
    );
    assert!(stderr.contains("deadline hits 1"), "{stderr}");
    // The good record before the fault still came out.
    assert_eq!(json_lines(&output).len(), 1);
}

#[test]
fn plugin_test_runs_a_detector_and_ticks_a_quiet_stream_to_its_resolution() {
    let wasm = plugin_wasm("error-burst");
    let sample = workspace_root().join("plugins/error-burst/samples/records.jsonl");
    let run = |tick: Option<&str>| {
        let mut args = vec![
            "plugin",
            "test",
            wasm.to_str().unwrap(),
            "--input",
            sample.to_str().unwrap(),
            "--batch-size",
            "10",
        ];
        args.extend(tick.map(|tick| ["--tick", tick]).into_iter().flatten());
        let output = sluice(&args);
        assert!(output.status.success(), "{}", text(&output.stderr));
        json_lines(&output)
            .iter()
            .map(|alert| format!("{} {}", alert["name"], alert["status"]))
            .collect::<Vec<_>>()
    };
    // The sample's burst fires; with the stream quiet until 10:05 it has also resolved.
    assert_eq!(run(None), [r#""ErrorBurst" "firing""#]);
    assert_eq!(
        run(Some("2026-11-23T10:05:00Z")),
        [r#""ErrorBurst" "firing""#, r#""ErrorBurst" "resolved""#]
    );
}

#[test]
fn plugin_test_refuses_a_wrong_pin() {
    let wasm = plugin_wasm("severity-filter");
    let output = sluice(&[
        "plugin",
        "test",
        wasm.to_str().unwrap(),
        "--input",
        "/dev/null",
        "--sha256",
        &"ab".repeat(32),
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("sha256 mismatch"),
        "{}",
        text(&output.stderr)
    );
}

fn cargo(dir: &Path, args: &[&str]) {
    let output = Command::new(env!("CARGO"))
        .args(args)
        .current_dir(dir)
        // Its own target dir: the outer `cargo test` holds the workspace's.
        .env(
            "CARGO_TARGET_DIR",
            workspace_root().join("target/template-check"),
        )
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cargo {args:?} failed:\n{}\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
}

#[test]
fn plugin_new_templates_build_test_and_run_in_the_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    let samples = [
        (
            "filter",
            "my-filter",
            "{\"severity_number\":9,\"body\":\"GET /healthcheck\"}\n{\"severity_number\":17,\"body\":\"boom\"}\n",
        ),
        (
            "parser",
            "my-parser",
            "level=error msg=boom user=7\nnot pairs\n",
        ),
        (
            "detector",
            "my-detector",
            "{\"body\":\"OutOfMemory\"}\n{\"body\":\"OutOfMemory\"}\n{\"body\":\"OutOfMemory\"}\n",
        ),
    ];
    for (kind, name, sample) in samples {
        let crate_dir = dir.path().join(name);
        let output = sluice(&[
            "plugin",
            "new",
            name,
            "--kind",
            kind,
            "--dir",
            crate_dir.to_str().unwrap(),
        ]);
        assert!(output.status.success(), "{}", text(&output.stderr));
        // Refuses to overwrite.
        assert!(
            !sluice(&[
                "plugin",
                "new",
                name,
                "--kind",
                kind,
                "--dir",
                crate_dir.to_str().unwrap()
            ])
            .status
            .success()
        );
        cargo(&crate_dir, &["test", "--quiet"]);
        cargo(
            &crate_dir,
            &[
                "build",
                "--quiet",
                "--target",
                "wasm32-wasip2",
                "--profile",
                "plugin",
            ],
        );
        let wasm = workspace_root().join(format!(
            "target/template-check/wasm32-wasip2/plugin/{}.wasm",
            name.replace('-', "_")
        ));
        let input = crate_dir.join("sample.txt");
        std::fs::write(&input, sample).unwrap();
        let output = sluice(&[
            "plugin",
            "test",
            wasm.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
        ]);
        let stderr = text(&output.stderr);
        assert!(output.status.success(), "{kind}: {stderr}");
        let lines = json_lines(&output);
        match kind {
            "filter" => {
                assert_eq!(lines.len(), 1, "{lines:?}");
                assert_eq!(lines[0]["attributes"]["reviewed_by"], "my-filter");
            }
            "parser" => {
                assert_eq!(lines.len(), 2, "{lines:?}");
                assert_eq!(lines[0]["body"], "boom");
                assert_eq!(lines[0]["attributes"]["user"], "7");
                assert!(
                    lines[1]["attributes"]["sluice.parse_error"].is_string(),
                    "{lines:?}"
                );
            }
            _ => {
                assert_eq!(lines.len(), 1, "{lines:?}");
                assert_eq!(lines[0]["name"], "my-detector");
                assert_eq!(lines[0]["status"], "firing");
            }
        }
    }
    assert!(
        !sluice(&["plugin", "new", "Bad Name", "--kind", "filter"])
            .status
            .success()
    );
}
