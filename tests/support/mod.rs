//! Shared helpers of the integration tests: where the built plugins are.

#![allow(dead_code)]

pub mod alerts;
pub mod gateway;
pub mod prompb;

use std::path::PathBuf;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Path of a plugin built to `wasm32-wasip2` by `scripts/build-plugins`; panics with the fix
/// when it is missing.
pub fn plugin_wasm(crate_name: &str) -> PathBuf {
    let dir = std::env::var_os("SLUICE_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/wasm32-wasip2/plugin"));
    let path = dir.join(format!("{}.wasm", crate_name.replace('-', "_")));
    assert!(
        path.exists(),
        "{} is missing: build the plugins first with `bash scripts/build-plugins` (the README's test command does)",
        path.display()
    );
    path
}

/// Path of the `sluice` binary cargo built for these tests.
pub fn sluice_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sluice"))
}

/// The Python interpreter of the test virtualenv (`scripts/python-env`), with the OpenTelemetry
/// SDK, pyarrow and DuckDB; `$SLUICE_PYTHON` overrides it. Panics with the fix when missing.
pub fn python() -> PathBuf {
    let path = std::env::var_os("SLUICE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/python/bin/python"));
    assert!(
        path.exists(),
        "{} is missing: set up the test virtualenv with `bash scripts/python-env` (the README's test command does)",
        path.display()
    );
    path
}

/// A free TCP port on 127.0.0.1 (bound then released; good enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("no free port on 127.0.0.1")
}
