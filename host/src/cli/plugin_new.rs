//! `sluice plugin new NAME --kind filter|parser|detector`: a plugin crate from a template that
//! builds to `wasm32-wasip2` and passes its own unit test as created.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};

/// The kind of plugin to create.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Kind {
    Filter,
    Parser,
    Detector,
}

const CARGO_TOML: &str = include_str!("../../templates/Cargo.toml.tmpl");
const FILTER: &str = include_str!("../../templates/filter.rs");
const PARSER: &str = include_str!("../../templates/parser.rs");
const DETECTOR: &str = include_str!("../../templates/detector.rs");

/// The SDK of the source tree this binary was built from.
fn default_sdk_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sdk")
}

fn valid_crate_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|first| first.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Creates the crate.
pub fn run(
    name: &str,
    kind: Kind,
    dir: Option<PathBuf>,
    sdk: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    if !valid_crate_name(name) {
        bail!(
            "`{name}` is not a valid crate name: use lowercase letters, digits, `-` and `_`, starting with a letter"
        );
    }
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    if dir.exists() {
        bail!(
            "{} already exists; choose another name or --dir",
            dir.display()
        );
    }
    let sdk = sdk.unwrap_or_else(default_sdk_path);
    let sdk = sdk.canonicalize().with_context(|| {
        format!(
            "the SDK is not at {}; pass --sdk PATH to the sluice-sdk crate",
            sdk.display()
        )
    })?;
    if !sdk.join("Cargo.toml").exists() {
        bail!(
            "{} holds no Cargo.toml; pass --sdk PATH to the sluice-sdk crate",
            sdk.display()
        );
    }
    let source = match kind {
        Kind::Filter => FILTER,
        Kind::Parser => PARSER,
        Kind::Detector => DETECTOR,
    };
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{sdk_path}}", &sdk.display().to_string())
    };
    std::fs::create_dir_all(dir.join("src"))
        .with_context(|| format!("creating {}", dir.display()))?;
    write(&dir.join("Cargo.toml"), &fill(CARGO_TOML))?;
    write(&dir.join("src/lib.rs"), &fill(source))?;
    write(&dir.join(".gitignore"), "/target\n")?;
    let wasm = format!(
        "target/wasm32-wasip2/plugin/{}.wasm",
        name.replace('-', "_")
    );
    let kind_name = format!("{kind:?}").to_lowercase();
    write(
        &dir.join("README.md"),
        &format!(
            "# {name}\n\nA Sluice {kind_name} plugin.\n\n```sh\ncargo test                                            # unit tests, natively\ncargo build --target wasm32-wasip2 --profile plugin   # the plugin: {wasm}\nsluice plugin test {wasm} --input sample.jsonl         # run it in the real sandbox\n```\n"
        ),
    )?;
    eprintln!("created {} ({kind_name} plugin)", dir.display());
    eprintln!(
        "next: cd {} && cargo test && cargo build --target wasm32-wasip2 --profile plugin",
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn write(path: &Path, content: &str) -> anyhow::Result<()> {
    std::fs::write(path, content).with_context(|| format!("writing {}", path.display()))
}
