//! A node's configuration: from a TOML file, command-line flags or both (flags win), checked up
//! front so a mistake fails at start with the name of the field.
//!
//! Port rule: a node's peer port is its client port + 100 and its admin port is its client
//! port + 200, unless given explicitly. `conclave up --port P` follows the same rule, so node
//! `i` (from 0) listens for clients on `P + i`, for peers on `P + 100 + i` and for admin on
//! `P + 200 + i`.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use conclave_core::NodeId;
use conclave_transport::ClusterSecret;
use serde::Deserialize;
use thiserror::Error;

use crate::tls::{AuthClients, TlsFiles};
use crate::token::AdminToken;

/// A configuration that cannot work; the message names the field.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid configuration: {field}: {reason}")]
pub struct ConfigError {
    /// The field (or flag) at fault.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError { field, reason: reason.into() }
}

/// How a setting's value is written, which decides how the command line parses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SettingKind {
    /// A whole number (0 or more).
    Integer,
    /// Text.
    Text,
    /// A file or directory path.
    Path,
    /// On or off; a flag without a value turns it on.
    Switch,
    /// A list of text items; comma-separated on the command line.
    List,
}

/// One value a command-line flag gives a setting, before it is stored in its field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlagValue {
    /// For [`SettingKind::Integer`].
    Integer(u64),
    /// For [`SettingKind::Text`] and [`SettingKind::Path`].
    Text(String),
    /// For [`SettingKind::Switch`].
    Switch(bool),
    /// For [`SettingKind::List`].
    List(Vec<String>),
}

/// A field type a setting may have: its kind, how a flag's value becomes it, and how its
/// default is shown in help.
pub trait SettingType: Sized {
    /// How the value is written.
    const KIND: SettingKind;
    /// The field's value from a flag's; the reason when it does not fit.
    fn from_flag(value: FlagValue) -> Result<Self, String>;
    /// The value as help shows a default.
    fn show(&self) -> String;
}

macro_rules! integer_setting {
    ($($ty:ty),*) => {$(
        impl SettingType for $ty {
            const KIND: SettingKind = SettingKind::Integer;
            fn from_flag(value: FlagValue) -> Result<Self, String> {
                match value {
                    FlagValue::Integer(n) => {
                        <$ty>::try_from(n).map_err(|_| format!("{n} is out of range"))
                    }
                    other => Err(format!("expected a whole number, got {other:?}")),
                }
            }
            fn show(&self) -> String {
                self.to_string()
            }
        }
    )*};
}

integer_setting!(u32, u64, usize);

impl SettingType for String {
    const KIND: SettingKind = SettingKind::Text;
    fn from_flag(value: FlagValue) -> Result<Self, String> {
        match value {
            FlagValue::Text(text) => Ok(text),
            other => Err(format!("expected text, got {other:?}")),
        }
    }
    fn show(&self) -> String {
        format!("{self:?}")
    }
}

impl SettingType for PathBuf {
    const KIND: SettingKind = SettingKind::Path;
    fn from_flag(value: FlagValue) -> Result<Self, String> {
        String::from_flag(value).map(PathBuf::from)
    }
    fn show(&self) -> String {
        self.display().to_string()
    }
}

impl SettingType for bool {
    const KIND: SettingKind = SettingKind::Switch;
    fn from_flag(value: FlagValue) -> Result<Self, String> {
        match value {
            FlagValue::Switch(on) => Ok(on),
            other => Err(format!("expected on or off, got {other:?}")),
        }
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

impl SettingType for Vec<String> {
    const KIND: SettingKind = SettingKind::List;
    fn from_flag(value: FlagValue) -> Result<Self, String> {
        match value {
            FlagValue::List(items) => Ok(items),
            other => Err(format!("expected a list, got {other:?}")),
        }
    }
    fn show(&self) -> String {
        self.join(",")
    }
}

/// One setting of a node, as the command line and help see it. Every field comes from the
/// single definition of the setting in this module, so the TOML key, the flag and the help
/// cannot drift apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    /// The TOML key, and the flag's name with `_` written `-` (`tick_ms`, `--tick-ms`).
    pub key: &'static str,
    /// The placeholder for the value in help (`MS`, `DIR`).
    pub value_name: &'static str,
    /// How the value is written.
    pub kind: SettingKind,
    /// What the setting does, in sentences.
    pub help: String,
    /// The value used when neither the file nor a flag sets it, as help shows it.
    pub default: Option<String>,
    /// An environment variable the command line also reads it from (secrets stay out of `ps`).
    pub env: Option<&'static str>,
    /// The rule its value must follow, when there is one beyond its type.
    pub rule: Option<&'static str>,
}

impl Setting {
    /// The command-line flag, without the dashes (`tick-ms`).
    pub fn flag(&self) -> String {
        self.key.replace('_', "-")
    }

