//! The configuration file (`--config FILE`, TOML). Every option of `serve` has a key of
//! the same name in snake_case (`--udp-port` is `udp_port`); a repeatable option takes an
//! array. Precedence: a flag, then its `PEERCALLS_*` environment variable, then the file,
//! then the default.
//!
//! The file is read into the same command line that flags and environment variables fill:
//! each key the flags and the environment left at its default becomes a flag, checked by
//! the same parser one key at a time. So a value in a file means exactly what the flag
//! means, and an unknown key, a wrong type or a bad value is an error that names the file,
//! the line and the key. [`Provenance`] remembers where each value came from for
//! `peer-calls config` and for errors found later (a range check names the file's line).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, CommandFactory, FromArgMatches};
use toml::Spanned;

use crate::cli::Cli;

/// Where one option's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// A flag on the command line.
    Flag,
    /// Its environment variable.
    Env(String),
    /// A line of the configuration file.
    File { path: PathBuf, line: usize },
    /// The built-in default (or not set at all).
    Default,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Flag => f.write_str("command line"),
            Source::Env(var) => write!(f, "environment {var}"),
            Source::File { path, line } => write!(f, "{}:{line}", path.display()),
            Source::Default => f.write_str("default"),
        }
    }
}

/// Where every option of the server's command came from, by its id (the key's name).
#[derive(Debug, Clone, Default)]
pub(crate) struct Provenance {
    sources: BTreeMap<String, Source>,
    /// The effective values as the parser holds them (for `peer-calls config`).
    values: BTreeMap<String, Vec<String>>,
}

impl Provenance {
    /// Where `key`'s value came from.
    pub(crate) fn source(&self, key: &str) -> Source {
        self.sources.get(key).cloned().unwrap_or(Source::Default)
    }

    /// A message about `key`, prefixed with where its value came from when that was the
    /// file (its line) or the environment (its variable).
    pub(crate) fn locate(&self, key: &str, message: &str) -> String {
        match self.source(key) {
            Source::File { path, line } => {
                format!("{}:{line}: {key}: {message}", path.display())
            }
            Source::Env(var) => format!("{var}: {message}"),
            Source::Flag | Source::Default => message.to_owned(),
        }
    }
}

/// Why the configuration cannot be used: the server does not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    /// The command line itself (or `--help`, `--version`): clap prints it.
    #[error("{0}")]
    Usage(#[from] clap::Error),
    #[error("cannot read the configuration file {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    At {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// The command line with the configuration file applied, and where each value came from
/// (`None` for the commands that take no file: `play`, `bench`).
pub(crate) fn parse(argv: Vec<OsString>) -> Result<(Cli, Option<Provenance>), ConfigError> {
    let cmd = Cli::command();
    let matches = cmd.clone().try_get_matches_from(argv.clone())?;
    let Some((serve, sub)) = serve_matches(&matches) else {
        return Ok((Cli::from_arg_matches(&matches)?, None));
    };
    let serve_cmd = match sub {
        Some(name) => cmd
            .find_subcommand(name)
            .cloned()
            .expect("a known subcommand"),
        None => cmd.clone(),
    };
    let mut provenance = provenance_of(serve, &serve_cmd);
    let mut argv = argv;
    if let Some(path) = serve.get_one::<PathBuf>("config") {
        let tokens = read_file(path, serve, &serve_cmd, &mut provenance)?;
        // Flags after the subcommand's name (or at the end without one) belong to it.
        argv.extend(tokens);
    }
    let matches = cmd.try_get_matches_from(argv)?;
    if let Some((serve, _)) = serve_matches(&matches) {
        for arg in serve_cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if let Ok(Some(raw)) = serve.try_get_raw(id) {
                let values = raw.map(|v| v.to_string_lossy().into_owned()).collect();
                provenance.values.insert(id.to_owned(), values);
            }
        }
    }
    let cli = Cli::from_arg_matches(&matches)?;
    Ok((cli, Some(provenance)))
}

