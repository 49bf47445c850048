//! Commands about the connection and the server rather than the data: PING, ECHO, HELLO, AUTH,
//! CLIENT, SELECT, QUIT, INFO, CONFIG GET, COMMAND, the ACL subcommands that only read, and
//! Conclave's own READMODE, READONLY / READWRITE and REDIRECT. None of them goes through
//! consensus.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use conclave_core::{ReadConsistency, Role};
use conclave_resp::{Frame, Version};

use crate::session::Session;

fn arity(name: &[u8]) -> Frame {
    Frame::error(format!(
        "ERR wrong number of arguments for '{}' command",
        String::from_utf8_lossy(name).to_lowercase()
    ))
}

fn text(s: impl Into<String>) -> Frame {
    Frame::Bulk(Bytes::from(s.into()))
}

fn simple(s: &'static str) -> Frame {
    Frame::Simple(Bytes::from_static(s.as_bytes()))
}

/// Executes a non-data command.
pub(crate) fn execute(session: &mut Session, name: &[u8], args: &[Bytes]) -> Frame {
    match name {
        b"PING" => match args.len() {
            1 => simple("PONG"),
            2 => Frame::Bulk(args[1].clone()),
            _ => arity(name),
        },
        b"ECHO" if args.len() == 2 => Frame::Bulk(args[1].clone()),
        b"QUIT" => {
            session.close = true;
            Frame::ok()
        }
        b"SELECT" if args.len() == 2 => match &args[1][..] {
            b"0" => Frame::ok(),
            _ => Frame::error("ERR DB index is out of range"),
        },
        b"AUTH" => auth(session, args),
        b"ACL" => crate::acl::execute(session, args),
        b"HELLO" => hello(session, args),
        b"CLIENT" => client(session, args),
        b"INFO" => Frame::Verbatim { format: *b"txt", text: Bytes::from(info(session, args)) },
        b"CONFIG" => config(session, args),
        b"COMMAND" => Frame::Array(Vec::new()),
        b"READMODE" => readmode(session, args),
        b"READONLY" if args.len() == 1 => {
            session.consistency = ReadConsistency::Stale;
            Frame::ok()
        }
        b"READWRITE" if args.len() == 1 => {
            session.consistency = ReadConsistency::Linearizable;
            Frame::ok()
        }
        b"REDIRECT" => match args.get(1).map(|a| a.to_ascii_uppercase()) {
            Some(v) if args.len() == 2 && (v == b"ON" || v == b"OFF") => {
                session.redirect = v == b"ON";
                Frame::ok()
            }
            None => text(if session.redirect { "on" } else { "off" }),
            _ => Frame::error("ERR REDIRECT takes ON or OFF"),
        },
        b"CONCLAVE" => match args.get(1).map(|a| a.to_ascii_uppercase()).as_deref() {
            Some(b"NONCE") if args.len() == 2 => {
                let mut nonce = [0u8; 16];
                match getrandom::fill(&mut nonce) {
                    Ok(()) => {
                        session.forward_nonce = Some(nonce);
                        Frame::Bulk(Bytes::copy_from_slice(&nonce))
                    }
                    Err(_) => Frame::error("ERR no randomness for a nonce; retry"),
                }
            }
            Some(b"FORWARDED") if args.len() == 2 => {
                session.forwarded = true;
                Frame::ok()
            }
            Some(b"FORWARDED") if args.len() == 3 => {
                // The nonce is spent whatever the outcome: one guess per nonce.
                let nonce = session.forward_nonce.take();
                let secret = &session.shared.config.cluster_secret;
                match nonce {
                    Some(nonce) if secret.verify_forwarding(&nonce, &args[2]) => {
                        session.forwarded = true;
                        session.member = true;
                        Frame::ok()
                    }
                    Some(_) => Frame::error("ERR CONCLAVE FORWARDED proof does not match"),
                    None => Frame::error("ERR CONCLAVE FORWARDED needs CONCLAVE NONCE first"),
                }
            }
            Some(b"LEADER") if args.len() == 2 => {
                let status = session.shared.handle.status();
                match status.core.leader.and_then(|l| session.shared.leader_client_addr(l)) {
                    Some(addr) => text(addr.to_string()),
                    None => Frame::Null,
                }
            }
            _ => Frame::error("ERR unknown CONCLAVE subcommand; try LEADER"),
        },
        b"ECHO" | b"SELECT" | b"READONLY" | b"READWRITE" => arity(name),
        _ => {
            let mut message = format!(
                "ERR unknown command '{}', with args beginning with: ",
                String::from_utf8_lossy(&args[0])
            );
            for arg in args.iter().skip(1).take(8) {
                let _ = write!(message, "'{}' ", String::from_utf8_lossy(arg));
            }
            Frame::error(message)
        }
    }
}