    /// The help line: what it does, its rule and its default.
    pub fn help_text(&self) -> String {
        let mut text = self.help.clone();
        if let Some(rule) = self.rule {
            text.push_str(&format!(" Must be {rule}."));
        }
        if let Some(default) = &self.default {
            text.push_str(&format!(" [default: {default}]"));
        }
        text
    }
}

/// Defines every node setting once: its doc comment (the help text), TOML key and flag (the
/// field name), type, default, help placeholder, environment variable and range. From it come
/// [`ConfigFile`] (the TOML format, with every field optional), [`ConfigFile::merge`],
/// [`ConfigFile::defaults`], [`ConfigFile::set_flag`], the range checks and [`settings`], which
/// the command line turns into flags and help.
macro_rules! settings {
    ($(
        $(#[doc = $doc:literal])*
        $key:ident: $ty:ty $(= $default:expr)?, $value_name:literal
        $(, env = $env:literal)?
        $(, range = $range:expr, $rule:literal)?;
    )*) => {
        /// Everything a node needs, as written in a TOML file; every field is optional there
        /// because flags may supply it. Unknown fields are refused (a typo must not be silently
        /// ignored).
        #[derive(Clone, Debug, Default, Deserialize, PartialEq)]
        #[serde(deny_unknown_fields)]
        pub struct ConfigFile {
            $($(#[doc = $doc])* pub $key: Option<$ty>,)*
        }

        impl ConfigFile {
            /// Fields set in `flags` replace those here.
            pub fn merge(self, flags: ConfigFile) -> ConfigFile {
                ConfigFile { $($key: flags.$key.or(self.$key)),* }
            }

            /// Every setting that has a default, set to it; the others unset.
            pub fn defaults() -> ConfigFile {
                ConfigFile { $($key: settings!(@default $ty $(, $default)?)),* }
            }

            /// Sets the setting `key` from a command-line flag's value; the error names the
            /// setting.
            pub fn set_flag(&mut self, key: &str, value: FlagValue) -> Result<(), ConfigError> {
                match key {
                    $(stringify!($key) => {
                        let field = stringify!($key);
                        self.$key = Some(<$ty>::from_flag(value).map_err(|r| invalid(field, r))?);
                    })*
                    _ => return Err(invalid("flags", format!("no setting is called {key:?}"))),
                }
                Ok(())
            }

            /// Checks every value that has a range of its own.
            fn check_ranges(&self) -> Result<(), ConfigError> {
                $($(
                    if let Some(value) = &self.$key {
                        if !($range).contains(value) {
                            return Err(invalid(stringify!($key), concat!("must be ", $rule)));
                        }
                    }
                )?)*
                Ok(())
            }
        }

        /// Every node setting, in the order help lists them.
        pub fn settings() -> Vec<Setting> {
            vec![$(Setting {
                key: stringify!($key),
                value_name: $value_name,
                kind: <$ty as SettingType>::KIND,
                help: [$($doc),*].iter().map(|line| line.trim()).collect::<Vec<_>>().join(" "),
                default: settings!(@default $ty $(, $default)?).map(|value| value.show()),
                env: settings!(@option $($env)?),
                rule: settings!(@option $($rule)?),
            }),*]
        }
    };
    (@default $ty:ty) => { None::<$ty> };
    (@default $ty:ty, $default:expr) => { Some::<$ty>($default.into()) };
    (@option) => { None };
    (@option $value:literal) => { Some($value) };
}

settings! {
    /// This node's id (1 or more). With a hostfile, the line index is the id.
    id: u64, "ID";
    /// Directory for the log, hard state and snapshots; reused across restarts.
    data_dir: PathBuf, "DIR";
    /// Address peers connect to. Default: this node's entry in the members, or the client
    /// port + 100.
    peer_addr: String, "HOST:PORT";
    /// Address Redis clients connect to. Default: the peer port - 100.
    client_addr: String, "HOST:PORT";
    /// Address of the HTTP admin port (/status, /metrics, /members, /transfer-leader).
    /// Default: the client port + 200.
    admin_addr: String, "HOST:PORT";
    /// The initial members and their peer addresses: `1=h:p,2=h:p,3=h:p` (a list in TOML).
    /// Every node of a new cluster must be given the same list. Without it (and without a
    /// hostfile) the node starts a single-node cluster.
    members: Vec<String>, "ID=HOST:PORT,...";
    /// A file with one peer `host:port` per line (blank lines and `#` comments skipped); line n
    /// (from 1) is node n. Use with index.
    hostfile: PathBuf, "FILE";
    /// With a hostfile: this node's line (from 1), which is also its id.
    index: u64, "N";
    /// Start outside the membership, to be added later with `conclave cluster add`; the members
    /// then list the running cluster's voters.
    join: bool = false, "";
    /// Require clients to AUTH with this password (forwarded writes use it too).
    password: String, "PASSWORD", env = "CONCLAVE_PASSWORD";
    /// Require `Authorization: Bearer TOKEN` on every admin request (status and metrics
    /// included). Prefer admin_token_file or the environment: a flag shows in `ps`.
    admin_token: String, "TOKEN", env = "CONCLAVE_ADMIN_TOKEN";
    /// A file holding the admin token (surrounding whitespace ignored), as `conclave up`
    /// writes it to DATA_DIR/admin-token.
    admin_token_file: PathBuf, "FILE";
    /// Start even when a port is bound to a non-loopback address without the authentication
    /// that protects it (protected mode refuses to otherwise). Only for trusted networks.
    insecure: bool = false, "";
    /// Cluster name; nodes of clusters with different names refuse each other's connections.
    cluster_name: String = "conclave", "NAME";
    /// The secret every node of the cluster shares: peers prove they know it before anything
    /// they send is read, so that no one else can speak for a member on the peer port. Prefer
    /// cluster_secret_file or the environment variable, which stay out of `ps`. Without a
    /// secret the peer address must be loopback.
    cluster_secret: String, "SECRET", env = "CONCLAVE_CLUSTER_SECRET";
    /// A file holding the cluster secret (its bytes, without a trailing newline); keep it
    /// readable by the node's user only.
    cluster_secret_file: PathBuf, "FILE";
    /// Length of one protocol tick, in milliseconds.
    tick_ms: u64 = 20u64, "MS", range = 1..=10_000, "in 1..=10000";
    /// Election timeout in ticks (the actual timeout is randomised in [1x, 2x)).
    election_ticks: u32 = 10u32, "TICKS", range = 5.., "at least 5 (the lease keeps a 2-tick margin)";
    /// Heartbeat interval in ticks, below the election timeout.
    heartbeat_ticks: u32 = 1u32, "TICKS";
    /// Snapshot the store every this many applied entries.
    snapshot_entries: u64 = 100_000u64, "ENTRIES";
    /// Fail a request that takes longer than this, in milliseconds.
    request_timeout_ms: u64 = 10_000u64, "MS";
    /// How long a request waits for a leader during an election before `-CLUSTERDOWN`, in
    /// milliseconds.
    election_wait_ms: u64 = 3_000u64, "MS";
    /// Most client connections at once.
    max_clients: usize = 10_000usize, "N", range = 1.., "at least 1";
    /// Largest request (one RESP command) a client may send, in bytes. A larger command could
    /// not fit the transport's per-peer queue (32 MiB) with the rest of an AppendEntries.
    max_request_bytes: usize = 8usize << 20, "BYTES", range = 1024..=16 << 20, "in 1 KiB..=16 MiB";
    /// Close a client connection that sent nothing for this many seconds; 0 never does (Redis's
    /// `timeout`, also off by default there). A connection waiting for a reply is not idle.
    client_idle_timeout_s: u64 = 0u64, "SECONDS";
    /// Close a client connection whose command has been partly received for this long, in
    /// milliseconds: a client that starts a request and never finishes it holds memory.
    /// Measured from the command's first byte, so sending a byte now and then does not extend
    /// it.
    client_partial_request_timeout_ms: u64 = 30_000u64, "MS", range = 100.., "at least 100";
    /// Close a client connection whose replies not yet taken by the client exceed this many
    /// bytes (the hard limit of Redis's `client-output-buffer-limit`). While its replies are
    /// backed up, a connection reads and executes nothing more.
    client_output_hard_bytes: usize = 64usize << 20, "BYTES", range = 1024.., "at least 1 KiB";
    /// Close a client connection whose untaken replies stay above this many bytes for
    /// `client_output_soft_s` seconds (the soft limit of Redis's `client-output-buffer-limit`).
    client_output_soft_bytes: usize = 16usize << 20, "BYTES";
    /// How long replies may stay above `client_output_soft_bytes`, in seconds.
    client_output_soft_s: u64 = 60u64, "SECONDS", range = 1.., "at least 1";
    /// The most memory all client connections together may hold in query and output buffers,
    /// in bytes; above it the connection holding the most is closed first, as with Redis's
    /// `maxmemory-clients`. 0 means no limit.
    max_client_memory_bytes: usize = 512usize << 20, "BYTES";
    /// The most memory the data set may use, in bytes, as the store accounts it (keys, values
    /// and a fixed overhead per key); writes that could grow it are refused with `-OOM` above
    /// it, as Redis's `maxmemory` with the `noeviction` policy. 0 means no limit.
    max_memory_bytes: u64 = 4u64 << 30, "BYTES";
    /// Log level when RUST_LOG is not set: error, warn, info, debug or trace (read by the
    /// command line, not the server).
    log_level: String = "info", "LEVEL";
    /// A second client port that speaks TLS (as Redis's `tls-port`), beside the plain one, for
    /// `redis-cli --tls` and `ssl=True` clients. Needs tls_cert_file and tls_key_file.
    tls_client_addr: String, "HOST:PORT";
    /// The node's certificate chain (PEM, leaf first), for the TLS client port, HTTPS admin
    /// and peer TLS.
    tls_cert_file: PathBuf, "FILE";
    /// The private key of tls_cert_file (PEM).
    tls_key_file: PathBuf, "FILE";
    /// The CA certificates (PEM) that client, admin and peer certificates must be signed by.
    tls_ca_cert_file: PathBuf, "FILE";
    /// Whether TLS clients must present a certificate signed by the CA: yes, no or optional,
    /// as Redis's `tls-auth-clients`. On the admin port a certificate is accepted in place of
    /// the token unless this is no.
    tls_auth_clients: String = "yes", "yes|no|optional";
    /// Serve the admin port over HTTPS, with the node's certificate.
    tls_admin: bool = false, "";
    /// Peers talk mutual TLS: each presents a certificate signed by the CA that names its IP
    /// address, and a peer without one is refused. The cluster secret's handshake still runs.
    tls_cluster: bool = false, "";
    /// How often the node checks whether the certificate, key or CA file changed, and reloads
    /// them if so; 0 turns the check off (`POST /tls/reload` on the admin port still works).
    tls_reload_check_ms: u64 = 1_000u64, "MS";
}

impl ConfigFile {
    /// Reads a TOML file.
    pub fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| invalid("config", format!("cannot read {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| invalid("config", format!("{}: {e}", path.display())))
    }
}

/// A checked configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// This node.
    pub id: NodeId,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// The peer listen address.
    pub peer_addr: SocketAddr,
    /// The Redis-protocol listen address.
    pub client_addr: SocketAddr,
    /// The HTTP admin listen address.
    pub admin_addr: SocketAddr,
    /// Initial members (or, when joining, the running cluster's voters) and their peer addresses.
    pub members: BTreeMap<NodeId, SocketAddr>,
    /// Whether this node starts outside the membership.
    pub join: bool,
    /// The client password, if any.
    pub password: Option<String>,
    /// The admin port's bearer token, if any.
    pub admin_token: Option<AdminToken>,
    /// Protected mode is off: the node may listen beyond loopback without authentication.
    pub insecure: bool,
    /// The cluster's identity on the wire (a hash of the cluster name).
    pub cluster_id: u64,
    /// What peers prove they know in the handshake; none only on a loopback peer address.
    pub cluster_secret: ClusterSecret,
    /// One protocol tick.
    pub tick: Duration,
    /// Election timeout in ticks.
    pub election_ticks: u32,
    /// Heartbeat interval in ticks.
    pub heartbeat_ticks: u32,
    /// Snapshot policy.
    pub snapshot_entries: u64,
    /// Request timeout.
    pub request_timeout: Duration,
    /// The bounded wait for a leader.
    pub election_wait: Duration,
    /// Most client connections.
    pub max_clients: usize,
    /// Largest client request.
    pub max_request_bytes: usize,
    /// What one client connection, and all of them together, may hold.
    pub client_limits: ClientLimits,
    /// The data set's memory limit in bytes; 0 for none.
    pub max_memory_bytes: u64,
    /// TLS on the client, admin and peer ports, when configured.
    pub tls: Option<TlsConfig>,
}

/// Which of a node's ports speak TLS, and from which files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsConfig {
    /// The certificate, key and CA files, and the client-certificate policy.
    pub files: TlsFiles,
    /// The TLS client port's address, when there is one.
    pub client_addr: Option<SocketAddr>,
    /// Whether the admin port is HTTPS.
    pub admin: bool,
    /// Whether peers use mutual TLS.
    pub cluster: bool,
    /// How often the files are checked for changes; `None` for never.
    pub reload_check: Option<Duration>,
}

impl TlsConfig {
    /// Whether a CA-signed client certificate authenticates an admin request (so the admin
    /// port is protected even without a token).
    pub fn admin_certificates(&self) -> bool {
        self.admin && self.files.ca.is_some() && self.files.auth_clients != AuthClients::No
    }
}

/// What client connections may hold and for how long, so that no client (or group of clients)
/// can make the node run out of memory or keep resources forever.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientLimits {
    /// Close a connection idle this long; `None` never.
    pub idle_timeout: Option<Duration>,
    /// Close a connection whose command has been partly received this long.
    pub partial_request_timeout: Duration,
    /// Close a connection whose untaken replies exceed this.
    pub output_hard_bytes: usize,
    /// Close a connection whose untaken replies stay above this for `output_soft_time`.
    pub output_soft_bytes: usize,
    /// See `output_soft_bytes`.
    pub output_soft_time: Duration,
    /// The most all connections together may hold in buffers; 0 for no limit.
    pub memory_max_bytes: usize,
}

fn resolve(field: &'static str, text: &str) -> Result<SocketAddr, ConfigError> {
    text.to_socket_addrs()
        .map_err(|e| invalid(field, format!("{text:?}: {e}")))?
        .next()
        .ok_or_else(|| invalid(field, format!("{text:?} resolves to no address")))
}

fn with_port(addr: SocketAddr, field: &'static str, delta: i32) -> Result<SocketAddr, ConfigError> {
    let port = i32::from(addr.port()) + delta;
    let port = u16::try_from(port).ok().filter(|p| *p != 0).ok_or_else(|| {
        invalid(field, format!("derived port {port} is out of range; set it explicitly"))
    })?;
    Ok(SocketAddr::new(addr.ip(), port))
}

/// FNV-1a: a fixed hash, so every node derives the same cluster id from the same name.
fn cluster_id(name: &str) -> u64 {
    name.bytes()
        .fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

/// The cluster secret from the setting or the file (not both). Without either, only a node whose
/// peer address is loopback may start, with no secret: nothing off the host can reach its peer
/// port, and everyone on the host could read a secret from `conclave up`'s directory anyway. On
/// any other address, running without a secret would let whoever reaches the port depose the
/// leader or write to the log, so it is refused.
fn cluster_secret(
    text: Option<String>,
    file: Option<&Path>,
    peer_addr: SocketAddr,
    insecure: bool,
) -> Result<ClusterSecret, ConfigError> {
    let bytes = match (text, file) {
        (Some(_), Some(_)) => {
            return Err(invalid("cluster_secret", "set either it or cluster_secret_file, not both"))
        }
        (Some(text), None) => {
            if text.is_empty() {
                return Err(invalid("cluster_secret", "must not be empty"));
            }
            text.into_bytes()
        }
        (None, Some(path)) => {
            refuse_world_access(path)?;
            let mut bytes = std::fs::read(path).map_err(|e| {
                invalid("cluster_secret_file", format!("cannot read {}: {e}", path.display()))
            })?;
            // Editors and `echo` end a file with a newline; it is not part of the secret.
            while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                bytes.pop();
            }
            if bytes.is_empty() {
                return Err(invalid("cluster_secret_file", format!("{} is empty", path.display())));
            }
            bytes
        }
        // Protected mode for the peer port: a member's voice needs the secret beyond loopback.
        (None, None) if peer_addr.ip().is_loopback() || insecure => {
            return Ok(ClusterSecret::none())
        }
        (None, None) => {
            return Err(invalid(
                "cluster_secret",
                format!(
                    "protected mode: required when the peer address ({peer_addr}) is not \
                     loopback: without it anyone who reaches that port can act as a member; set \
                     cluster_secret_file or CONCLAVE_CLUSTER_SECRET on every node, or set \
                     insecure (--insecure) if every host that can reach it is trusted"
                ),
            ))
        }
    };
    Ok(ClusterSecret::new(bytes))
}

/// Refuses a secret file that every user of the host may read or write: any of them could then
/// act as a node on the peer ports. Group access is allowed, for setups where a service group
/// owns the secret.
fn refuse_world_access(path: &Path) -> Result<(), ConfigError> {
    use std::os::unix::fs::PermissionsExt;
    let metadata = std::fs::metadata(path).map_err(|e| {
        invalid("cluster_secret_file", format!("cannot read {}: {e}", path.display()))
    })?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o007 != 0 {
        return Err(invalid(
            "cluster_secret_file",
            format!(
                "{} is open to every user (mode {mode:03o}); run chmod 600 on it",
                path.display()
            ),
        ));
    }
    Ok(())
}

/// A setting's value once [`ConfigFile::defaults`] are merged in. Only called for settings that
/// have a default, so a missing value is a bug in this module, not a user's mistake.
fn filled<T>(value: Option<T>, key: &str) -> T {
    value.unwrap_or_else(|| panic!("the setting {key} has no default"))
}

/// The admin token from the setting or the file (not both: which one wins would be a guess).
fn admin_token(
    token: Option<&str>,
    file: Option<&Path>,
) -> Result<Option<AdminToken>, ConfigError> {
    let (text, field) = match (token, file) {
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => {
            return Err(invalid(
                "admin_token",
                "give admin_token (or CONCLAVE_ADMIN_TOKEN) or admin_token_file, not both",
            ))
        }
        (Some(token), None) => (token.to_string(), "admin_token"),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                invalid("admin_token_file", format!("cannot read {}: {e}", path.display()))
            })?;
            (text, "admin_token_file")
        }
    };
    AdminToken::new(&text).map(Some).ok_or_else(|| invalid(field, "the token must not be empty"))
}

