//! `conclave kv`: get, set, delete and scan keys on a running cluster through any node.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use conclave_resp::Frame;
use conclave_server::client::{render, RespClient};

use crate::tls_args::{self, TlsClientArgs};

/// Flags of `conclave kv`.
#[derive(Args, Debug)]
pub struct KvArgs {
    /// Any node's client (Redis) address; a follower forwards writes to the leader.
    #[arg(long, default_value = "127.0.0.1:7000")]
    pub addr: SocketAddr,
    /// Password, if the cluster requires one.
    #[arg(long, env = "CONCLAVE_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// The ACL user to log in as with `--password` (`default` when absent, as `AUTH password`).
    #[arg(long, env = "CONCLAVE_USER", requires = "password")]
    pub user: Option<String>,
    /// TLS to a node's TLS client port.
    #[command(flatten)]
    pub tls: TlsClientArgs,
    /// What to do.
    #[command(subcommand)]
    pub op: KvOp,
}

/// A key-value operation.
#[derive(Subcommand, Debug)]
pub enum KvOp {
    /// Print a key's value (`(nil)` if absent).
    Get {
        /// The key.
        key: String,
    },
    /// Set a key, optionally expiring after `--ttl-ms`.
    Set {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// Expire the key after this many milliseconds.
        #[arg(long)]
        ttl_ms: Option<u64>,
    },
    /// Delete keys; prints how many existed.
    Del {
        /// The keys.
        #[arg(required = true)]
        keys: Vec<String>,
    },
    /// List keys matching a glob pattern (all by default), one per line.
    Scan {
        /// The pattern.
        #[arg(default_value = "*")]
        pattern: String,
    },
}

const TIMEOUT: Duration = Duration::from_secs(15);

/// Runs one operation; exits 1 on an error reply.
pub fn run(args: &KvArgs) -> Result<i32> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let tls = args.tls.config()?;
        let mut client = tls_args::connect(args.addr, TIMEOUT, tls.as_ref()).await?;
        if let Some(password) = &args.password {
            let mut auth: Vec<&[u8]> = vec![b"AUTH"];
            auth.extend(args.user.as_deref().map(str::as_bytes));
            auth.push(password.as_bytes());
            if let Frame::Error(e) = client.call(&auth, TIMEOUT).await? {
                bail!("AUTH: {}", String::from_utf8_lossy(&e));
            }
        }
        if let KvOp::Scan { pattern } = &args.op {
            return scan(&mut client, pattern).await;
        }
        let ttl;
        let command: Vec<&[u8]> = match &args.op {
            KvOp::Get { key } => vec![b"GET", key.as_bytes()],
            KvOp::Set { key, value, ttl_ms: None } => {
                vec![b"SET", key.as_bytes(), value.as_bytes()]
            }
            KvOp::Set { key, value, ttl_ms: Some(ms) } => {
                ttl = ms.to_string();
                vec![b"SET", key.as_bytes(), value.as_bytes(), b"PX", ttl.as_bytes()]
            }
            KvOp::Del { keys } => {
                let mut c: Vec<&[u8]> = vec![b"DEL"];
                c.extend(keys.iter().map(|k| k.as_bytes()));
                c
            }
            KvOp::Scan { .. } => unreachable!("handled above"),
        };
        let reply = client.call(&command, TIMEOUT).await.context("no reply")?;
        outln!("{}", render(&reply));
        Ok(i32::from(matches!(reply, Frame::Error(_))))
    })
}

async fn scan(client: &mut RespClient, pattern: &str) -> Result<i32> {
    let mut cursor = b"0".to_vec();
    loop {
        let reply = client
            .call(&[b"SCAN", &cursor, b"MATCH", pattern.as_bytes(), b"COUNT", b"1000"], TIMEOUT)
            .await?;
        let Frame::Array(parts) = reply else {
            outln!("{}", render(&reply));
            return Ok(1);
        };
        let (Some(Frame::Bulk(next)), Some(Frame::Array(keys))) = (parts.first(), parts.get(1))
        else {
            bail!("unexpected SCAN reply");
        };
        for key in keys {
            outln!("{}", render(key));
        }
        if &next[..] == b"0" {
            return Ok(0);
        }
        cursor = next.to_vec();
    }
}
