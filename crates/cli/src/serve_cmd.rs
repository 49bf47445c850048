//! `conclave serve`: one node of a replicated key-value cluster.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use conclave_server::{ConfigFile, Server};

/// Flags of `conclave serve`. Each may also be set in the TOML file given with `--config`
/// (the same names with underscores); a flag wins over the file.
#[derive(Args, Debug, Default)]
pub struct ServeArgs {
    /// A TOML file with any of the settings below (e.g. `id = 1`, `data_dir = "d1"`,
    /// `members = ["1=127.0.0.1:7100", ...]`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// This node's id (1 or more). With --hostfile, the line index is the id.
    #[arg(long)]
    pub id: Option<u64>,
    /// Directory for the log, hard state and snapshots; reused across restarts.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address peers connect to. Default: this node's entry in --members, or the client port + 100.
    #[arg(long, value_name = "HOST:PORT")]
    pub peer_addr: Option<String>,
    /// Address Redis clients connect to. Default: the peer port - 100.
    #[arg(long, value_name = "HOST:PORT")]
    pub client_addr: Option<String>,
    /// Address of the HTTP admin port (/status, /metrics, /members, /transfer-leader).
    /// Default: the client port + 200.
    #[arg(long, value_name = "HOST:PORT")]
    pub admin_addr: Option<String>,
    /// The initial members and their peer addresses, comma-separated: `1=h:p,2=h:p,3=h:p`.
    /// Every node of a new cluster must be given the same list. Without it (and without a
    /// hostfile) the node starts a single-node cluster.
    #[arg(long, value_delimiter = ',', value_name = "ID=HOST:PORT,...")]
    pub members: Option<Vec<String>>,
    /// A file with one peer `host:port` per line (blank lines and `#` comments skipped); line n
    /// (from 1) is node n. Use with --index.
    #[arg(long, value_name = "FILE")]
    pub hostfile: Option<PathBuf>,
    /// With --hostfile: this node's line (from 1).
    #[arg(long)]
    pub index: Option<u64>,
    /// Start outside the membership, to be added later with `conclave cluster add`; --members
    /// then lists the running cluster's voters.
    #[arg(long)]
    pub join: bool,
    /// Require clients to AUTH with this password (forwarded writes use it too).
    #[arg(long, env = "CONCLAVE_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Cluster name; nodes with different names refuse to talk (default "conclave").
    #[arg(long)]
    pub cluster_name: Option<String>,
    /// Length of one protocol tick in ms (default 20).
    #[arg(long)]
    pub tick_ms: Option<u64>,
    /// Election timeout in ticks (default 10; the actual timeout is randomised in [1x, 2x)).
    #[arg(long)]
    pub election_ticks: Option<u32>,
    /// Heartbeat interval in ticks (default 1).
    #[arg(long)]
    pub heartbeat_ticks: Option<u32>,
    /// Snapshot the store every this many applied entries (default 100000).
    #[arg(long)]
    pub snapshot_entries: Option<u64>,
    /// Fail a request that takes longer than this, in ms (default 10000).
    #[arg(long)]
    pub request_timeout_ms: Option<u64>,
    /// How long a request waits for a leader during an election before `-CLUSTERDOWN`, in ms
    /// (default 3000).
    #[arg(long)]
    pub election_wait_ms: Option<u64>,
    /// Most client connections at once (default 10000).
    #[arg(long)]
    pub max_clients: Option<usize>,
    /// Largest request a client may send, in bytes (default 8 MiB).
    #[arg(long)]
    pub max_request_bytes: Option<usize>,
    /// Log level when RUST_LOG is not set: error, warn, info, debug or trace (default info).
    #[arg(long)]
    pub log_level: Option<String>,
}

impl ServeArgs {
    fn flags(&self) -> ConfigFile {
        ConfigFile {
            id: self.id,
            data_dir: self.data_dir.clone(),
            peer_addr: self.peer_addr.clone(),
            client_addr: self.client_addr.clone(),
            admin_addr: self.admin_addr.clone(),
            members: self.members.clone(),
            hostfile: self.hostfile.clone(),
            index: self.index,
            join: self.join.then_some(true),
            password: self.password.clone(),
            cluster_name: self.cluster_name.clone(),
            tick_ms: self.tick_ms,
            election_ticks: self.election_ticks,
            heartbeat_ticks: self.heartbeat_ticks,
            snapshot_entries: self.snapshot_entries,
            request_timeout_ms: self.request_timeout_ms,
            election_wait_ms: self.election_wait_ms,
            max_clients: self.max_clients,
            max_request_bytes: self.max_request_bytes,
            log_level: self.log_level.clone(),
        }
    }
}

/// Sets up `tracing` from RUST_LOG, or `level` when it is unset.
pub fn init_logging(level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// Runs a node until SIGINT or SIGTERM; exits non-zero if it had to stop (storage failure).
pub fn run(args: &ServeArgs) -> Result<()> {
    let file = match &args.config {
        Some(path) => ConfigFile::load(path)?,
        None => ConfigFile::default(),
    };
    let merged = file.merge(args.flags());
    init_logging(merged.log_level.as_deref().unwrap_or("info"));
    let config = merged.resolve()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("conclave")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let server = Server::start(config).await?;
        server.run(shutdown_signal()).await?;
        Ok(())
    })
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
