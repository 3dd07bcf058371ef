//! Command-line interface: clap definitions and a thin dispatch. Raw arguments become a
//! validated [`Config`] first (ripgrep-style); every verb is one library call.

mod args;
mod commands;
mod monitor;
mod reproduce;

use clap::Parser;

pub use args::{Cli, Command, GlobalArgs};
pub use commands::Config;

/// Parse arguments, run, and return the process exit code:
/// 0 = ok, 1 = the run failed, 2 = bad input.
pub fn main() -> i32 {
    let cli = Cli::parse();
    init_tracing(cli.global.verbose, cli.global.quiet);
    crate::progress::set_quiet(cli.global.quiet);
    let result = Config::from_args(&cli.global).and_then(|config| commands::dispatch(cli.command, &config));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

fn init_tracing(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("GAPBENCH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("gapbench={level}")));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