/// The matches of the server's options: the top level (no subcommand: `serve` is the
/// default), `serve` or `config`. `None` for the other subcommands.
fn serve_matches(matches: &ArgMatches) -> Option<(&ArgMatches, Option<&'static str>)> {
    match matches.subcommand() {
        None => Some((matches, None)),
        Some(("serve", m)) => Some((m, Some("serve"))),
        Some(("config", m)) => Some((m, Some("config"))),
        Some(_) => None,
    }
}

/// Where the flags and the environment put each option; the rest is the default so far.
fn provenance_of(m: &ArgMatches, cmd: &clap::Command) -> Provenance {
    let mut sources = BTreeMap::new();
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        let source = match m.value_source(id) {
            Some(ValueSource::CommandLine) => Source::Flag,
            Some(ValueSource::EnvVariable) => Source::Env(
                arg.get_env()
                    .map(|e| e.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            ),
            _ => Source::Default,
        };
        sources.insert(id.to_owned(), source);
    }
    Provenance {
        sources,
        values: BTreeMap::new(),
    }
}

/// Reads the file and returns the flags for the keys that neither a flag nor the
/// environment set, each checked by the command's own parser.
fn read_file(
    path: &Path,
    m: &ArgMatches,
    cmd: &clap::Command,
    provenance: &mut Provenance,
) -> Result<Vec<OsString>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_owned(),
        error,
    })?;
    let at = |offset: usize, message: String| ConfigError::At {
        path: path.to_owned(),
        line: line_of(&text, offset),
        message,
    };
    let table: BTreeMap<Spanned<String>, Spanned<toml::Value>> = toml::from_str(&text)
        .map_err(|e| at(e.span().map_or(0, |s| s.start), e.message().to_owned()))?;
    let mut entries: Vec<_> = table.into_iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    let mut tokens = Vec::new();
    for (key, value) in entries {
        let offset = key.span().start;
        let key = key.into_inner();
        let Some(arg) = cmd
            .get_arguments()
            .find(|a| a.get_id().as_str() == key && a.get_long().is_some())
        else {
            return Err(at(offset, unknown_key(&key, cmd)));
        };
        if key == "config" {
            return Err(at(
                offset,
                "a configuration file cannot name another".into(),
            ));
        }
        let flag = format!("--{}", arg.get_long().expect("checked above"));
        let arg_tokens = value_tokens(&flag, arg, value.get_ref())
            .map_err(|message| at(offset, format!("{key}: {message}")))?;
        // Checked alone by the command's parser: its message names the file's line.
        // (An option that needs another, like tls_cert, is checked for it with the rest.)
        if let Err(e) = cmd.clone().try_get_matches_from(
            std::iter::once(OsString::from("peer-calls")).chain(arg_tokens.clone()),
        ) && e.kind() != clap::error::ErrorKind::MissingRequiredArgument
        {
            return Err(at(offset, format!("{key}: {}", clap_message(&e))));
        }
        if matches!(
            m.value_source(&key),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue; // a flag or the environment wins
        }
        provenance.sources.insert(
            key,
            Source::File {
                path: path.to_owned(),
                line: line_of(&text, offset),
            },
        );
        tokens.extend(arg_tokens);
    }
    Ok(tokens)
}

/// The flags a value stands for: `--flag value`, `--flag` for `true` of a switch, one
/// `--flag value` per element of an array for a repeatable option.
fn value_tokens(flag: &str, arg: &clap::Arg, value: &toml::Value) -> Result<Vec<OsString>, String> {
    let scalar = |v: &toml::Value| -> Result<String, String> {
        match v {
            toml::Value::String(s) => Ok(s.clone()),
            toml::Value::Integer(i) => Ok(i.to_string()),
            toml::Value::Float(f) => Ok(f.to_string()),
            toml::Value::Boolean(b) => Ok(b.to_string()),
            other => Err(format!(
                "expected a string, a number or a boolean, not {}",
                other.type_str()
            )),
        }
    };
    match arg.get_action() {
        ArgAction::SetTrue => match value {
            toml::Value::Boolean(true) => Ok(vec![flag.into()]),
            toml::Value::Boolean(false) => Ok(Vec::new()),
            other => Err(format!("expected true or false, not {}", other.type_str())),
        },
        ArgAction::Append => {
            let values = match value {
                toml::Value::Array(a) => a.iter().map(scalar).collect::<Result<Vec<_>, _>>()?,
                v => vec![scalar(v)?],
            };
            Ok(values
                .into_iter()
                .flat_map(|v| [OsString::from(flag), v.into()])
                .collect())
        }
        _ => match value {
            toml::Value::Array(_) => Err("takes one value, not an array".into()),
            v => Ok(vec![flag.into(), scalar(v)?.into()]),
        },
    }
}

