//! The `sluice` command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sluice::cli;

#[derive(Parser)]
#[command(name = "sluice", version, about = "Sluice observability gateway")]
struct Command {
    #[command(subcommand)]
    command: Top,
}

#[derive(Subcommand)]
enum Top {
    /// Run the gateway on CONFIG, or on the embedded default config.
    Run {
        /// Config file (TOML). Default: the embedded conf/sluice.toml.
        config: Option<PathBuf>,
    },
    /// Check a config: it parses, every plugin loads and accepts its config, references resolve.
    Validate {
        /// Config file (TOML). Default: the embedded conf/sluice.toml.
        config: Option<PathBuf>,
    },
    /// Work on plugins: create one from a template, run one over a file.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Send a recorded file of OTLP/JSON lines (the Collector's file exporter format) to a
    /// gateway over OTLP/HTTP, paced, with timestamps optionally moved to now.
    Replay(cli::replay::ReplayArgs),
    /// Look into the durable intake log.
    Buffer {
        #[command(subcommand)]
        command: BufferCommand,
    },
}

#[derive(Subcommand)]
enum BufferCommand {
    /// Show a buffer directory's segments, the sinks' cursors and any damage (read-only: safe on
    /// a running gateway's directory). Exits with 1 when it finds damage.
    Inspect {
        /// The buffer directory (`[buffer] path`, default ./data/buffer).
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Create a plugin crate from a template that builds and passes its own test as created.
    New {
        /// Crate name (and directory name).
        name: String,
        /// Plugin kind.
        #[arg(long, value_enum)]
        kind: cli::plugin_new::Kind,
        /// Directory to create the crate in. Default: ./NAME.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Path of the sluice-sdk crate. Default: the SDK of the tree this binary was built from.
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Run a plugin in the real sandbox over a file: output records or alerts as JSON lines on
    /// stdout, a summary on stderr.
    Test(cli::plugin_test::PluginTestArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let result = match Command::parse().command {
        Top::Run { config } => cli::run::run(config.as_deref()),
        Top::Validate { config } => cli::run::validate(config.as_deref()),
        Top::Plugin {
            command:
                PluginCommand::New {
                    name,
                    kind,
                    dir,
                    sdk,
                },
        } => cli::plugin_new::run(&name, kind, dir, sdk),
        Top::Plugin {
            command: PluginCommand::Test(args),
        } => cli::plugin_test::run(&args),
        Top::Replay(args) => cli::replay::run(&args),
        Top::Buffer {
            command: BufferCommand::Inspect { dir },
        } => sluice::intake::inspect::inspect(&dir).map(|report| {
            print!("{}", report.text);
            if report.damaged {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
