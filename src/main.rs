//! `peer-calls`: web-first video conferencing on a sharded SFU.

mod cli;
mod config;
mod play;
mod token;

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
        cli::Command::Token(args) => token::run(&args),
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
    tracing_subscriber::fmt()
        .with_env_filter(log_filter(std::env::var("RUST_LOG").ok().as_deref()))
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();
}

/// `RUST_LOG` (default `info`), with what a peer's data channel does wrong left out: sctp-proto
/// logs a peer's ABORT, which browsers send when a tab goes away, as an ERROR, and ERROR must
/// mean that the operator should act. How sessions end is logged by the server itself, one
/// info line each. `RUST_LOG=sctp_proto=debug` shows sctp-proto again.
fn log_filter(rust_log: Option<&str>) -> tracing_subscriber::EnvFilter {
    use tracing_subscriber::EnvFilter;
    let spec = rust_log.filter(|s| !s.trim().is_empty()).unwrap_or("info");
    let filter = EnvFilter::try_new(spec).unwrap_or_else(|_| EnvFilter::new("info"));
    if spec.contains("sctp_proto") {
        filter
    } else {
        filter.add_directive("sctp_proto=off".parse().expect("a valid directive"))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::log_filter;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    fn logged(rust_log: Option<&str>) -> String {
        let out = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(log_filter(rust_log))
            .with_writer(out.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(target: "sctp_proto::association", "handle_inbound got err: abort chunk");
            tracing::error!(target: "signaling::server", "a real failure");
        });
        String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn a_peers_sctp_abort_is_not_an_error_but_real_errors_are() {
        for rust_log in [
            None,
            Some("info"),
            Some("debug"),
            Some("warn,signaling=debug"),
        ] {
            let out = logged(rust_log);
            assert!(!out.contains("abort chunk"), "{rust_log:?}: {out}");
            assert!(out.contains("a real failure"), "{rust_log:?}: {out}");
        }
        assert!(logged(Some("info,sctp_proto=debug")).contains("abort chunk"));
    }
}