/// A clap error's own sentence, without its usage lines.
fn clap_message(e: &clap::Error) -> String {
    let text = e.render().to_string();
    text.lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_owned()
}

fn unknown_key(key: &str, cmd: &clap::Command) -> String {
    let known: Vec<&str> = cmd
        .get_arguments()
        .filter(|a| a.get_long().is_some() && a.get_id() != "config")
        .map(|a| a.get_id().as_str())
        .collect();
    let close = known
        .iter()
        .find(|k| k.replace('_', "") == key.replace(['_', '-'], "") || strsim_close(k, key));
    match close {
        Some(k) => format!("unknown key {key:?}; did you mean {k:?}?"),
        None => format!("unknown key {key:?}; the keys are: {}", known.join(", ")),
    }
}

/// Two keys at most two typos apart (a character added, left out, changed, or two
/// swapped): the optimal-string-alignment distance.
fn strsim_close(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()] <= 2
}

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// `peer-calls config`: the effective configuration as a file, each value with where it
/// came from. Secrets are not shown.
pub(crate) fn render(provenance: &Provenance) -> String {
    let cmd = Cli::command();
    let serve = cmd
        .find_subcommand("config")
        .expect("the config subcommand");
    let cli_args: Vec<&clap::Arg> = serve
        .get_arguments()
        .filter(|a| a.get_long().is_some() && a.get_id() != "config")
        .collect();
    let mut out = String::from(
        "# The effective configuration of `peer-calls serve`, as a file\n# (every value with where it came from).\n",
    );
    for arg in cli_args {
        let key = arg.get_id().as_str();
        let _ = writeln!(out, "{}", entry(arg, key, provenance));
    }
    out
}

