//! `peer-calls`: web-first video conferencing on a sharded SFU.

mod cli;
mod config;
mod play;

use std::process::ExitCode;

fn main() -> ExitCode {
    let (cli, provenance) = match config::parse(std::env::args_os().collect()) {
        Ok(parsed) => parsed,
        Err(config::ConfigError::Usage(e)) => e.exit(),
        Err(e) => {
            eprintln!("peer-calls: {e}");
            return ExitCode::FAILURE;
        }
    };
    let provenance = provenance.unwrap_or_default();
    init_logging();
    let result = match cli.command.unwrap_or(cli::Command::Serve(cli.serve)) {
        cli::Command::Serve(args) => cli::serve(args, &provenance),
        cli::Command::Config(args) => match args.config() {
            Ok(_) => {
                print!("{}", config::render(&provenance));
                Ok(())
            }
            Err(e) => Err(anyhow::anyhow!("{}", e.located(&provenance))),
        },
        cli::Command::Play(args) => play::run(args),
        cli::Command::Bench(args) => bench::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("peer-calls: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();
}