/// Whether `dir` exists and holds anything (a log or a snapshot that may hold users).
fn holds_state(dir: &std::path::Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some())
}

/// Protected mode, after Redis's: a port that anyone on the network can reach must be protected
/// by its authentication, or the operator must say that the network is trusted (`insecure`).
/// The client port needs the password, the admin port the admin token; the peer port's rule,
/// the cluster secret, is checked where the secret is read (`cluster_secret`).
/// The TLS settings, checked together: every TLS port needs the certificate and key, and
/// client certificates and mutual TLS need the CA.
fn tls_config(file: &ConfigFile) -> Result<Option<TlsConfig>, ConfigError> {
    let client_addr =
        file.tls_client_addr.as_deref().map(|text| resolve("tls_client_addr", text)).transpose()?;
    let admin = file.tls_admin.unwrap_or(false);
    let cluster = file.tls_cluster.unwrap_or(false);
    let auth_text = file.tls_auth_clients.as_deref().unwrap_or("yes");
    let auth_clients: AuthClients =
        auth_text.parse().map_err(|reason| invalid("tls_auth_clients", reason))?;
    let any_file = file.tls_cert_file.is_some()
        || file.tls_key_file.is_some()
        || file.tls_ca_cert_file.is_some();
    if client_addr.is_none() && !admin && !cluster {
        if any_file {
            return Err(invalid(
                "tls_cert_file",
                "no port uses it; set tls_client_addr, tls_admin or tls_cluster",
            ));
        }
        return Ok(None);
    }
    let (Some(cert), Some(key)) = (file.tls_cert_file.clone(), file.tls_key_file.clone()) else {
        let missing = if file.tls_cert_file.is_none() { "tls_cert_file" } else { "tls_key_file" };
        return Err(invalid(missing, "required when a port speaks TLS"));
    };
    let ca = file.tls_ca_cert_file.clone();
    if ca.is_none() && cluster {
        return Err(invalid(
            "tls_ca_cert_file",
            "required by tls_cluster (peers' certificates are checked against it)",
        ));
    }
    if ca.is_none() && client_addr.is_some() && auth_clients != AuthClients::No {
        return Err(invalid(
            "tls_ca_cert_file",
            format!("required with tls_auth_clients {auth_text} (client certificates are checked against it); or set tls_auth_clients no"),
        ));
    }
    let reload_check = match file.tls_reload_check_ms.unwrap_or(0) {
        0 => None,
        ms => Some(Duration::from_millis(ms)),
    };
    Ok(Some(TlsConfig {
        files: TlsFiles { cert, key, ca, auth_clients },
        client_addr,
        admin,
        cluster,
        reload_check,
    }))
}

