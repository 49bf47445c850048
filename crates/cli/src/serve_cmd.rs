//! `conclave serve`: one node of a replicated key-value cluster.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::error::ErrorKind;
use clap::{Arg, ArgAction, ArgMatches, Args, Command, FromArgMatches};
use conclave_server::config::{settings, FlagValue};
use conclave_server::{ConfigFile, Server, Setting, SettingKind};

/// Flags of `conclave serve`: `--config FILE` and one flag per node setting. The settings and
/// their help come from `conclave_server::config::settings`, where each is defined once with its
/// TOML key, so a flag and a key cannot drift apart; a flag wins over the file.
#[derive(Clone, Debug, Default)]
pub struct ServeArgs {
    /// The TOML file given with `--config`.
    pub config: Option<PathBuf>,
    /// The settings given as flags.
    pub flags: ConfigFile,
}

/// The `--config` flag's id; no setting has this name (a test checks).
const CONFIG_FLAG: &str = "config";

/// A setting's flag, built from its definition.
fn setting_arg(setting: &Setting) -> Arg {
    let arg = Arg::new(setting.key).long(setting.flag()).help(setting.help_text());
    let arg = match setting.kind {
        SettingKind::Integer => {
            arg.value_name(setting.value_name).value_parser(clap::value_parser!(u64))
        }
        SettingKind::Text => arg.value_name(setting.value_name),
        SettingKind::Path => {
            arg.value_name(setting.value_name).value_parser(clap::value_parser!(PathBuf))
        }
        SettingKind::Switch => arg.action(ArgAction::SetTrue),
        SettingKind::List => {
            arg.value_name(setting.value_name).value_delimiter(',').action(ArgAction::Append)
        }
    };
    match setting.env {
        Some(env) => arg.env(env).hide_env_values(true),
        None => arg,
    }
}

impl Args for ServeArgs {
    fn augment_args(command: Command) -> Command {
        let config = Arg::new(CONFIG_FLAG)
            .long(CONFIG_FLAG)
            .value_name("FILE")
            .value_parser(clap::value_parser!(PathBuf));
        let config = config.help(
            "A TOML file with any of the settings below, by the flag's name with underscores \
             (e.g. `id = 1`, `data_dir = \"d1\"`, `members = [\"1=127.0.0.1:7100\", ...]`); \
             a flag wins over the file.",
        );
        command.arg(config).args(settings().iter().map(setting_arg))
    }

    fn augment_args_for_update(command: Command) -> Command {
        Self::augment_args(command)
    }
}

impl FromArgMatches for ServeArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut args = ServeArgs::default();
        args.update_from_arg_matches(matches)?;
        Ok(args)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        if let Some(path) = matches.get_one::<PathBuf>(CONFIG_FLAG) {
            self.config = Some(path.clone());
        }
        for setting in settings() {
            let key = setting.key;
            let value = match setting.kind {
                SettingKind::Integer => matches.get_one::<u64>(key).map(|n| FlagValue::Integer(*n)),
                SettingKind::Text => matches.get_one::<String>(key).cloned().map(FlagValue::Text),
                SettingKind::Path => matches
                    .get_one::<PathBuf>(key)
                    .map(|path| FlagValue::Text(path.display().to_string())),
                SettingKind::Switch => matches.get_flag(key).then_some(FlagValue::Switch(true)),
                SettingKind::List => matches
                    .get_many::<String>(key)
                    .map(|items| FlagValue::List(items.cloned().collect())),
            };
            if let Some(value) = value {
                self.flags.set_flag(key, value).map_err(|error| {
                    clap::Error::raw(ErrorKind::ValueValidation, format!("{error}\n"))
                })?;
            }
        }
        Ok(())
    }
}

/// Sets up `tracing` from RUST_LOG, or `level` when it is unset. Colours only on a terminal:
/// a node's log is often a file (`conclave up` writes DATA_DIR/node-N.log), which must stay
/// plain text for `grep` and editors.
pub fn init_logging(level: &str) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

/// Runs a node until SIGINT or SIGTERM; exits non-zero if it had to stop (storage failure).
pub fn run(args: &ServeArgs) -> Result<()> {
    let file = match &args.config {
        Some(path) => ConfigFile::load(path)?,
        None => ConfigFile::default(),
    };
    let merged = file.merge(args.flags.clone());
    let log_level = ConfigFile::defaults().merge(merged.clone()).log_level.unwrap_or_default();
    init_logging(&log_level);
    let config = merged.resolve()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("conclave")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let server = Server::start(config).await?;
        if let Some(tls) = server.shared().tls.clone() {
            tokio::spawn(reload_on_sighup(tls));
        }
        server.run(shutdown_signal()).await?;
        Ok(())
    })
}

/// Reloads the TLS certificates on each SIGHUP, the signal daemons take as "read your files
/// again"; a failure is logged by the reload and the current certificates stay.
async fn reload_on_sighup(tls: std::sync::Arc<conclave_server::TlsState>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else { return };
    while hangups.recv().await.is_some() {
        let _ = tls.reload();
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Serve {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn parse(flags: &[&str]) -> Result<ServeArgs, clap::Error> {
        Serve::try_parse_from(std::iter::once("serve").chain(flags.iter().copied())).map(|s| s.args)
    }

    #[test]
    fn every_setting_is_a_flag_and_lands_in_its_field() {
        let args = parse(&[
            "--id=2",
            "--data-dir=d",
            "--members=1=127.0.0.1:7100,2=127.0.0.1:7101",
            "--join",
            "--tick-ms=15",
            "--max-request-bytes=2048",
            "--config=node.toml",
        ])
        .unwrap();
        assert_eq!(args.config, Some(PathBuf::from("node.toml")));
        let expected = ConfigFile {
            id: Some(2),
            data_dir: Some("d".into()),
            members: Some(vec!["1=127.0.0.1:7100".into(), "2=127.0.0.1:7101".into()]),
            join: Some(true),
            tick_ms: Some(15),
            max_request_bytes: Some(2048),
            ..ConfigFile::default()
        };
        assert_eq!(args.flags, expected);
        assert!(settings().iter().all(|s| s.key != CONFIG_FLAG));
    }

    #[test]
    fn unset_flags_leave_the_file_and_the_defaults_alone() {
        let args = parse(&[]).unwrap();
        assert_eq!(args.flags.tick_ms, None);
        assert_eq!(args.flags.join, None);
    }

    #[test]
    fn bad_values_name_the_flag_or_the_setting() {
        let error = parse(&["--tick-ms=soon"]).unwrap_err().to_string();
        assert!(error.contains("--tick-ms"), "{error}");
        let error = parse(&["--election-ticks=99999999999"]).unwrap_err().to_string();
        assert!(error.contains("election_ticks"), "{error}");
    }
}