/// AUTH [user] password, as Redis 7: against the replicated user table, on whichever node the
/// client is connected to; `requirepass` is the `default` user's password on the node that
/// sets it.
fn auth(session: &mut Session, args: &[Bytes]) -> Frame {
    let (name, password) = match args.len() {
        2 => (Bytes::from_static(b"default"), &args[1]),
        3 => (args[1].clone(), &args[2]),
        // Redis's AUTH is variadic, so extra arguments meet its own refusal.
        1 => return arity(b"auth"),
        _ => return Frame::error("ERR syntax error"),
    };
    let requirepass = session.shared.config.password.clone();
    let user_name = String::from_utf8_lossy(&name).into_owned();
    let (open, user) = session.shared.handle.with_state(|m| {
        let open = m.users.default_is_open(requirepass.as_deref());
        let user = m
            .users
            .authenticate(&user_name, password, requirepass.as_deref())
            .then(|| m.users.get(&user_name).cloned())
            .flatten()
            .map(|user| (user, m.users.incarnation(&user_name)));
        (open, user)
    });
    if args.len() == 2 && open {
        return Frame::error(
            "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
        );
    }
    match user {
        Some((user, incarnation)) => {
            session.authenticated = true;
            session.user = user;
            session.user_incarnation = incarnation;
            session.credentials = Some((name, password.clone()));
            session.forget_upstream();
            Frame::ok()
        }
        None => {
            session.shared.stats.auth_failures.fetch_add(1, Ordering::Relaxed);
            session.log_refusal(crate::acl::Reason::Auth, b"AUTH", &user_name);
            // Debug-quoted: the name is whatever an unauthenticated client sent, and a newline
            // in it would forge log lines.
            tracing::info!(client = session.id, user = ?user_name, "AUTH failed");
            Frame::error("WRONGPASS invalid username-password pair or user is disabled.")
        }
    }
}

fn hello(session: &mut Session, args: &[Bytes]) -> Frame {
    let mut version = session.version;
    let mut rest = &args[1..];
    if let Some(first) = rest.first() {
        let number = std::str::from_utf8(first).ok().and_then(|v| v.parse::<i64>().ok());
        version = match number {
            Some(2) => Version::Resp2,
            Some(3) => Version::Resp3,
            Some(_) => return Frame::error("NOPROTO unsupported protocol version"),
            None => return Frame::error("ERR Protocol version is not an integer or out of range"),
        };
        rest = &rest[1..];
    }
    // As Redis: every option is read (and a name checked) before anything applies; the last
    // AUTH and the last SETNAME win, and a failed AUTH leaves the name alone.
    let mut credentials = None;
    let mut name = None;
    while let Some(option) = rest.first() {
        match option.to_ascii_uppercase().as_slice() {
            b"AUTH" if rest.len() >= 3 => {
                credentials = Some((rest[1].clone(), rest[2].clone()));
                rest = &rest[3..];
            }
            b"SETNAME" if rest.len() >= 2 => {
                match client_name(&rest[1]) {
                    Ok(valid) => name = Some(valid),
                    Err(refusal) => return refusal,
                }
                rest = &rest[2..];
            }
            _ => {
                return Frame::error(format!(
                    "ERR Syntax error in HELLO option '{}'",
                    String::from_utf8_lossy(option)
                ))
            }
        }
    }
    if let Some((user, password)) = credentials {
        let reply = auth(session, &[Bytes::from_static(b"AUTH"), user, password]);
        if matches!(reply, Frame::Error(_)) {
            return reply;
        }
    }
    if !session.authenticated {
        return Frame::error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
    }
    if let Some(name) = name {
        session.name = name;
    }
    session.version = version;
    let leader = session.shared.handle.is_leader();
    Frame::Map(vec![
        (text("server"), text("redis")),
        (text("version"), text(REDIS_COMPAT_VERSION)),
        (text("proto"), Frame::Integer(if version == Version::Resp3 { 3 } else { 2 })),
        (text("id"), Frame::Integer(session.id as i64)),
        (text("mode"), text("standalone")),
        (text("role"), text(if leader { "master" } else { "replica" })),
        (text("modules"), Frame::Array(Vec::new())),
    ])
}

/// The Redis version Conclave answers to, for clients that check features by version.
const REDIS_COMPAT_VERSION: &str = "7.2.0";

