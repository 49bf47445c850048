//! The HTTP admin port: `GET /status`, `GET /metrics`, `POST /members`, `POST /transfer-leader`.
//!
//! Membership changes and transfers must reach the leader; a follower answers them with
//! `421 Misdirected Request` naming the leader and its admin address, which is how
//! `conclave cluster` finds the leader from any node.
//!
//! Every request passes [`guard`] first. A request from a web page (an `Origin` header other than
//! this port's own) is refused with 403, so a browser that visits a hostile page cannot be used
//! to reach a port on its loopback. With `admin_token` set, every request, reads included, must
//! carry `Authorization: Bearer <token>` (RFC 6750), or gets 401: status lists the members'
//! addresses and progress and metrics count keys and clients, which are no one else's business,
//! and Prometheus sends a bearer token with its `authorization` scrape setting. A request that
//! changes something must be `application/json`, a type a cross-origin page cannot send
//! without a CORS preflight, which this port never grants.
//!
//! With `tls_admin` the port speaks HTTPS, and when a CA is set (and `tls_auth_clients` is not
//! `no`) a client certificate signed by it authenticates a request in place of the token; a
//! node with such a port and no token then accepts only certificate holders. `POST /tls/reload`
//! reads the certificate, key and CA files again.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use conclave_core::{MembershipChange, NodeId};
use conclave_runtime::ClientError;
use serde::Deserialize;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::http::{read_request, write_response, Request, Response};
use crate::shared::Shared;

/// The realm named in `WWW-Authenticate` challenges.
const REALM: &str = "conclave-admin";

/// Who sent a request that passed the [`guard`], for the log of the changes it makes.
#[derive(Clone, Copy, Debug)]
struct Caller {
    /// The client's address.
    peer: Option<SocketAddr>,
    /// `matched`, or `not configured` when the node has no admin token.
    token: &'static str,
}

/// A caller's address as the log shows it.
fn who(peer: Option<SocketAddr>) -> String {
    peer.map_or_else(|| "unknown".to_string(), |addr| addr.to_string())
}

/// Serves one admin connection. `certified`: the client presented a certificate signed by the
/// CA (the TLS handshake has checked it).
pub(crate) async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    shared: Arc<Shared>,
    mut stream: S,
    [peer, local]: [Option<SocketAddr>; 2],
    certified: bool,
) {
    let response = match read_request(&mut stream).await {
        Ok(request) => match guard(&shared, &request, [peer, local], certified) {
            Ok(caller) => route(&shared, request, caller).await,
            Err(response) => response,
        },
        Err(response) => response,
    };
    write_response(&mut stream, &response).await;
}

/// Whether `origin` (an `Origin` header) is this port itself, as reached at `local`: a page
/// served by the admin port may call it, no other page may. A loopback port is also reachable
/// as `localhost`.
fn same_origin(origin: &str, local: Option<SocketAddr>) -> bool {
    let Some(local) = local else { return false };
    // The port serves HTTP or HTTPS, never both; either scheme names this port.
    ["http", "https"].iter().any(|scheme| {
        let own = format!("{scheme}://{local}");
        let localhost = format!("{scheme}://localhost:{}", local.port());
        origin.eq_ignore_ascii_case(&own)
            || (local.ip().is_loopback() && origin.eq_ignore_ascii_case(&localhost))
    })
}

/// A 401 with the RFC 6750 challenge; `error="invalid_token"` when a token was sent but wrong.
fn unauthorized(message: &str, invalid_token: bool) -> Response {
    let mut challenge = format!("Bearer realm=\"{REALM}\"");
    if invalid_token {
        challenge.push_str(", error=\"invalid_token\"");
    }
    let mut response = Response::error(401, message);
    response.headers.push(("WWW-Authenticate", challenge));
    response
}