fn protected_mode(
    [client, admin]: [SocketAddr; 2],
    password: bool,
    admin_token: bool,
    tls: Option<&TlsConfig>,
) -> Result<(), ConfigError> {
    let exposed = |addr: SocketAddr| !addr.ip().is_loopback();
    let refuse = |field: &'static str, addr: SocketAddr, risk: &str, fix: &str| {
        invalid(
            field,
            format!(
                "protected mode: {addr} is not a loopback address and {risk}; {fix}, or listen \
                 on 127.0.0.1, or set insecure (--insecure) if every host that can reach it is \
                 trusted"
            ),
        )
    };
    if exposed(client) && !password {
        return Err(refuse(
            "client_addr",
            client,
            "no password is set, so anyone who can connect can read and write every key",
            "set password (--password or CONCLAVE_PASSWORD)",
        ));
    }
    // A CA-signed client certificate authenticates an HTTPS admin request as the token does.
    if exposed(admin) && !admin_token && !tls.is_some_and(TlsConfig::admin_certificates) {
        return Err(refuse(
            "admin_addr",
            admin,
            "no admin token is set, so anyone who can connect can change the membership",
            "set admin_token_file (--admin-token-file) or CONCLAVE_ADMIN_TOKEN, or serve it \
             over HTTPS with client certificates (tls_admin, tls_ca_cert_file)",
        ));
    }
    // On the TLS client port a required client certificate authenticates the client.
    if let Some(tls) = tls {
        if let Some(addr) = tls.client_addr.filter(|addr| exposed(*addr)) {
            if !password && tls.files.auth_clients != AuthClients::Yes {
                return Err(refuse(
                    "tls_client_addr",
                    addr,
                    "no password is set and client certificates are not required, so anyone \
                     who can connect can read and write every key",
                    "set password (--password or CONCLAVE_PASSWORD) or tls_auth_clients yes",
                ));
            }
        }
    }
    Ok(())
}

