//! `conclave cluster`: status and membership of a running cluster through any node's admin port.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use conclave_server::http;
use serde_json::{json, Value};

/// Flags of `conclave cluster`.
#[derive(Args, Debug)]
pub struct ClusterArgs {
    /// Any node's admin address; changes are sent on to the leader.
    #[arg(long, default_value = "127.0.0.1:7200")]
    pub admin: SocketAddr,
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
}

const TIMEOUT: Duration = Duration::from_secs(30);

/// Asks `admin` for its status and, unless `local`, goes on to the leader it names. Falls back
/// to the first answer when there is no leader or it cannot be reached.
async fn status_via(admin: SocketAddr, local: bool) -> Result<(u16, String)> {
    let (code, body) = http::call(admin, "GET", "/status", None, TIMEOUT)
        .await
        .with_context(|| format!("asking {admin} for its status"))?;
    if local || code != 200 {
        return Ok((code, body));
    }
    let value: Value = serde_json::from_str(&body).unwrap_or_default();
    let leader = value["leader_admin_addr"].as_str().and_then(|a| a.parse::<SocketAddr>().ok());
    match leader {
        Some(leader) if value["role"] != "leader" && leader != admin => {
            match http::call(leader, "GET", "/status", None, TIMEOUT).await {
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

/// Runs one operation; exits 1 if it was refused.
pub fn run(args: &ClusterArgs) -> Result<i32> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let (path, body) = match &args.op {
            ClusterOp::Status { local } => {
                let (code, body) = status_via(args.admin, *local).await?;
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
        };
        let body = body.to_string();
        let mut target = args.admin;
        // A follower answers 421 naming the leader's admin port: follow it (leadership may
        // move meanwhile, so a few times).
        for _ in 0..5 {
            let (code, reply) = http::call(target, "POST", path, Some(&body), TIMEOUT)
                .await
                .with_context(|| format!("sending to {target}"))?;
            if code == 421 {
                let value: Value = serde_json::from_str(&reply).unwrap_or_default();
                match value["leader_admin_addr"].as_str().and_then(|a| a.parse().ok()) {
                    Some(leader) => {
                        target = leader;
                        continue;
                    }
                    None => {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                }
            }
            outln!("{}", reply.trim_end());
            return Ok(i32::from(code != 200));
        }
        bail!("could not reach the leader (leadership kept moving or no leader is elected)")
    })
}
