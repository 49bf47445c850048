//! `conclave up`: a local cluster of `conclave serve` child processes on loopback.

use std::fs::OpenOptions;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use conclave_server::http;

use crate::certs_cmd::{generate, Generated, Identity};
use tokio::process::{Child, Command};

/// Flags of `conclave up`.
#[derive(Args, Debug)]
pub struct UpArgs {
    /// How many nodes (voters).
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Put the client (Redis) ports at P, P+1, ...; peer ports are at P+100+i and admin ports at
    /// P+200+i. Without it, the ports of the previous run in the data directory are reused, or
    /// free ones are chosen (and saved there).
    #[arg(long)]
    pub port: Option<u16>,
    /// Where the nodes keep their data (node-N/) and logs (node-N.log); reused on the next run.
    #[arg(long, default_value = "conclave-data")]
    pub data_dir: PathBuf,
    /// Passed to every node (see `conclave serve --help`).
    #[arg(long, env = "CONCLAVE_PASSWORD", hide_env_values = true,
          help = node_setting_help("password"))]
    pub password: Option<String>,
    /// Passed to every node; their logs go to DATA_DIR/node-N.log.
    #[arg(long, value_name = "LEVEL", help = node_setting_help("log_level"))]
    pub log_level: Option<String>,
    /// TLS everywhere: makes a CA and node certificates in DATA_DIR/tls (kept for later runs),
    /// opens a TLS client port beside each plain one (P+300+i with --port), serves the admin
    /// ports over HTTPS and has the peers use mutual TLS. Client certificates are optional on
    /// the client ports and accepted in place of the token on the admin ports.
    #[arg(long)]
    pub tls: bool,
    /// Extra flags passed to every `conclave serve`, e.g. `--serve-arg=--tick-ms=10`.
    #[arg(long = "serve-arg", value_name = "FLAG", allow_hyphen_values = true)]
    pub serve_args: Vec<String>,
}

/// The help of a flag `up` passes on to every node: the node setting's own help, so the two
/// commands describe it the same way.
fn node_setting_help(key: &str) -> String {
    let setting = conclave_server::config::settings().into_iter().find(|s| s.key == key);
    let setting = setting.unwrap_or_else(|| panic!("{key} is not a node setting"));
    format!("Passed to every node: {}", setting.help_text())
}

/// One node's three addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Ports {
    client: SocketAddr,
    peer: SocketAddr,
    admin: SocketAddr,
}

const PORTS_FILE: &str = "ports";
/// The local cluster's peer secret, in the data directory (see `cluster_secret_file`).
const SECRET_FILE: &str = "cluster-secret";
/// The admin token of the cluster, in the data directory: reused on the next run, like the ports.
const TOKEN_FILE: &str = "admin-token";

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Ports from `--port`, or from the previous run, or fresh free ones.
fn choose_ports(args: &UpArgs) -> Result<Vec<Ports>> {
    let saved = args.data_dir.join(PORTS_FILE);
    if let Some(base) = args.port {
        let top = u32::from(base) + 200 + args.nodes as u32;
        if base == 0 || top > u32::from(u16::MAX) {
            bail!("--port {base}: the node ports would run past 65535");
        }
        return Ok((0..args.nodes as u16)
            .map(|i| Ports {
                client: loopback(base + i),
                peer: loopback(base + 100 + i),
                admin: loopback(base + 200 + i),
            })
            .collect());
    }
    if let Ok(text) = std::fs::read_to_string(&saved) {
        let ports: Vec<Ports> = text
            .lines()
            .filter_map(|line| {
                let mut parts = line.split_whitespace().map(|p| p.parse::<SocketAddr>());
                Some(Ports {
                    client: parts.next()?.ok()?,
                    peer: parts.next()?.ok()?,
                    admin: parts.next()?.ok()?,
                })
            })
            .collect();
        if ports.len() == args.nodes {
            return Ok(ports);
        }
        bail!(
            "{} holds a {}-node cluster; run with --nodes {} or choose another --data-dir",
            args.data_dir.display(),
            ports.len(),
            ports.len()
        );
    }
    let mut held = Vec::new();
    let mut ports = Vec::new();
    for _ in 0..args.nodes {
        let mut three = Vec::new();
        for _ in 0..3 {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            three.push(listener.local_addr()?);
            held.push(listener);
        }
        ports.push(Ports { client: three[0], peer: three[1], admin: three[2] });
    }
    drop(held);
    Ok(ports)
}