impl ConfigFile {
    /// Checks everything and fills in defaults.
    pub fn resolve(self) -> Result<ServerConfig, ConfigError> {
        self.check_ranges()?;
        ConfigFile::defaults().merge(self).resolve_with_defaults()
    }

    fn resolve_with_defaults(self) -> Result<ServerConfig, ConfigError> {
        let mut members = BTreeMap::new();
        let mut id = self.id;
        if let Some(path) = &self.hostfile {
            let text = std::fs::read_to_string(path)
                .map_err(|e| invalid("hostfile", format!("cannot read {}: {e}", path.display())))?;
            let lines: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .collect();
            if lines.is_empty() {
                return Err(invalid("hostfile", "no host:port lines"));
            }
            for (n, line) in lines.iter().enumerate() {
                members.insert(NodeId(n as u64 + 1), resolve("hostfile", line)?);
            }
            let index = self.index.ok_or_else(|| invalid("index", "required with a hostfile"))?;
            if index == 0 || index as usize > lines.len() {
                return Err(invalid("index", format!("must be in 1..={}", lines.len())));
            }
            if id.is_some_and(|id| id != index) {
                return Err(invalid("id", "with a hostfile the id is the line index"));
            }
            id = Some(index);
        } else if self.index.is_some() {
            return Err(invalid("index", "only meaningful with a hostfile"));
        }
        for member in self.members.iter().flatten() {
            let (node, addr) = member
                .split_once('=')
                .ok_or_else(|| invalid("members", format!("{member:?} is not id=host:port")))?;
            let node: u64 = node.trim().parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                invalid("members", format!("{node:?} is not a node id (1 or more)"))
            })?;
            if members.insert(NodeId(node), resolve("members", addr.trim())?).is_some() {
                return Err(invalid("members", format!("node {node} is listed twice")));
            }
        }
        let id = NodeId(id.ok_or_else(|| invalid("id", "required (or a hostfile and index)"))?);
        if id.0 == 0 {
            return Err(invalid("id", "must be at least 1"));
        }
        let join = filled(self.join, "join");
        let peer_addr = match (&self.peer_addr, members.get(&id)) {
            (Some(text), _) => resolve("peer_addr", text)?,
            (None, Some(addr)) => *addr,
            (None, None) if !join && !members.is_empty() => {
                return Err(invalid(
                    "members",
                    format!("this node ({id}) is not listed; use join to add a node later"),
                ))
            }
            (None, None) => match &self.client_addr {
                Some(text) => with_port(resolve("client_addr", text)?, "peer_addr", 100)?,
                None => {
                    return Err(invalid("peer_addr", "required (or list this node in members)"))
                }
            },
        };
        if join {
            if members.contains_key(&id) {
                return Err(invalid(
                    "join",
                    format!("node {id} is listed in members; a joining node is not"),
                ));
            }
            if members.is_empty() {
                return Err(invalid(
                    "members",
                    "a joining node needs the running cluster's members",
                ));
            }
        } else {
            if members.is_empty() {
                members.insert(id, peer_addr);
            }
            match members.get(&id) {
                None => {
                    return Err(invalid(
                        "members",
                        format!("this node ({id}) is not listed; use join to add a node later"),
                    ))
                }
                Some(listed) if *listed != peer_addr => {
                    return Err(invalid(
                        "peer_addr",
                        format!("{peer_addr} differs from this node's entry in members ({listed})"),
                    ))
                }
                Some(_) => {}
            }
        }
        let client_addr = match &self.client_addr {
            Some(text) => resolve("client_addr", text)?,
            None => with_port(peer_addr, "client_addr", -100)?,
        };
        let admin_addr = match &self.admin_addr {
            Some(text) => resolve("admin_addr", text)?,
            None => with_port(client_addr, "admin_addr", 200)?,
        };
        // Port 0 asks the OS for a free port, a different one for each listener.
        let addrs = [peer_addr, client_addr, admin_addr].map(|a| (a.port() != 0).then_some(a));
        let same = |a: Option<SocketAddr>, b: Option<SocketAddr>| a.is_some() && a == b;
        if same(addrs[0], addrs[1]) || same(addrs[0], addrs[2]) || same(addrs[1], addrs[2]) {
            return Err(invalid("client_addr", "peer, client and admin addresses must differ"));
        }
        let tls = tls_config(&self)?;
        let data_dir = self.data_dir.ok_or_else(|| invalid("data_dir", "required"))?;
        let tick_ms = filled(self.tick_ms, "tick_ms");
        let election_ticks = filled(self.election_ticks, "election_ticks");
        let heartbeat_ticks = filled(self.heartbeat_ticks, "heartbeat_ticks");
        if heartbeat_ticks == 0 || heartbeat_ticks >= election_ticks {
            return Err(invalid(
                "heartbeat_ticks",
                format!("must be at least 1 and below election_ticks ({election_ticks})"),
            ));
        }
        let max_clients = filled(self.max_clients, "max_clients");
        let max_request_bytes = filled(self.max_request_bytes, "max_request_bytes");
        if self.password.as_deref() == Some("") {
            return Err(invalid("password", "must not be empty"));
        }
        let admin_token =
            admin_token(self.admin_token.as_deref(), self.admin_token_file.as_deref())?;
        let insecure = filled(self.insecure, "insecure");
        if let Some(addr) = tls.as_ref().and_then(|tls| tls.client_addr) {
            if addr.port() != 0 && [peer_addr, client_addr, admin_addr].contains(&addr) {
                return Err(invalid("tls_client_addr", "must differ from the other addresses"));
            }
        }
        if !insecure {
            protected_mode(
                [client_addr, admin_addr],
                // A node with state may hold users whose passwords protect its client port:
                // each connection from beyond loopback is then checked against the replicated
                // users (`session::protected_mode_denial`).
                self.password.is_some() || holds_state(&data_dir),
                admin_token.is_some(),
                tls.as_ref(),
            )?;
        }
        let cluster_secret = cluster_secret(
            self.cluster_secret,
            self.cluster_secret_file.as_deref(),
            peer_addr,
            insecure,
        )?;
        Ok(ServerConfig {
            id,
            data_dir,
            peer_addr,
            client_addr,
            admin_addr,
            members,
            join,
            password: self.password,
            admin_token,
            insecure,
            cluster_id: cluster_id(&filled(self.cluster_name, "cluster_name")),
            cluster_secret,
            tick: Duration::from_millis(tick_ms),
            election_ticks,
            heartbeat_ticks,
            snapshot_entries: filled(self.snapshot_entries, "snapshot_entries"),
            request_timeout: Duration::from_millis(filled(
                self.request_timeout_ms,
                "request_timeout_ms",
            )),
            election_wait: Duration::from_millis(filled(self.election_wait_ms, "election_wait_ms")),
            max_clients,
            max_request_bytes,
            client_limits: ClientLimits {
                idle_timeout: match filled(self.client_idle_timeout_s, "client_idle_timeout_s") {
                    0 => None,
                    seconds => Some(Duration::from_secs(seconds)),
                },
                partial_request_timeout: Duration::from_millis(filled(
                    self.client_partial_request_timeout_ms,
                    "client_partial_request_timeout_ms",
                )),
                output_hard_bytes: filled(
                    self.client_output_hard_bytes,
                    "client_output_hard_bytes",
                ),
                output_soft_bytes: filled(
                    self.client_output_soft_bytes,
                    "client_output_soft_bytes",
                ),
                output_soft_time: Duration::from_secs(filled(
                    self.client_output_soft_s,
                    "client_output_soft_s",
                )),
                memory_max_bytes: filled(self.max_client_memory_bytes, "max_client_memory_bytes"),
            },
            max_memory_bytes: filled(self.max_memory_bytes, "max_memory_bytes"),
            tls,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ConfigFile {
        ConfigFile {
            id: Some(2),
            data_dir: Some("/tmp/x".into()),
            members: Some(vec![
                "1=127.0.0.1:7100".into(),
                "2=127.0.0.1:7101".into(),
                "3=127.0.0.1:7102".into(),
            ]),
            ..ConfigFile::default()
        }
    }

    #[test]
    fn ports_follow_the_rule() {
        let config = base().resolve().unwrap();
        assert_eq!(config.peer_addr, "127.0.0.1:7101".parse().unwrap());
        assert_eq!(config.client_addr, "127.0.0.1:7001".parse().unwrap());
        assert_eq!(config.admin_addr, "127.0.0.1:7201".parse().unwrap());
        assert_eq!(config.members.len(), 3);
    }

    #[test]
    fn mistakes_name_their_field() {
        let field = |c: ConfigFile| c.resolve().unwrap_err().field;
        assert_eq!(field(ConfigFile { id: Some(9), ..base() }), "members");
        assert_eq!(field(ConfigFile { data_dir: None, ..base() }), "data_dir");
        assert_eq!(field(ConfigFile { members: Some(vec!["x".into()]), ..base() }), "members");
        assert_eq!(field(ConfigFile { heartbeat_ticks: Some(10), ..base() }), "heartbeat_ticks");
        assert_eq!(field(ConfigFile { join: Some(true), ..base() }), "join");
        assert_eq!(field(ConfigFile { index: Some(1), ..base() }), "index");
        assert_eq!(field(ConfigFile { tick_ms: Some(0), ..base() }), "tick_ms");
        assert_eq!(
            field(ConfigFile { peer_addr: Some("127.0.0.1:1".into()), ..base() }),
            "peer_addr"
        );
    }

    #[test]
    fn the_cluster_secret_comes_from_the_setting_or_a_file_and_is_required_off_loopback() {
        assert_eq!(base().resolve().unwrap().cluster_secret, ClusterSecret::none());
        let given = ConfigFile { cluster_secret: Some("abc".into()), ..base() };
        assert_eq!(given.resolve().unwrap().cluster_secret, ClusterSecret::new(*b"abc"));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "from a file\n").unwrap();
        let mode = |mode| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        mode(0o644);
        let open_file = ConfigFile { cluster_secret_file: Some(file.clone()), ..base() };
        let error = open_file.resolve().unwrap_err();
        assert!(error.reason.contains("mode 644"), "{error}");
        mode(0o640);
        let from_file = ConfigFile { cluster_secret_file: Some(file.clone()), ..base() };
        assert_eq!(
            from_file.resolve().unwrap().cluster_secret,
            ClusterSecret::new(*b"from a file")
        );

        let field = |c: ConfigFile| c.resolve().unwrap_err().field;
        let both = ConfigFile {
            cluster_secret: Some("abc".into()),
            cluster_secret_file: Some(file.clone()),
            ..base()
        };
        assert_eq!(field(both), "cluster_secret");
        assert_eq!(
            field(ConfigFile { cluster_secret: Some(String::new()), ..base() }),
            "cluster_secret"
        );
        std::fs::write(&file, "\n").unwrap();
        let empty_file = ConfigFile { cluster_secret_file: Some(file), ..base() };
        assert_eq!(field(empty_file), "cluster_secret_file");
        let missing = ConfigFile { cluster_secret_file: Some(dir.path().join("none")), ..base() };
        assert_eq!(field(missing), "cluster_secret_file");
        // Reachable from other hosts: a secret is required.
        let open = ConfigFile {
            id: Some(1),
            data_dir: Some("d".into()),
            peer_addr: Some("0.0.0.0:7100".into()),
            client_addr: Some("127.0.0.1:7000".into()),
            admin_addr: Some("127.0.0.1:7200".into()),
            ..ConfigFile::default()
        };
        let error = open.clone().resolve().unwrap_err();
        assert_eq!(error.field, "cluster_secret");
        assert!(error.reason.contains("0.0.0.0:7100"), "{error}");
        let secured = ConfigFile { cluster_secret: Some("abc".into()), ..open };
        assert!(secured.resolve().is_ok());
    }

    #[test]
    fn toml_and_hostfile() {
        let dir = tempfile::tempdir().unwrap();
        let hosts = dir.path().join("hosts");
        std::fs::write(&hosts, "# cluster\n127.0.0.1:7100\n127.0.0.1:7101\n\n").unwrap();
        let file = dir.path().join("node.toml");
        std::fs::write(&file, format!("hostfile = {:?}\nindex = 2\ndata_dir = \"d\"\n", hosts))
            .unwrap();
        let config = ConfigFile::load(&file).unwrap().resolve().unwrap();
        assert_eq!((config.id, config.members.len()), (NodeId(2), 2));
        std::fs::write(&file, "idd = 3\n").unwrap();
        let error = ConfigFile::load(&file).unwrap_err();
        assert!(error.reason.contains("unknown field"), "{error}");
        let merged = ConfigFile { id: Some(1), ..ConfigFile::default() }
            .merge(ConfigFile { id: Some(5), ..ConfigFile::default() });
        assert_eq!(merged.id, Some(5));
    }
}

