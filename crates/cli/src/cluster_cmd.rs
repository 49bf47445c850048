//! `conclave cluster`: status and membership of a running cluster through any node's admin port.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use conclave_server::http;
use serde_json::{json, Value};

use crate::tls_args::TlsClientArgs;

/// How to reach a cluster's admin API: any node's admin address, the token if the nodes require
/// one, and TLS for HTTPS admin ports. Shared by `conclave cluster` and `conclave wal repair`.
#[derive(Args, Debug)]
pub struct AdminAccess {
    /// Any node's admin address; changes are sent on to the leader.
    #[arg(long, default_value = "127.0.0.1:7200")]
    pub admin: SocketAddr,
    /// The token the nodes' admin ports require (their admin_token). Prefer the environment
    /// variable or --admin-token-file: a flag shows in `ps`.
    #[arg(long, value_name = "TOKEN", env = "CONCLAVE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// A file holding the admin token, such as DATA_DIR/admin-token written by `conclave up`.
    /// Wins over --admin-token and CONCLAVE_ADMIN_TOKEN: it is only ever given on purpose,
    /// while the variable may linger in the shell from another cluster.
    #[arg(long, value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// HTTPS to admin ports served with tls_admin.
    #[command(flatten)]
    pub tls: TlsClientArgs,
}

/// Flags of `conclave cluster`.
#[derive(Args, Debug)]
pub struct ClusterArgs {
    /// Where the admin API is.
    #[command(flatten)]
    pub access: AdminAccess,
    /// What to do.
    #[command(subcommand)]
    pub op: ClusterOp,
}

/// A cluster operation.
#[derive(Subcommand, Debug)]
pub enum ClusterOp {
    /// Print the leader's status (asked through the given node), with every member's role and
    /// replication progress, as JSON. Only the leader knows every member's match index.
    Status {
        /// Print the given node's own status instead of the leader's.
        #[arg(long)]
        local: bool,
    },
    /// Add a node as a learner (start it first with `conclave serve --join`).
    Add {
        /// The new node's id.
        id: u64,
        /// Its peer address.
        peer_addr: SocketAddr,
    },
    /// Make a caught-up learner a voter.
    Promote {
        /// The node.
        id: u64,
    },
    /// Remove a voter or learner (the leader too: it hands over first).
    Remove {
        /// The node.
        id: u64,
    },
    /// Hand leadership to a voter (the most caught-up one by default).
    TransferLeader {
        /// The voter.
        id: Option<u64>,
    },
    /// Make the given node read its TLS certificate, key and CA files again (new connections
    /// get them); a bad file keeps the current ones and is reported.
    TlsReload,
}

/// A client of the admin ports: the token and, for HTTPS ports, the TLS configuration.
pub struct Admin {
    /// The bearer token, if the nodes require one.
    pub token: Option<String>,
    tls: Option<Arc<conclave_server::rustls::ClientConfig>>,
}

impl Admin {
    /// One request to the admin port at `addr`.
    async fn call(
        &self,
        addr: SocketAddr,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> std::io::Result<(u16, String)> {
        let (token, tls) = (self.token.as_deref(), self.tls.as_ref());
        http::call_over(addr, method, path, body, token, tls, TIMEOUT).await
    }
}

const TIMEOUT: Duration = Duration::from_secs(30);

impl AdminAccess {
    /// The admin token from the file, else from the flag or the environment, if any.
    pub fn token(&self) -> Result<Option<String>> {
        match &self.admin_token_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading the admin token from {}", path.display()))?;
                Ok(Some(text.trim().to_string()))
            }
            None => Ok(self.admin_token.as_ref().map(|token| token.trim().to_string())),
        }
    }

    /// The admin client these flags describe: the token and the TLS configuration.
    pub fn client(&self) -> Result<Admin> {
        Ok(Admin { token: self.token()?, tls: self.tls.config()? })
    }
}