/// A credential of the local cluster kept in `dir/name`: made on the first run (32 random bytes
/// from the operating system, as hex, so it can also be pasted into an environment variable) and
/// reused on later ones. Readable by its owner only (0600): whoever reads the cluster secret can
/// speak for any node on the peer ports, and the admin token controls the cluster.
fn private_credential(dir: &Path, name: &str) -> Result<(PathBuf, String)> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let path = dir.join(name);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let value = text.trim();
        if !value.is_empty() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("making {} private", path.display()))?;
            return Ok((path, value.to_string()));
        }
    }
    // A credential, so never the seeded generator.
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("no randomness for {}: {e}", path.display()))?;
    let value: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let _ = std::fs::remove_file(&path);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(value.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    Ok((path, value))
}

fn save_ports(dir: &Path, ports: &[Ports]) -> Result<()> {
    let text: String =
        ports.iter().map(|p| format!("{} {} {}\n", p.client, p.peer, p.admin)).collect();
    std::fs::write(dir.join(PORTS_FILE), text).context("saving the ports")
}

/// The TLS side of a local cluster: its certificates and each node's TLS client address.
struct LocalTls {
    certs: Generated,
    client_addrs: Vec<SocketAddr>,
    /// How `up` itself talks to the HTTPS admin ports: the CA and the client certificate.
    admin: Arc<conclave_server::rustls::ClientConfig>,
}

/// Certificates from an earlier run in `DATA_DIR/tls` if complete, else new ones, and a TLS
/// client address for each node.
fn local_tls(args: &UpArgs) -> Result<LocalTls> {
    let dir = args.data_dir.join("tls");
    let identity = |name: String| Identity {
        cert: dir.join(format!("{name}.crt")),
        key: dir.join(format!("{name}.key")),
    };
    let earlier = Generated {
        ca: dir.join("ca.crt"),
        nodes: (1..=args.nodes).map(|id| identity(format!("node-{id}"))).collect(),
        client: identity("client".to_string()),
    };
    let complete = std::iter::once(&earlier.ca)
        .chain(earlier.nodes.iter().chain([&earlier.client]).flat_map(|i| [&i.cert, &i.key]))
        .all(|path| path.exists());
    let certs = if complete { earlier } else { generate(&dir, args.nodes, &[])? };
    let client_addrs = match args.port {
        Some(base) => (0..args.nodes as u16).map(|i| loopback(base + 300 + i)).collect(),
        None => {
            let held = (0..args.nodes)
                .map(|_| TcpListener::bind("127.0.0.1:0"))
                .collect::<std::io::Result<Vec<_>>>()?;
            held.iter().map(|l| l.local_addr()).collect::<std::io::Result<Vec<_>>>()?
        }
    };
    let admin = conclave_server::client_config(
        &certs.ca,
        Some((certs.client.cert.as_path(), certs.client.key.as_path())),
    )?;
    Ok(LocalTls { certs, client_addrs, admin })
}

/// The `conclave serve` flags of node `i` (from 0) for TLS.
fn tls_flags(tls: &LocalTls, i: usize) -> Vec<String> {
    vec![
        format!("--tls-client-addr={}", tls.client_addrs[i]),
        format!("--tls-cert-file={}", tls.certs.nodes[i].cert.display()),
        format!("--tls-key-file={}", tls.certs.nodes[i].key.display()),
        format!("--tls-ca-cert-file={}", tls.certs.ca.display()),
        "--tls-auth-clients=optional".to_string(),
        "--tls-admin".to_string(),
        "--tls-cluster".to_string(),
    ]
}