#[cfg(test)]
mod protection_tests {
    use super::*;

    fn everywhere() -> ConfigFile {
        ConfigFile {
            id: Some(1),
            data_dir: Some("d".into()),
            peer_addr: Some("0.0.0.0:0".into()),
            client_addr: Some("0.0.0.0:0".into()),
            admin_addr: Some("0.0.0.0:0".into()),
            ..ConfigFile::default()
        }
    }

    #[test]
    fn each_exposed_port_needs_its_authentication_or_insecure() {
        let field = |c: ConfigFile| c.resolve().map(|_| ()).map_err(|e| e.field);
        assert_eq!(field(everywhere()), Err("client_addr"));
        let password = || Some("s3cret".to_string());
        assert_eq!(field(ConfigFile { password: password(), ..everywhere() }), Err("admin_addr"));
        let token = || Some("t0ken".to_string());
        let admin_only = ConfigFile {
            client_addr: Some("127.0.0.1:7000".into()),
            peer_addr: Some("127.0.0.1:7100".into()),
            admin_token: token(),
            ..everywhere()
        };
        assert_eq!(field(admin_only), Ok(()));
        let loopback_admin = ConfigFile {
            password: password(),
            admin_addr: Some("127.0.0.1:7200".into()),
            ..everywhere()
        };
        assert_eq!(
            field(loopback_admin.clone()),
            Err("cluster_secret"),
            "the peer port needs the cluster secret"
        );
        let secret = || Some("a-shared-secret".to_string());
        assert_eq!(field(ConfigFile { cluster_secret: secret(), ..loopback_admin }), Ok(()));
        let config = ConfigFile {
            password: password(),
            admin_token: token(),
            cluster_secret: secret(),
            ..everywhere()
        }
        .resolve();
        assert_eq!(config.map(|c| c.admin_token.map(|t| t.expose().to_string())), Ok(token()));
        assert_eq!(field(ConfigFile { insecure: Some(true), ..everywhere() }), Ok(()));
    }