/// Refuses what must not reach the endpoints: cross-origin browser requests (403), requests
/// without the admin token when one is set (401), and changes not sent as JSON (415).
fn guard(
    shared: &Shared,
    request: &Request,
    [peer, local]: [Option<SocketAddr>; 2],
    certified: bool,
) -> Result<Caller, Response> {
    let refused = |reason: &str| {
        tracing::warn!(
            peer = %who(peer), method = %request.method, path = %request.path, reason,
            "admin request refused"
        );
    };
    if let Some(origin) = request.header("origin") {
        if !same_origin(origin, local) {
            refused("cross-origin");
            return Err(Response::error(
                403,
                format!("cross-origin requests are refused (Origin: {origin})"),
            ));
        }
    }
    let certificates = shared.config.tls.as_ref().is_some_and(|tls| tls.admin_certificates());
    let token = match &shared.config.admin_token {
        _ if certified => "client certificate",
        None if certificates => {
            refused("no client certificate");
            return Err(unauthorized(
                "this admin port requires a client certificate signed by the cluster CA",
                false,
            ));
        }
        None => "not configured",
        Some(expected) => {
            let credentials = request.header("authorization").and_then(|value| {
                let (scheme, credentials) = value.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then_some(credentials.trim())
            });
            match credentials {
                None => {
                    shared.stats.admin_auth_failures.fetch_add(1, Ordering::Relaxed);
                    refused("no bearer token");
                    let message = if certificates {
                        "this admin port requires Authorization: Bearer <token> or a client \
                         certificate signed by the cluster CA"
                    } else {
                        "this admin port requires Authorization: Bearer <token>"
                    };
                    return Err(unauthorized(message, false));
                }
                Some(presented) if !expected.matches(presented.as_bytes()) => {
                    shared.stats.admin_auth_failures.fetch_add(1, Ordering::Relaxed);
                    refused("wrong token");
                    return Err(unauthorized(
                        "the bearer token is not this node's admin token",
                        true,
                    ));
                }
                Some(_) => "matched",
            }
        }
    };
    if request.method != "GET" {
        let media_type = request.header("content-type").map(|v| v.split(';').next().unwrap_or(""));
        if !media_type.is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json")) {
            refused("not JSON");
            return Err(Response::error(
                415,
                format!(
                    "{} requests must be sent as Content-Type: application/json",
                    request.method
                ),
            ));
        }
    }
    Ok(Caller { peer, token })
}

/// `POST /tls/reload`: reads the certificate, key and CA files again; new connections get them.
/// A bad file keeps the current ones and answers 500 with the reason.
fn tls_reload(shared: &Shared, caller: Caller) -> Response {
    let Some(tls) = &shared.tls else {
        return Response::error(400, "TLS is not configured on this node");
    };
    tracing::info!(peer = %who(caller.peer), token = caller.token, "admin: TLS reload");
    match tls.reload() {
        Ok(fingerprint) => {
            Response::json(200, &json!({ "reloaded": true, "fingerprint": fingerprint }))
        }
        Err(error) => Response::error(
            500,
            format!("reload failed, the current certificates stay in use: {error}"),
        ),
    }
}

async fn route(shared: &Shared, request: Request, caller: Caller) -> Response {
    match (request.method.as_str(), request.path.as_str()) {
        ("GET", "/status") => Response::json(200, &status(shared).await),
        ("GET", "/metrics") => Response {
            status: 200,
            content_type: "text/plain; version=0.0.4",
            body: metrics(shared),
            headers: Vec::new(),
        },
        ("POST", "/members") => members(shared, &request.body, caller).await,
        ("POST", "/transfer-leader") => transfer(shared, &request.body, caller).await,
        ("POST", "/tls/reload") => tls_reload(shared, caller),
        (_, "/status" | "/metrics" | "/members" | "/transfer-leader" | "/tls/reload") => {
            Response::error(405, format!("{} is not allowed on {}", request.method, request.path))
        }
        _ => Response::error(
            404,
            "unknown path; try /status, /metrics, /members, /transfer-leader, /tls/reload",
        ),
    }
}

fn dir_bytes(dir: &Path, prefix: &str) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// The node's state as JSON.
pub(crate) async fn status(shared: &Shared) -> serde_json::Value {
    let status = shared.handle.status();
    let core = status.core;
    let progress = shared.handle.progress().await.unwrap_or_default();
    let membership = status.membership.clone().unwrap_or_default();
    let book = shared.handle.addresses();
    let connected = shared.transport.connected();
    let mut members = Vec::new();
    let roles = membership
        .voters
        .iter()
        .map(|id| (*id, "voter"))
        .chain(
            membership
                .outgoing
                .iter()
                .filter(|id| !membership.voters.contains(id))
                .map(|id| (*id, "outgoing-voter")),
        )
        .chain(membership.learners.iter().map(|id| (*id, "learner")));
    for (id, role) in roles {
        let advertised = shared.addresses_of(id);
        let matched = if id == shared.config.id {
            Some(core.last_index.0)
        } else {
            progress.iter().find(|p| p.id == id).map(|p| p.matched.0)
        };
        members.push(json!({
            "id": id.0,
            "role": role,
            "peer_addr": book.get(&id).map(ToString::to_string),
            "client_addr": advertised.map(|a| a.client.to_string()),
            "admin_addr": advertised.map(|a| a.admin.to_string()),
            "match": matched,
            "connected": id == shared.config.id || connected.contains(&id),
        }));
    }
    let leader = core.leader.and_then(|l| shared.addresses_of(l));
    let dir = &shared.config.data_dir;
    let (keys, expires) = shared.handle.with_state(|m| (m.store.len(), m.store.expires()));
    json!({
        "id": shared.config.id.0,
        "role": core.role.to_string(),
        "term": core.term.0,
        "leader": core.leader.map(|l| l.0),
        "leader_client_addr": leader.map(|a| a.client.to_string()),
        "leader_admin_addr": leader.map(|a| a.admin.to_string()),
        "commit": core.commit.0,
        "applied": status.applied.0,
        "last_index": core.last_index.0,
        "snapshot_index": core.snapshot_index.0,
        "joint": !membership.outgoing.is_empty(),
        "members": members,
        "log_bytes": dir_bytes(dir, "log-"),
        "snapshot_bytes": dir_bytes(dir, "snapshot-"),
        "keys": keys,
        "expires": expires,
        "clients": shared.stats.connected.load(Ordering::Relaxed),
        "stopped": status.stopped,
        "tls": shared.tls.as_ref().map(|tls| json!({
            "fingerprint": tls.fingerprint(),
            "reloads": tls.reloads.load(Ordering::Relaxed),
            "reload_failures": tls.reload_failures.load(Ordering::Relaxed),
        })),
    })
}