/// Starts the cluster, waits for a leader, prints how to connect, and stops every child on
/// Ctrl-C or SIGTERM.
pub fn run(args: &UpArgs) -> Result<()> {
    if args.nodes == 0 || args.nodes > 99 {
        bail!("--nodes must be in 1..=99");
    }
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let ports = choose_ports(args)?;
    save_ports(&args.data_dir, &ports)?;
    let (token_path, token) = private_credential(&args.data_dir, TOKEN_FILE)?;
    let members: Vec<String> =
        ports.iter().enumerate().map(|(i, p)| format!("{}={}", i + 1, p.peer)).collect();
    let (secret_file, _) = private_credential(&args.data_dir, SECRET_FILE)?;
    if args.tls && args.port.is_some_and(|base| u32::from(base) + 300 + args.nodes as u32 > 65535) {
        bail!("--port: the TLS client ports (P+300+i) would run past 65535");
    }
    let tls = if args.tls { Some(local_tls(args)?) } else { None };
    let exe = std::env::current_exe().context("finding the conclave binary")?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let mut children: Vec<Child> = Vec::new();
        for (i, p) in ports.iter().enumerate() {
            let id = i + 1;
            let log_path = args.data_dir.join(format!("node-{id}.log"));
            let log = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .with_context(|| format!("opening {}", log_path.display()))?;
            let mut command = Command::new(&exe);
            command
                .arg("serve")
                .arg(format!("--id={id}"))
                .arg(format!("--data-dir={}", args.data_dir.join(format!("node-{id}")).display()))
                .arg(format!("--members={}", members.join(",")))
                .arg(format!("--peer-addr={}", p.peer))
                .arg(format!("--client-addr={}", p.client))
                .arg(format!("--admin-addr={}", p.admin))
                .arg(format!("--cluster-secret-file={}", secret_file.display()))
                .env_remove("CONCLAVE_CLUSTER_SECRET")
                .args(args.log_level.iter().map(|level| format!("--log-level={level}")))
                .args(tls.as_ref().map(|tls| tls_flags(tls, i)).unwrap_or_default())
                .args(&args.serve_args)
                .stdin(Stdio::null())
                .stdout(Stdio::from(log.try_clone()?))
                .stderr(Stdio::from(log))
                .kill_on_drop(true);
            if let Some(password) = &args.password {
                command.env("CONCLAVE_PASSWORD", password);
            }
            // In the environment, not a flag: `ps` shows flags to every user of the machine.
            command.env("CONCLAVE_ADMIN_TOKEN", &token);
            children.push(command.spawn().with_context(|| format!("starting node {id}"))?);
        }
        let logs: Vec<PathBuf> =
            (1..=ports.len()).map(|id| args.data_dir.join(format!("node-{id}.log"))).collect();
        let outcome = tokio::select! {
            ready = wait_ready(&ports, &token, tls.as_ref().map(|t| &t.admin), &mut children, &logs) => ready,
            () = crate::serve_cmd::shutdown_signal() => Err(anyhow::anyhow!("interrupted")),
        };
        let failed = match outcome {
            Ok(leader) => {
                outln!("Conclave: {} nodes up, data in {}", ports.len(), args.data_dir.display());
                for (i, p) in ports.iter().enumerate() {
                    outln!(
                        "  node {}  redis-cli -p {:<5}  admin {}://{}/status  log {}",
                        i + 1,
                        p.client.port(),
                        if tls.is_some() { "https" } else { "http" },
                        p.admin,
                        args.data_dir.join(format!("node-{}.log", i + 1)).display()
                    );
                }
                if let Some(tls) = &tls {
                    print_tls(tls, &ports);
                }
                outln!("  leader: node {leader}. Any node accepts reads and writes.");
                let token_path = token_path.display();
                outln!("  the admin ports require the token in {token_path}:");
                let (scheme, ca) = match &tls {
                    Some(tls) => ("https", format!(" --cacert {}", tls.certs.ca.display())),
                    None => ("http", String::new()),
                };
                outln!(
                    "    curl{ca} -H \"Authorization: Bearer $(cat {token_path})\" {scheme}://{}/status",
                    ports[0].admin
                );
                let ca_flag = tls.as_ref().map(|tls| format!(" --tls-ca-cert-file {}", tls.certs.ca.display()));
                outln!(
                    "    conclave cluster --admin {}{} --admin-token-file {token_path} status",
                    ports[0].admin,
                    ca_flag.unwrap_or_default()
                );
                outln!("Ctrl-C stops the cluster.");
                tokio::select! {
                    () = crate::serve_cmd::shutdown_signal() => {}
                    () = watch_children(&mut children) => {}
                }
                None
            }
            Err(error) => {
                eprintln!("conclave up: {error:#}; stopping the nodes");
                Some(error)
            }
        };
        stop_all(&mut children).await;
        match failed {
            Some(error) => Err(error.context("the cluster did not start")),
            None => Ok(()),
        }
    })
}