fn client(session: &mut Session, args: &[Bytes]) -> Frame {
    let Some(sub) = args.get(1).map(|a| a.to_ascii_uppercase()) else { return arity(b"client") };
    match (sub.as_slice(), args.len()) {
        (b"SETNAME", 3) => match client_name(&args[2]) {
            Ok(name) => {
                session.name = name;
                Frame::ok()
            }
            Err(refusal) => refusal,
        },
        (b"GETNAME", 2) => session.name.clone().map_or(Frame::Null, Frame::Bulk),
        (b"ID", 2) => Frame::Integer(session.id as i64),
        (b"SETINFO", 4) => Frame::ok(),
        (b"INFO", 2) => text(format!(
            "id={} name={} user={} resp={} readmode={}\n",
            session.id,
            session
                .name
                .as_ref()
                .map(|n| String::from_utf8_lossy(n).into_owned())
                .unwrap_or_default(),
            session.user.name,
            if session.version == Version::Resp3 { 3 } else { 2 },
            session.consistency.as_str()
        )),
        (b"SETNAME" | b"GETNAME" | b"ID" | b"SETINFO" | b"INFO", _) => arity(b"client"),
        _ => Frame::error(format!(
            "ERR unknown subcommand '{}'. Try CLIENT HELP.",
            String::from_utf8_lossy(&args[1])
        )),
    }
}