/// Asks `admin` for its status and, unless `local`, goes on to the leader it names. Falls back
/// to the first answer when there is no leader or it cannot be reached.
pub async fn status_via(client: &Admin, admin: SocketAddr, local: bool) -> Result<(u16, String)> {
    let (code, body) = client
        .call(admin, "GET", "/status", None)
        .await
        .with_context(|| format!("asking {admin} for its status"))?;
    if local || code != 200 {
        return Ok((code, body));
    }
    let value: Value = serde_json::from_str(&body).unwrap_or_default();
    let leader = value["leader_admin_addr"].as_str().and_then(|a| a.parse::<SocketAddr>().ok());
    match leader {
        Some(leader) if value["role"] != "leader" && leader != admin => {
            match client.call(leader, "GET", "/status", None).await {
                Ok((200, leader_body)) => Ok((200, leader_body)),
                _ => {
                    eprintln!("the leader at {leader} did not answer; showing {admin}'s status");
                    Ok((code, body))
                }
            }
        }
        _ => Ok((code, body)),
    }
}

/// Says how to pass the token when a node refused a request for want of one.
pub fn hint_if_unauthorized(code: u16, token: Option<&str>) {
    if code == 401 && token.is_none() {
        eprintln!(
            "the admin port requires a token: pass --admin-token-file FILE (`conclave up` writes \
             DATA_DIR/admin-token) or set CONCLAVE_ADMIN_TOKEN"
        );
    }
}

/// Sends `body` to the leader's `path`, following the 421 answers that name it; returns the
/// leader's status code and reply.
pub async fn post_to_leader(
    client: &Admin,
    admin: SocketAddr,
    path: &str,
    body: &str,
) -> Result<(u16, String)> {
    let mut target = admin;
    // A follower answers 421 naming the leader's admin port: follow it (leadership may move
    // meanwhile, so a few times).
    for _ in 0..5 {
        let (code, reply) = client
            .call(target, "POST", path, Some(body))
            .await
            .with_context(|| format!("sending to {target}"))?;
        if code != 421 {
            return Ok((code, reply));
        }
        let value: Value = serde_json::from_str(&reply).unwrap_or_default();
        match value["leader_admin_addr"].as_str().and_then(|a| a.parse().ok()) {
            Some(leader) => target = leader,
            None => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    bail!("could not reach the leader (leadership kept moving or no leader is elected)")
}

/// Runs one operation; exits 1 if it was refused.
pub fn run(args: &ClusterArgs) -> Result<i32> {
    let client = args.access.client()?;
    let token = client.token.as_deref();
    let admin = args.access.admin;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let (path, body) = match &args.op {
            ClusterOp::Status { local } => {
                let (code, body) = status_via(&client, admin, *local).await?;
                hint_if_unauthorized(code, token);
                outln!("{}", body.trim_end());
                return Ok(i32::from(code != 200));
            }
            ClusterOp::Add { id, peer_addr } => (
                "/members",
                json!({ "action": "add-learner", "id": id, "peer_addr": peer_addr.to_string() }),
            ),
            ClusterOp::Promote { id } => ("/members", json!({ "action": "promote", "id": id })),
            ClusterOp::Remove { id } => ("/members", json!({ "action": "remove", "id": id })),
            ClusterOp::TransferLeader { id } => ("/transfer-leader", json!({ "to": id })),
            ClusterOp::TlsReload => {
                let (code, body) = client
                    .call(admin, "POST", "/tls/reload", Some("{}"))
                    .await
                    .with_context(|| format!("asking {admin} to reload"))?;
                hint_if_unauthorized(code, token);
                outln!("{}", body.trim_end());
                return Ok(i32::from(code != 200));
            }
        };
        let (code, reply) = post_to_leader(&client, admin, path, &body.to_string()).await?;
        hint_if_unauthorized(code, token);
        outln!("{}", reply.trim_end());
        Ok(i32::from(code != 200))
    })
}