/// How to reach the TLS ports of a cluster started with `--tls`.
fn print_tls(tls: &LocalTls, ports: &[Ports]) {
    let ca = tls.certs.ca.display();
    let (cert, key) = (tls.certs.client.cert.display(), tls.certs.client.key.display());
    outln!(
        "  TLS (certificates in {}):",
        tls.certs.ca.parent().unwrap_or(Path::new(".")).display()
    );
    for (i, addr) in tls.client_addrs.iter().enumerate() {
        outln!("    node {}  redis-cli --tls --cacert {ca} -p {}", i + 1, addr.port());
    }
    outln!("    with a client certificate: add --cert {cert} --key {key}");
    outln!("    admin over HTTPS with the client certificate in place of the token:");
    outln!("      curl --cacert {ca} --cert {cert} --key {key} https://{}/status", ports[0].admin);
}

/// The line of a node's log that most likely says why it stopped: the last `Error: ...` line
/// (how `conclave serve` reports a failure) or `ERROR` log line, else the last non-blank one.
/// Backtrace frames that merely name an error type are not taken for the error.
fn last_error_line(log: &str) -> Option<&str> {
    let mut lines = log.lines().map(str::trim).filter(|line| !line.is_empty());
    let is_error = |line: &&str| line.starts_with("Error:") || line.contains(" ERROR ");
    lines.clone().rev().find(is_error).or_else(|| lines.next_back())
}

/// Waits until every node answers on its admin port and they agree on a leader. A node that
/// exits first fails the start with the last error line of its log (`logs[i]` is node i+1's).
async fn wait_ready(
    ports: &[Ports],
    token: &str,
    tls: Option<&Arc<conclave_server::rustls::ClientConfig>>,
    children: &mut [Child],
    logs: &[PathBuf],
) -> Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for (i, child) in children.iter_mut().enumerate() {
            if let Some(status) = child.try_wait()? {
                let log = &logs[i];
                let text = std::fs::read_to_string(log).unwrap_or_default();
                match last_error_line(&text) {
                    Some(line) => bail!(
                        "node {} exited at start ({status}): {line} (log: {})",
                        i + 1,
                        log.display()
                    ),
                    None => bail!(
                        "node {} exited at start ({status}) and wrote nothing to {}",
                        i + 1,
                        log.display()
                    ),
                }
            }
        }
        let mut leaders = Vec::new();
        for p in ports {
            let timeout = Duration::from_secs(1);
            if let Ok((200, body)) =
                http::call_over(p.admin, "GET", "/status", None, Some(token), tls, timeout).await
            {
                let value: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                leaders.push(value["leader"].as_u64());
            }
        }
        if leaders.len() == ports.len() {
            if let Some(Some(leader)) = leaders.first() {
                if leaders.iter().all(|l| *l == Some(*leader)) {
                    return Ok(*leader);
                }
            }
        }
        if Instant::now() > deadline {
            bail!("the nodes did not agree on a leader within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reports children that exit while the cluster runs; returns when all have.
async fn watch_children(children: &mut [Child]) {
    let mut alive = vec![true; children.len()];
    while alive.iter().any(|a| *a) {
        for (i, child) in children.iter_mut().enumerate() {
            if alive[i] {
                if let Ok(Some(status)) = child.try_wait() {
                    eprintln!("conclave up: node {} exited ({status})", i + 1);
                    alive[i] = false;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// SIGTERM to every child, then SIGKILL to any still running after 5 s.
async fn stop_all(children: &mut [Child]) {
    use rustix::process::{kill_process, Pid, Signal};
    for child in children.iter() {
        if let Some(pid) = child.id().and_then(|id| Pid::from_raw(id as i32)) {
            let _ = kill_process(pid, Signal::TERM);
        }
    }
    for child in children.iter_mut() {
        if tokio::time::timeout(Duration::from_secs(5), child.wait()).await.is_err() {
            let _ = child.kill().await;
        }
    }
    outln!("Conclave: stopped.");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_error_line_is_preferred_to_the_last_line() {
        let log = "INFO starting\nError: invalid configuration: tick_ms: must be in 1..=10000\n\
                   \nStack backtrace:\n  0: anyhow::error::<impl anyhow::Error>::msg\n  \n";
        assert_eq!(
            last_error_line(log),
            Some("Error: invalid configuration: tick_ms: must be in 1..=10000")
        );
        assert_eq!(last_error_line("INFO a\nWARN b\n\n"), Some("WARN b"));
        assert_eq!(last_error_line(" \n"), None);
    }
}