/// A connection name as CLIENT SETNAME and HELLO SETNAME take it: printable ASCII without
/// spaces (it appears in CLIENT INFO and ACL LOG lines, which a newline could forge), and the
/// empty name clears it.
fn client_name(name: &Bytes) -> Result<Option<Bytes>, Frame> {
    if name.iter().any(|b| *b <= b' ' || *b > b'~') {
        return Err(Frame::error(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    Ok((!name.is_empty()).then(|| name.clone()))
}

fn readmode(session: &mut Session, args: &[Bytes]) -> Frame {
    match args.len() {
        1 => text(session.consistency.as_str()),
        2 => {
            let name = String::from_utf8_lossy(&args[1]);
            session.consistency = match name.parse::<ReadConsistency>() {
                Ok(consistency) => consistency,
                Err(unknown) => return Frame::error(format!("ERR READMODE: {unknown}")),
            };
            Frame::ok()
        }
        _ => arity(b"readmode"),
    }
}

fn config(session: &Session, args: &[Bytes]) -> Frame {
    let sub = args.get(1).map(|a| a.to_ascii_uppercase());
    if sub.as_deref() != Some(b"GET") || args.len() < 3 {
        return Frame::error("ERR CONFIG supports GET <parameter> only");
    }
    let config = &session.shared.config;
    let limits = &config.client_limits;
    let known: [(&str, String); 13] = [
        ("save", String::new()),
        ("appendonly", "yes".into()),
        ("appendfsync", "always".into()),
        ("databases", "1".into()),
        ("maxclients", config.max_clients.to_string()),
        ("maxmemory", config.max_memory_bytes.to_string()),
        ("maxmemory-policy", "noeviction".into()),
        ("maxmemory-clients", limits.memory_max_bytes.to_string()),
        ("timeout", limits.idle_timeout.map_or(0, |t| t.as_secs()).to_string()),
        (
            "client-output-buffer-limit",
            format!(
                "normal {} {} {}",
                limits.output_hard_bytes,
                limits.output_soft_bytes,
                limits.output_soft_time.as_secs()
            ),
        ),
        ("client-query-buffer-limit", config.max_request_bytes.to_string()),
        ("proto-max-bulk-len", config.max_request_bytes.to_string()),
        (
            "conclave-partial-request-timeout-ms",
            limits.partial_request_timeout.as_millis().to_string(),
        ),
    ];
    let tls = tls_config_values(session);
    let mut pairs = Vec::new();
    for pattern in &args[2..] {
        for (name, value) in known.iter().chain(&tls) {
            if conclave_kv::glob_match(&pattern.to_ascii_lowercase(), name.as_bytes()) {
                pairs.push((text(*name), text(value.clone())));
            }
        }
    }
    Frame::Map(pairs)
}

/// The TLS settings under Redis's names, for `CONFIG GET tls-*`: `tls-port` is the bound TLS
/// client port (0 without one).
fn tls_config_values(session: &Session) -> Vec<(&'static str, String)> {
    let shared = &session.shared;
    let port = shared.tls_client_addr.map_or(0, |addr| addr.port());
    let Some(tls) = &shared.config.tls else {
        return vec![("tls-port", port.to_string())];
    };
    let path = |p: &std::path::Path| p.display().to_string();
    let yes_no = |on: bool| if on { "yes" } else { "no" }.to_string();
    let auth = match tls.files.auth_clients {
        crate::tls::AuthClients::Yes => "yes",
        crate::tls::AuthClients::No => "no",
        crate::tls::AuthClients::Optional => "optional",
    };
    vec![
        ("tls-port", port.to_string()),
        ("tls-cert-file", path(&tls.files.cert)),
        ("tls-key-file", path(&tls.files.key)),
        ("tls-ca-cert-file", tls.files.ca.as_deref().map(path).unwrap_or_default()),
        ("tls-auth-clients", auth.to_string()),
        ("tls-cluster", yes_no(tls.cluster)),
        ("conclave-tls-admin", yes_no(tls.admin)),
    ]
}

/// INFO: Redis's sections, with Raft's view in `replication`.
fn info(session: &Session, args: &[Bytes]) -> String {
    let shared = &session.shared;
    let wanted: Vec<String> =
        args[1..].iter().map(|a| String::from_utf8_lossy(a).to_lowercase()).collect();
    let all = wanted.is_empty()
        || wanted.iter().any(|w| w == "all" || w == "everything" || w == "default");
    let want = |section: &str| all || wanted.iter().any(|w| w == section);
    let mut out = String::new();
    let status = shared.handle.status();
    if want("server") {
        let _ = write!(
            out,
            "# Server\r\nredis_version:{REDIS_COMPAT_VERSION}\r\nconclave_version:{}\r\nredis_mode:standalone\r\nos:{}\r\narch_bits:64\r\nprocess_id:{}\r\nrun_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{}\r\nnode_id:{}\r\n\r\n",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::OS,
            std::process::id(),
            shared.run_id,
            shared.config.client_addr.port(),
            shared.started.elapsed().as_secs(),
            shared.config.id,
        );
    }
    if want("clients") {
        let _ = write!(
            out,
            "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\nclient_recent_max_input_buffer:{}\r\nclient_recent_max_output_buffer:{}\r\n\r\n",
            shared.stats.connected.load(Ordering::Relaxed),
            shared.config.max_clients,
            shared.stats.input_buffer_max.load(Ordering::Relaxed),
            shared.stats.output_buffer_max.load(Ordering::Relaxed),
        );
    }
    if want("memory") {
        let data = shared.handle.with_state(|m| m.store.data_bytes());
        let _ = write!(
            out,
            "# Memory\r\nused_memory_dataset:{data}\r\nmaxmemory:{}\r\nmaxmemory_policy:noeviction\r\nmem_clients_normal:{}\r\nmaxmemory_clients:{}\r\n\r\n",
            shared.config.max_memory_bytes,
            shared.clients.total(),
            shared.config.client_limits.memory_max_bytes,
        );
    }
    if want("stats") {
        let s = &shared.stats;
        let _ = write!(
            out,
            "# Stats\r\ntotal_connections_received:{}\r\nrejected_connections:{}\r\ntotal_commands_processed:{}\r\ntotal_error_replies:{}\r\nforwarded_writes:{}\r\nevicted_clients:{}\r\nclient_output_buffer_limit_disconnections:{}\r\nclient_timeout_disconnections:{}\r\nacl_access_denied_auth:{}\r\nacl_access_denied_cmd:{}\r\nacl_access_denied_key:{}\r\nacl_access_denied_channel:0\r\n\r\n",
            s.connections_total.load(Ordering::Relaxed),
            s.rejected.load(Ordering::Relaxed),
            s.commands.load(Ordering::Relaxed),
            s.errors.load(Ordering::Relaxed),
            s.forwarded.load(Ordering::Relaxed),
            s.evicted.load(Ordering::Relaxed),
            s.output_limit_disconnections.load(Ordering::Relaxed),
            s.timeout_disconnections.load(Ordering::Relaxed),
            s.auth_failures.load(Ordering::Relaxed),
            s.acl_denied_commands.load(Ordering::Relaxed),
            s.acl_denied_keys.load(Ordering::Relaxed),
        );
    }
    if want("replication") {
        let core = status.core;
        let leader_addr = core.leader.and_then(|l| shared.leader_client_addr(l));
        let membership = status.membership.clone().unwrap_or_default();
        let list = |ids: &[conclave_core::NodeId]| {
            ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",")
        };
        let _ = write!(
            out,
            "# Replication\r\nrole:{}\r\nraft_role:{}\r\nraft_term:{}\r\nleader_id:{}\r\nleader_addr:{}\r\ncommit_index:{}\r\napplied_index:{}\r\nlast_index:{}\r\nsnapshot_index:{}\r\nvoters:{}\r\nlearners:{}\r\njoint:{}\r\nconnected_peers:{}\r\n\r\n",
            if core.role == Role::Leader { "master" } else { "slave" },
            core.role,
            core.term,
            core.leader.map(|l| l.to_string()).unwrap_or_default(),
            leader_addr.map(|a| a.to_string()).unwrap_or_default(),
            core.commit,
            status.applied,
            core.last_index,
            core.snapshot_index,
            list(&membership.voters),
            list(&membership.learners),
            u8::from(!membership.outgoing.is_empty()),
            shared.transport.connected().len(),
        );
    }
    if want("keyspace") {
        let (keys, expires) = shared.handle.with_state(|m| (m.store.len(), m.store.expires()));
        let _ = write!(out, "# Keyspace\r\n");
        if keys > 0 {
            let _ = write!(out, "db0:keys={keys},expires={expires},avg_ttl=0\r\n");
        }
        out.push_str("\r\n");
    }
    out
}