    #[test]
    fn the_admin_token_comes_from_one_place_and_is_never_empty() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("admin-token");
        std::fs::write(&file, "from-file\n").unwrap();
        let base =
            || ConfigFile { id: Some(1), data_dir: Some("d".into()), ..ConfigFile::default() };
        let local = |c: ConfigFile| ConfigFile { peer_addr: Some("127.0.0.1:7100".into()), ..c };
        let config = local(ConfigFile { admin_token_file: Some(file.clone()), ..base() }).resolve();
        let token = config.unwrap().admin_token.unwrap();
        assert_eq!(token.expose(), "from-file");
        let both =
            ConfigFile { admin_token: Some("x".into()), admin_token_file: Some(file), ..base() };
        assert_eq!(local(both).resolve().unwrap_err().field, "admin_token");
        let empty = ConfigFile { admin_token: Some(" ".into()), ..base() };
        assert_eq!(local(empty).resolve().unwrap_err().field, "admin_token");
        let missing = ConfigFile { admin_token_file: Some(dir.path().join("none")), ..base() };
        assert_eq!(local(missing).resolve().unwrap_err().field, "admin_token_file");
    }
}

#[cfg(test)]
mod setting_tests {
    use super::*;

    #[test]
    fn every_setting_is_a_toml_key_and_a_flag() {
        for setting in settings() {
            // The key is accepted by the TOML format (which refuses unknown keys)...
            let value = match setting.kind {
                SettingKind::Integer => "7".to_string(),
                SettingKind::Text | SettingKind::Path => "\"x\"".to_string(),
                SettingKind::Switch => "true".to_string(),
                SettingKind::List => "[\"x\"]".to_string(),
            };
            let parsed: Result<ConfigFile, _> =
                toml::from_str(&format!("{} = {value}", setting.key));
            assert!(parsed.is_ok(), "{}: {parsed:?}", setting.key);
            // ...and by a flag of the same name, landing in the same field.
            let flag = match setting.kind {
                SettingKind::Integer => FlagValue::Integer(7),
                SettingKind::Text | SettingKind::Path => FlagValue::Text("x".into()),
                SettingKind::Switch => FlagValue::Switch(true),
                SettingKind::List => FlagValue::List(vec!["x".into()]),
            };
            let mut flags = ConfigFile::default();
            flags.set_flag(setting.key, flag).unwrap();
            assert_eq!(Ok(flags), parsed, "{}", setting.key);
            assert!(!setting.help.is_empty(), "{} has no help", setting.key);
        }
    }