fn metrics(shared: &Shared) -> String {
    let mut out = String::new();
    shared.handle.metrics().render(&mut out, shared.handle.group().0);
    let t = shared.transport.stats();
    let status = shared.handle.status();
    let gauges: [(&str, &str, u64); 6] = [
        ("conclave_term", "The current term.", status.core.term.0),
        ("conclave_commit_index", "The commit index.", status.core.commit.0),
        ("conclave_applied_index", "The applied index.", status.applied.0),
        ("conclave_is_leader", "1 if this node leads.", u64::from(shared.handle.is_leader())),
        ("conclave_keys", "Keys in the store.", shared.handle.with_state(|m| m.store.len() as u64)),
        (
            "conclave_clients_connected",
            "Open client connections.",
            shared.stats.connected.load(Ordering::Relaxed) as u64,
        ),
    ];
    for (name, help, value) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
    }
    let s = &shared.stats;
    let counters: [(&str, &str, u64); 9] = [
        ("conclave_transport_bytes_sent_total", "Bytes written to peer links.", t.bytes_sent),
        (
            "conclave_transport_bytes_received_total",
            "Bytes read from peer links.",
            t.bytes_received,
        ),
        (
            "conclave_transport_frames_refused_total",
            "Peer frames refused (bad version, size, checksum or handshake).",
            t.frames_refused,
        ),
        ("conclave_transport_connects_total", "Peer links established.", t.connects),
        (
            "conclave_transport_messages_dropped_total",
            "Peer messages dropped by the transport.",
            t.messages_dropped,
        ),
        (
            "conclave_client_connections_total",
            "Client connections accepted.",
            s.connections_total.load(Ordering::Relaxed),
        ),
        (
            "conclave_client_commands_total",
            "Client commands executed.",
            s.commands.load(Ordering::Relaxed),
        ),
        (
            "conclave_client_errors_total",
            "Client commands answered with an error.",
            s.errors.load(Ordering::Relaxed),
        ),
        (
            "conclave_client_forwarded_total",
            "Writes forwarded to the leader.",
            s.forwarded.load(Ordering::Relaxed),
        ),
    ];
    write_counters(&mut out, &counters);
    if let Some(tls) = &shared.tls {
        let tls_counters: [(&str, &str, u64); 4] = [
            (
                "conclave_tls_client_connections_total",
                "TLS client connections whose handshake succeeded.",
                s.tls_connections_total.load(Ordering::Relaxed),
            ),
            (
                "conclave_tls_handshake_failures_total",
                "TLS client handshakes that failed or timed out.",
                s.tls_handshake_failures.load(Ordering::Relaxed),
            ),
            (
                "conclave_tls_reloads_total",
                "TLS certificate reloads.",
                tls.reloads.load(Ordering::Relaxed),
            ),
            (
                "conclave_tls_reload_failures_total",
                "TLS reloads refused because of a bad file.",
                tls.reload_failures.load(Ordering::Relaxed),
            ),
        ];
        write_counters(&mut out, &tls_counters);
    }
    auth_failures(&mut out, shared, t.auth_failures);
    out
}

/// Prometheus lines for `(name, help, value)` counters.
fn write_counters(out: &mut String, counters: &[(&str, &str, u64)]) {
    for (name, help, value) in counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
    }
}

/// `conclave_auth_failures_total`, one series per port: refused AUTHs on the client port,
/// refused bearer tokens on the admin port, failed handshakes on the peer port.
fn auth_failures(out: &mut String, shared: &Shared, peer: u64) {
    let name = "conclave_auth_failures_total";
    let _ = writeln!(out, "# HELP {name} Failed authentication attempts, by port.");
    let _ = writeln!(out, "# TYPE {name} counter");
    let s = &shared.stats;
    let ports = [
        ("client", s.auth_failures.load(Ordering::Relaxed)),
        ("admin", s.admin_auth_failures.load(Ordering::Relaxed)),
        ("peer", peer),
    ];
    for (port, value) in ports {
        let _ = writeln!(out, "{name}{{port=\"{port}\"}} {value}");
    }
}

