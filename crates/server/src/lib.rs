//! Conclave's replicated key-value server.
//!
//! A node runs one Raft group (the [`conclave_runtime`] drives it over the
//! [`conclave_transport`] and durable [`conclave_storage`]) whose state machine is the
//! [`conclave_kv`] store, and serves:
//! - a **client port** speaking RESP2 and RESP3 ([`conclave_resp`]), so `redis-cli`,
//!   `redis-benchmark` and Redis client libraries work unchanged. Writes go through consensus;
//!   reads are linearizable by default (ReadIndex), with lease and stale reads per connection
//!   (`READMODE`). A follower forwards writes to the leader, or redirects with `-MOVED` after
//!   `REDIRECT ON`. During an election requests wait up to `election_wait`, then fail with
//!   `-CLUSTERDOWN`.
//! - an **admin port** over HTTP: `GET /status` (JSON), `GET /metrics` (Prometheus text),
//!   `POST /members` and `POST /transfer-leader`, behind a bearer token when `admin_token` is
//!   set, and closed to cross-origin browser requests.
//!
//! Users and ACLs follow Redis (`AUTH user pass`, `ACL SETUSER`, categories, key patterns);
//! the user table is replicated through the log beside the store (see `acl`).
//!
//! [`RespClient`] is the small client the CLI, the benchmark and the tests use.
#![deny(missing_docs)]

mod acl;
mod admin;
mod advertise;
pub mod client;
mod commands;
pub mod config;
mod cross_protocol;
pub mod http;
mod machine;
mod server;
mod session;
mod shared;
mod tls;
mod token;

pub use acl::{AclImageError, AclLog, Users};
pub use advertise::Advertised;
pub use client::RespClient;
pub use config::{ConfigError, ConfigFile, ServerConfig, Setting, SettingKind, TlsConfig};
pub use machine::{KvMachine, MachineImageError};
/// The TLS library, re-exported so that callers of [`client_config`] and [`http::call_over`] name
/// the same types.
pub use rustls;
pub use server::{ServeError, Server, KV_GROUP};
pub use shared::{ClientStats, Shared};
pub use tls::{client_config, fingerprint, AuthClients, TlsError, TlsFiles, TlsState};
pub use token::AdminToken;
