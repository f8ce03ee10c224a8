//! The `mpcflow` command: check, plan, run and benchmark pipeline files, and run one party or
//! the dealer per process.

mod cmd;
mod memory;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// mpcflow: secure multi-party computation from pipeline files.
#[derive(Parser)]
#[command(name = "mpcflow", version, about, long_about = None)]
struct Cli {
    /// More logging (-v info, -vv debug); RUST_LOG overrides. Logs never show values.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a pipeline file and summarise it.
    Check(cmd::check::Args),
    /// Show the plan with per-node rounds and bytes, or draw it (--dot).
    Plan(cmd::plan::Args),
    /// Run a pipeline: every party and the dealer in this process.
    Run(cmd::run::Args),
    /// Deal the offline material ahead of time into one file per party.
    Deal(cmd::deal::Args),
    /// Benchmark the runtime end to end: time, bytes, rounds and peak memory.
    Bench(cmd::bench::Args),
    /// Run one party in this process, connected to the others over TLS (see `certs`).
    Party(cmd::party::Args),
    /// Run the dealer in this process, connected to the parties over TLS.
    Dealer(cmd::dealer::Args),
    /// Run a data owner in this process: share its inputs with the parties over TLS and show
    /// the outputs revealed to it.
    Owner(cmd::owner::Args),
    /// Turn an ONNX model into a pipeline file and its owner's weight files.
    Import(cmd::import::Args),
    /// Make the certificates and deployment file of a multi-process deployment.
    #[command(subcommand)]
    Certs(cmd::certs::Command),
    /// Third-party plugins: list what is built in and what files load.
    #[command(subcommand)]
    Plugins(cmd::plugins::Command),
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

/// `mpcflow plan x.yaml | head` closes stdout early; Rust ignores SIGPIPE, so `println!` then
/// panics. A reader that stopped reading is not an error: exit quietly, as other tools do.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg =
            payload.downcast_ref::<String>().map(String::as_str).or_else(|| payload.downcast_ref::<&str>().copied());
        if msg.is_some_and(|m| m.contains("failed printing to stdout") && m.contains("Broken pipe")) {
            std::process::exit(0);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    let _ = memory::keep_freed_memory();
    quiet_on_closed_stdout();
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Check(a) => cmd::check::run(a),
        Command::Plan(a) => cmd::plan::run(a),
        Command::Run(a) => cmd::run::run(a),
        Command::Deal(a) => cmd::deal::run(a),
        Command::Bench(a) => cmd::bench::run(a),
        Command::Party(a) => cmd::party::run(a),
        Command::Dealer(a) => cmd::dealer::run(a),
        Command::Owner(a) => cmd::owner::run(a),
        Command::Certs(c) => cmd::certs::run(c),
        Command::Import(a) => cmd::import::run(a),
        Command::Plugins(c) => cmd::plugins::run(c),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