/// The body of `POST /members`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MembersRequest {
    /// `add-learner`, `promote` or `remove`.
    action: String,
    /// The node.
    id: u64,
    /// For `add-learner`: where its peer port is.
    peer_addr: Option<String>,
}

/// The body of `POST /transfer-leader`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferRequest {
    /// The voter to hand leadership to; the most caught-up other voter when absent.
    to: Option<u64>,
}

fn not_leader(shared: &Shared, leader: Option<NodeId>) -> Response {
    let admin = leader.and_then(|l| shared.addresses_of(l)).map(|a| a.admin.to_string());
    Response::json(
        421,
        &json!({ "error": "not the leader", "leader": leader.map(|l| l.0), "leader_admin_addr": admin }),
    )
}

fn failure(shared: &Shared, error: ClientError) -> Response {
    match error {
        ClientError::NotLeader { leader } => not_leader(shared, leader),
        ClientError::MembershipRefused(reason) => Response::error(400, reason.to_string()),
        ClientError::TransferRefused(reason) => Response::error(400, reason.to_string()),
        ClientError::Timeout(_) | ClientError::Unknown => Response::error(504, error.to_string()),
        other => Response::error(503, other.to_string()),
    }
}

async fn members(shared: &Shared, body: &[u8], caller: Caller) -> Response {
    let request: MembersRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return Response::error(400, format!("body: {e}")),
    };
    if request.id == 0 {
        return Response::error(400, "id: must be at least 1");
    }
    let status = shared.handle.status();
    if !shared.handle.is_leader() {
        return not_leader(shared, status.core.leader);
    }
    let id = NodeId(request.id);
    tracing::info!(
        peer = %who(caller.peer), token = caller.token, action = %request.action, node = %id,
        peer_addr = ?request.peer_addr, "membership change requested over the admin port"
    );
    let result = match request.action.as_str() {
        "add-learner" | "add" => {
            let Some(addr) = request.peer_addr.as_deref() else {
                return Response::error(400, "peer_addr: required to add a node");
            };
            let addr: SocketAddr = match addr.parse() {
                Ok(a) => a,
                Err(_) => {
                    return Response::error(400, format!("peer_addr: {addr:?} is not host:port"))
                }
            };
            shared.handle.add_learner(id, addr).await
        }
        "promote" => shared.handle.change_membership(MembershipChange::Promote(id)).await,
        "remove" => shared.handle.change_membership(MembershipChange::Remove(id)).await,
        other => {
            return Response::error(
                400,
                format!("action: {other:?} is not add-learner, promote or remove"),
            )
        }
    };
    match result {
        Ok(()) => Response::json(200, &status_after(shared).await),
        Err(error) => failure(shared, error),
    }
}

async fn status_after(shared: &Shared) -> serde_json::Value {
    json!({ "ok": true, "status": status(shared).await })
}

async fn transfer(shared: &Shared, body: &[u8], caller: Caller) -> Response {
    let request: TransferRequest = if body.iter().all(u8::is_ascii_whitespace) {
        TransferRequest::default()
    } else {
        match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => return Response::error(400, format!("body: {e}")),
        }
    };
    let status = shared.handle.status();
    if !shared.handle.is_leader() {
        return not_leader(shared, status.core.leader);
    }
    let target = match request.to {
        Some(id) => NodeId(id),
        None => {
            let progress = shared.handle.progress().await.unwrap_or_default();
            let voters = status.membership.map(|m| m.voters).unwrap_or_default();
            match progress.iter().filter(|p| voters.contains(&p.id)).max_by_key(|p| p.matched) {
                Some(p) => p.id,
                None => return Response::error(400, "to: no other voter to hand leadership to"),
            }
        }
    };
    tracing::info!(
        peer = %who(caller.peer), token = caller.token, to = %target,
        "leadership transfer requested over the admin port"
    );
    if let Err(error) = shared.handle.transfer_leadership(target).await {
        return failure(shared, error);
    }
    // The transfer is asynchronous; report where leadership went, waiting a bounded time.
    let deadline = tokio::time::Instant::now() + shared.config.election_wait;
    loop {
        let leader = shared.handle.status().core.leader;
        if leader == Some(target) {
            return Response::json(200, &json!({ "ok": true, "leader": target.0 }));
        }
        if tokio::time::Instant::now() >= deadline {
            return Response::json(
                504,
                &json!({ "error": "the transfer did not complete in time", "leader": leader.map(|l| l.0) }),
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