fn entry(arg: &clap::Arg, key: &str, provenance: &Provenance) -> String {
    let source = provenance.source(key);
    let shown = match provenance.values.get(key) {
        None => return format!("# {key} =    # not set ({source})"),
        Some(_) if arg.is_hide_env_values_set() => "\"(set, not shown)\"".to_owned(),
        Some(values) if matches!(arg.get_action(), ArgAction::Append) => format!(
            "[{}]",
            values
                .iter()
                .map(|v| toml_value(v))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Some(values) => toml_value(values.first().map_or("", String::as_str)),
    };
    format!("{key} = {shown}    # {source}")
}

fn toml_value(v: &str) -> String {
    if v.parse::<i64>().is_ok() || v.parse::<f64>().is_ok() || v == "true" || v == "false" {
        v.to_owned()
    } else {
        toml::Value::String(v.to_owned()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `text` to a file of its own and parses `args` with `--config` naming it.
    fn with_file(
        text: &str,
        args: &[&str],
    ) -> (Result<(Cli, Option<Provenance>), ConfigError>, PathBuf) {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("peer-calls-config-{}-{n}.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        let mut argv: Vec<OsString> = vec!["peer-calls".into()];
        argv.extend(args.iter().map(OsString::from));
        argv.push("--config".into());
        argv.push(path.clone().into());
        (parse(argv), path)
    }

    fn message(r: Result<(Cli, Option<Provenance>), ConfigError>) -> String {
        match r {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_file_fills_what_flags_leave_and_says_where_each_value_came_from() {
        let text = "udp_port = 40000\nshards = 3\nno_pin = true\nmetrics_token = \"s3cret\"\n";
        let (r, path) = with_file(text, &["--shards", "2"]);
        let (cli, provenance) = r.unwrap();
        let provenance = provenance.unwrap();
        assert_eq!(cli.serve.udp_port, 40000);
        assert_eq!(cli.serve.shards, Some(2), "a flag wins over the file");
        assert!(cli.serve.no_pin);
        assert_eq!(
            provenance.source("udp_port"),
            Source::File {
                path: path.clone(),
                line: 1
            }
        );
        assert_eq!(provenance.source("shards"), Source::Flag);
        assert_eq!(provenance.source("max_rooms"), Source::Default);
        let shown = render(&provenance);
        assert!(
            shown.contains(&format!("udp_port = 40000    # {}:1", path.display())),
            "{shown}"
        );
        assert!(shown.contains("shards = 2    # command line"), "{shown}");
        assert!(shown.contains("max_rooms = 10000    # default"), "{shown}");
        assert!(
            shown.contains("# advertise_ip =    # not set (default)"),
            "{shown}"
        );
        assert!(!shown.contains("s3cret"), "secrets are not shown: {shown}");
        assert!(
            shown.contains("metrics_token = \"(set, not shown)\""),
            "{shown}"
        );
    }

    #[test]
    fn an_unknown_key_a_wrong_type_or_a_bad_value_names_the_file_line_and_key() {
        let (r, path) = with_file("bind = \"127.0.0.1:3000\"\n\nudp_prot = 1\n", &[]);
        let e = message(r);
        assert_eq!(
            e,
            format!(
                "{}:3: unknown key \"udp_prot\"; did you mean \"udp_port\"?",
                path.display()
            )
        );
        let (r, path) = with_file("# a comment\nudp_port = \"many\"\n", &[]);
        let e = message(r);
        assert!(
            e.starts_with(&format!(
                "{}:2: udp_port: invalid value 'many'",
                path.display()
            )),
            "{e}"
        );
        let (r, _) = with_file("no_pin = 1\n", &[]);
        assert!(message(r).ends_with("no_pin: expected true or false, not integer"));
        let (r, _) = with_file("bind = [\"a\", \"b\"]\n", &[]);
        assert!(message(r).ends_with("bind: takes one value, not an array"));
        let (r, path) = with_file("max_rooms = 5\nmax_shard_load = 7\n", &[]);
        // A value that parses but cannot be used: found later, still named by its line.
        let (cli, provenance) = r.unwrap();
        let e = cli.serve.config().unwrap_err();
        assert_eq!(
            e.located(&provenance.unwrap()),
            format!(
                "{}:2: max_shard_load: must be between 0.1 and 1, not 7",
                path.display()
            )
        );
        let (r, path) = with_file("redis = \"localhost:6379\"\n", &[]);
        let (cli, provenance) = r.unwrap();
        let e = cli.serve.config().unwrap_err();
        let said = e.located(&provenance.unwrap());
        assert!(
            said.starts_with(&format!("{}:1: redis: not a Redis URL", path.display())),
            "{said}"
        );
        let (r, path) = with_file("bind = \n", &[]);
        assert!(message(r).starts_with(&format!("{}:1: ", path.display())));
    }

    #[test]
    fn the_example_file_parses_and_names_every_option() {
        let example = include_str!("../peer-calls.example.toml");
        let (r, _) = with_file(example, &[]);
        r.expect("the example, as shipped, is a valid file");
        // Every commented `key = value` line, uncommented, is a valid setting.
        let settings: String = example
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| l.split_once(" = ").is_some_and(|(k, _)| !k.contains(' ')))
            .map(|l| format!("{l}\n"))
            .collect();
        let (r, _) = with_file(&settings, &[]);
        r.expect("every example setting is valid");
        // And usable, but for the certificate files, which do not exist here.
        let usable: String = settings
            .lines()
            .filter(|l| !l.starts_with("tls_"))
            .map(|l| format!("{l}\n"))
            .collect();
        let (r, _) = with_file(&usable, &[]);
        let (cli, _) = r.expect("valid");
        cli.serve.config().expect("usable");
        let cmd = Cli::command();
        for arg in cmd.get_arguments().filter(|a| a.get_long().is_some()) {
            let key = arg.get_id().as_str();
            if key != "config" {
                assert!(
                    settings
                        .lines()
                        .any(|l| l.starts_with(&format!("{key} = "))),
                    "the example file shows {key}"
                );
            }
        }
    }
}