    #[test]
    fn defaults_are_shown_and_used() {
        let all = settings();
        let tick = all.iter().find(|s| s.key == "tick_ms").unwrap();
        assert_eq!(tick.flag(), "tick-ms");
        assert!(tick.help_text().ends_with("Must be in 1..=10000. [default: 20]"), "{tick:?}");
        let config = ConfigFile {
            id: Some(1),
            data_dir: Some("d".into()),
            peer_addr: Some("127.0.0.1:7100".into()),
            ..ConfigFile::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(config.tick, Duration::from_millis(20));
        assert_eq!(config.max_request_bytes, 8 << 20);
        assert_eq!(config.cluster_id, cluster_id("conclave"));
    }

    #[test]
    fn a_flag_value_out_of_its_fields_range_names_the_setting() {
        let mut flags = ConfigFile::default();
        let error = flags.set_flag("election_ticks", FlagValue::Integer(1 << 40)).unwrap_err();
        assert_eq!(error.field, "election_ticks");
        let error = flags.set_flag("tick_mss", FlagValue::Integer(1)).unwrap_err();
        assert!(error.reason.contains("tick_mss"), "{error}");
        let field = |c: ConfigFile| c.resolve().unwrap_err().field;
        assert_eq!(
            field(ConfigFile { max_clients: Some(0), ..ConfigFile::default() }),
            "max_clients"
        );
        assert_eq!(
            field(ConfigFile { election_ticks: Some(4), ..ConfigFile::default() }),
            "election_ticks"
        );
    }
}

#[cfg(test)]
mod tls_tests {
    use super::*;

    /// A node with a TLS client port and every file named (the files are read at start, not
    /// here).
    fn with_tls() -> ConfigFile {
        ConfigFile {
            id: Some(1),
            data_dir: Some("/tmp/x".into()),
            client_addr: Some("127.0.0.1:7000".into()),
            tls_client_addr: Some("127.0.0.1:7300".into()),
            tls_cert_file: Some("node.crt".into()),
            tls_key_file: Some("node.key".into()),
            tls_ca_cert_file: Some("ca.crt".into()),
            ..ConfigFile::default()
        }
    }

    #[test]
    fn tls_settings_resolve_with_redis_defaults() {
        let config = with_tls().resolve().unwrap();
        let tls = config.tls.expect("TLS is configured");
        assert_eq!(tls.client_addr, Some("127.0.0.1:7300".parse().unwrap()));
        assert_eq!(tls.files.auth_clients, AuthClients::Yes, "Redis's tls-auth-clients default");
        assert!(!tls.admin && !tls.cluster);
        assert_eq!(tls.reload_check, Some(Duration::from_secs(1)));
        assert_eq!(base_without_tls().resolve().unwrap().tls, None);
    }

    fn base_without_tls() -> ConfigFile {
        ConfigFile {
            tls_client_addr: None,
            tls_cert_file: None,
            tls_key_file: None,
            tls_ca_cert_file: None,
            ..with_tls()
        }
    }

    #[test]
    fn tls_mistakes_name_their_setting() {
        let field = |c: ConfigFile| c.resolve().unwrap_err().field;
        assert_eq!(field(ConfigFile { tls_cert_file: None, ..with_tls() }), "tls_cert_file");
        assert_eq!(field(ConfigFile { tls_key_file: None, ..with_tls() }), "tls_key_file");
        // Client certificates and peer TLS are checked against the CA.
        assert_eq!(field(ConfigFile { tls_ca_cert_file: None, ..with_tls() }), "tls_ca_cert_file");
        let cluster = ConfigFile { tls_cluster: Some(true), tls_ca_cert_file: None, ..with_tls() };
        assert_eq!(field(cluster), "tls_ca_cert_file");
        let unknown = ConfigFile { tls_auth_clients: Some("maybe".into()), ..with_tls() };
        assert_eq!(field(unknown), "tls_auth_clients");
        let unused = ConfigFile { tls_cert_file: Some("node.crt".into()), ..base_without_tls() };
        assert_eq!(field(unused), "tls_cert_file");
        let same = ConfigFile { tls_client_addr: Some("127.0.0.1:7000".into()), ..with_tls() };
        assert_eq!(field(same), "tls_client_addr");
        // Without a CA a TLS port still works when client certificates are off.
        let no_ca = ConfigFile {
            tls_ca_cert_file: None,
            tls_auth_clients: Some("no".into()),
            ..with_tls()
        };
        assert!(no_ca.resolve().is_ok());
    }

    /// Protected mode counts a required client certificate as authentication on the TLS client
    /// port, and a CA-signed certificate as the admin port's credential over HTTPS.
    #[test]
    fn protected_mode_accepts_client_certificates() {
        let exposed_tls = ConfigFile { tls_client_addr: Some("0.0.0.0:7300".into()), ..with_tls() };
        assert!(exposed_tls.clone().resolve().is_ok(), "tls_auth_clients yes authenticates");
        let optional =
            ConfigFile { tls_auth_clients: Some("optional".into()), ..exposed_tls.clone() };
        let error = optional.clone().resolve().unwrap_err();
        assert_eq!(error.field, "tls_client_addr");
        assert!(error.reason.contains("tls_auth_clients yes"), "{error}");
        assert!(ConfigFile { password: Some("pw".into()), ..optional }.resolve().is_ok());

        let exposed_admin = ConfigFile { admin_addr: Some("0.0.0.0:7200".into()), ..with_tls() };
        let error = exposed_admin.clone().resolve().unwrap_err();
        assert_eq!(error.field, "admin_addr");
        assert!(error.reason.contains("tls_admin"), "the fix is named: {error}");
        let https = ConfigFile { tls_admin: Some(true), ..exposed_admin.clone() };
        assert!(https.clone().resolve().is_ok(), "a CA-signed certificate authenticates");
        let no_certificates = ConfigFile { tls_auth_clients: Some("no".into()), ..https };
        assert_eq!(no_certificates.resolve().unwrap_err().field, "admin_addr");
    }
}
