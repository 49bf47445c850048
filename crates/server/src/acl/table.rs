//! Every command's ACL metadata, as Redis's command table declares it: the categories it belongs
//! to (`+@read`, `-@dangerous`, ...) and which of its arguments are keys, read or written (for
//! `~pattern`, `%R~pattern` and `%W~pattern`).
//!
//! Adding a command is one line in [`COMMANDS`]. A test checks that every data command the
//! key-value crate plans has a line here, so a command cannot be added without deciding who may
//! run it. A command with subcommands (`ACL`) has one line per subcommand, named `acl|setuser`,
//! and rules may name the whole command (`+acl`) or one subcommand (`+acl|whoami`).

use bytes::Bytes;

/// A set of ACL categories, one bit each.
pub(crate) type Categories = u32;

/// Every category, in Redis's order (the order `ACL CAT` lists them), with its bit.
pub(crate) const CATEGORY_NAMES: [&str; 21] = [
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// The keyspace category: commands about keys whatever their type.
pub(crate) const KEYSPACE: Categories = 1 << 0;
/// Commands that read data.
pub(crate) const READ: Categories = 1 << 1;
/// Commands that write data.
pub(crate) const WRITE: Categories = 1 << 2;
/// Set commands.
#[allow(dead_code)] // For the commands of that type, when they come.
pub(crate) const SET: Categories = 1 << 3;
/// Sorted set commands.
#[allow(dead_code)] // For the commands of that type, when they come.
pub(crate) const SORTEDSET: Categories = 1 << 4;
/// List commands.
#[allow(dead_code)] // For the commands of that type, when they come.
pub(crate) const LIST: Categories = 1 << 5;
/// Hash commands.
#[allow(dead_code)] // For the commands of that type, when they come.
pub(crate) const HASH: Categories = 1 << 6;
/// String commands.
pub(crate) const STRING: Categories = 1 << 7;
/// Administrative commands.
pub(crate) const ADMIN: Categories = 1 << 13;
/// O(1) or O(log n) commands.
pub(crate) const FAST: Categories = 1 << 14;
/// Every command that is not fast.
pub(crate) const SLOW: Categories = 1 << 15;
/// Commands that may disrupt the server or read every key.
pub(crate) const DANGEROUS: Categories = 1 << 17;
/// Commands about the connection.
pub(crate) const CONNECTION: Categories = 1 << 18;

/// The category named `name` (without its `@`), compared without case as Redis does.
pub(crate) fn category(name: &str) -> Option<Categories> {
    CATEGORY_NAMES.iter().position(|c| c.eq_ignore_ascii_case(name)).map(|bit| 1 << bit)
}

/// What a command does with a key, and so which key patterns let it through: `%R~` for reads,
/// `%W~` for writes, `~` for both. A key the command only looks at without reading its value
/// (EXISTS, TTL) needs a pattern of either kind, as in Redis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// Neither reads the value nor writes it.
    Touch,
    /// Reads the value.
    Read,
    /// Writes the key (creates, changes or deletes it).
    Write,
    /// Reads and writes.
    ReadWrite,
}

/// Which arguments are keys: from `first` to `last` (negative: counted from the end, `-1` the
/// last argument) every `step`-th one, as Redis's legacy key specification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Keys {
    first: u8,
    last: i8,
    step: u8,
    access: Access,
}

/// A command without key arguments.
const NO_KEYS: Keys = Keys { first: 0, last: 0, step: 0, access: Access::Touch };

/// The first argument is the only key.
const fn one(access: Access) -> Keys {
    Keys { first: 1, last: 1, step: 1, access }
}

/// Every argument from the first is a key (DEL, MGET, EXISTS).
const fn all(access: Access) -> Keys {
    Keys { first: 1, last: -1, step: 1, access }
}

/// Key-value pairs from the first argument: every other argument is a key (MSET).
const PAIRS: Keys = Keys { first: 1, last: -1, step: 2, access: Access::Write };

/// One command's (or subcommand's) line in the table.
#[derive(Debug)]
pub(crate) struct CommandAcl {
    /// Lowercase; `parent|sub` for a subcommand.
    pub(crate) name: &'static str,
    /// The categories it belongs to.
    pub(crate) categories: Categories,
    /// Its key arguments.
    keys: Keys,
}

const fn cmd(name: &'static str, categories: Categories, keys: Keys) -> CommandAcl {
    CommandAcl { name, categories, keys }
}

use Access::{Read as R, ReadWrite as RW, Touch as T, Write as W};

/// Every command the client port answers, with its ACL categories and key arguments (after
/// Redis 7.2's command table).
pub(crate) const COMMANDS: &[CommandAcl] = &[
    // Strings.
    cmd("get", READ | STRING | FAST, one(R)),
    cmd("set", WRITE | STRING | SLOW, one(W)),
    cmd("mget", READ | STRING | FAST, all(R)),
    cmd("mset", WRITE | STRING | SLOW, PAIRS),
    cmd("msetnx", WRITE | STRING | SLOW, PAIRS),
    cmd("incr", WRITE | STRING | FAST, one(RW)),
    cmd("decr", WRITE | STRING | FAST, one(RW)),
    cmd("incrby", WRITE | STRING | FAST, one(RW)),
    cmd("decrby", WRITE | STRING | FAST, one(RW)),
    cmd("setnx", WRITE | STRING | FAST, one(W)),
    cmd("setex", WRITE | STRING | SLOW, one(W)),
    cmd("psetex", WRITE | STRING | SLOW, one(W)),
    cmd("getset", WRITE | STRING | FAST, one(RW)),
    cmd("getdel", WRITE | STRING | FAST, one(RW)),
    cmd("append", WRITE | STRING | FAST, one(W)),
    cmd("strlen", READ | STRING | FAST, one(T)),
    // Keys of any type.
    cmd("del", KEYSPACE | WRITE | SLOW, all(W)),
    cmd("unlink", KEYSPACE | WRITE | FAST, all(W)),
    cmd("exists", KEYSPACE | READ | FAST, all(T)),
    cmd("touch", KEYSPACE | READ | FAST, all(T)),
    cmd("type", KEYSPACE | READ | FAST, one(T)),
    // Redis flags these ACCESS (they reveal the key's expiry): they need read permission.
    cmd("ttl", KEYSPACE | READ | FAST, one(R)),
    cmd("pttl", KEYSPACE | READ | FAST, one(R)),
    cmd("expiretime", KEYSPACE | READ | FAST, one(R)),
    cmd("pexpiretime", KEYSPACE | READ | FAST, one(R)),
    cmd("expire", KEYSPACE | WRITE | FAST, one(W)),
    cmd("pexpire", KEYSPACE | WRITE | FAST, one(W)),
    cmd("expireat", KEYSPACE | WRITE | FAST, one(W)),
    cmd("pexpireat", KEYSPACE | WRITE | FAST, one(W)),
    cmd("persist", KEYSPACE | WRITE | FAST, one(W)),
    cmd("scan", KEYSPACE | READ | SLOW, NO_KEYS),
    cmd("keys", KEYSPACE | READ | SLOW | DANGEROUS, NO_KEYS),
    cmd("dbsize", KEYSPACE | READ | FAST, NO_KEYS),
    cmd("randomkey", KEYSPACE | READ | SLOW, NO_KEYS),
    cmd("flushdb", KEYSPACE | WRITE | SLOW | DANGEROUS, NO_KEYS),
    cmd("flushall", KEYSPACE | WRITE | SLOW | DANGEROUS, NO_KEYS),
    // The connection and the server.
    cmd("ping", FAST | CONNECTION, NO_KEYS),
    cmd("echo", FAST | CONNECTION, NO_KEYS),
    cmd("quit", FAST | CONNECTION, NO_KEYS),
    cmd("select", FAST | CONNECTION, NO_KEYS),
    cmd("auth", FAST | CONNECTION, NO_KEYS),
    cmd("hello", FAST | CONNECTION, NO_KEYS),
    cmd("command", SLOW | CONNECTION, NO_KEYS),
    cmd("info", SLOW | DANGEROUS, NO_KEYS),
    // CLIENT and CONFIG have a line per subcommand, as in Redis, so that rules such as
    // `+config|get` or `-client|kill` work. Subcommands not served yet have lines too, so that
    // rules naming them are accepted as Redis accepts them; calling one is an unknown
    // subcommand.
    cmd("client|id", SLOW | CONNECTION, NO_KEYS),
    cmd("client|info", SLOW | CONNECTION, NO_KEYS),
    cmd("client|getname", SLOW | CONNECTION, NO_KEYS),
    cmd("client|setname", SLOW | CONNECTION, NO_KEYS),
    cmd("client|setinfo", SLOW | CONNECTION, NO_KEYS),
    cmd("client|kill", ADMIN | SLOW | DANGEROUS | CONNECTION, NO_KEYS),
    cmd("client|list", ADMIN | SLOW | DANGEROUS | CONNECTION, NO_KEYS),
    cmd("client|pause", ADMIN | SLOW | DANGEROUS | CONNECTION, NO_KEYS),
    cmd("client|unpause", ADMIN | SLOW | DANGEROUS | CONNECTION, NO_KEYS),
    cmd("client|no-evict", ADMIN | SLOW | DANGEROUS | CONNECTION, NO_KEYS),
    cmd("config|get", ADMIN | SLOW | DANGEROUS, NO_KEYS),
    cmd("config|set", ADMIN | SLOW | DANGEROUS, NO_KEYS),
    cmd("config|resetstat", ADMIN | SLOW | DANGEROUS, NO_KEYS),
    cmd("config|rewrite", ADMIN | SLOW | DANGEROUS, NO_KEYS),
    cmd("readonly", FAST | CONNECTION, NO_KEYS),
    cmd("readwrite", FAST | CONNECTION, NO_KEYS),
    cmd("readmode", FAST | CONNECTION, NO_KEYS),
    cmd("redirect", FAST | CONNECTION, NO_KEYS),
    cmd("conclave", FAST | CONNECTION, NO_KEYS),
    // Users and permissions.
    cmd("acl|cat", SLOW, NO_KEYS),
    cmd("acl|whoami", SLOW, NO_KEYS),
    cmd("acl|genpass", SLOW, NO_KEYS),
    cmd("acl|help", SLOW, NO_KEYS),
    cmd("acl|setuser", ADMIN | SLOW | DANGEROUS, NO_KEYS),
    cmd("acl|deluser", ADMIN | SLOW | DANGEROUS, NO_KEYS),
    cmd("acl|getuser", ADMIN | SLOW | DANGEROUS, NO_KEYS),
    cmd("acl|list", ADMIN | SLOW | DANGEROUS, NO_KEYS),
    cmd("acl|users", ADMIN | SLOW | DANGEROUS, NO_KEYS),
    cmd("acl|dryrun", ADMIN | SLOW | DANGEROUS, NO_KEYS),
    cmd("acl|log", ADMIN | SLOW | DANGEROUS, NO_KEYS),
    cmd("acl|save", ADMIN | SLOW | DANGEROUS, NO_KEYS),
    cmd("acl|load", ADMIN | SLOW | DANGEROUS, NO_KEYS),
];

/// The line that stands for a data command missing from [`COMMANDS`]: in no category and with
/// every argument a key, so only a user with `+@all` and `allkeys` may run it.
pub(crate) const UNLISTED: CommandAcl = cmd("", 0, all(RW));

/// Whether `name` (lowercase) is a command with subcommands, each with its own line.
pub(crate) fn is_container(name: &str) -> bool {
    let prefix_len = name.len() + 1;
    COMMANDS.iter().any(|c| {
        c.name.len() > prefix_len
            && c.name.starts_with(name)
            && c.name.as_bytes()[name.len()] == b'|'
    })
}

/// The line for `name` (a command, or `parent|sub`), compared without case.
pub(crate) fn lookup(name: &str) -> Option<&'static CommandAcl> {
    COMMANDS.iter().find(|c| c.name.eq_ignore_ascii_case(name))
}

/// The line that governs a call: the subcommand's for a container, else the command's.
/// `None` for a command the table does not know (the server answers it as unknown).
pub(crate) fn for_call(args: &[Bytes]) -> Option<&'static CommandAcl> {
    let name = args.first()?;
    // Most calls are plain commands: found without allocating, in one scan.
    if let Some(line) = COMMANDS.iter().find(|c| c.name.as_bytes().eq_ignore_ascii_case(name)) {
        return Some(line);
    }
    let name = std::str::from_utf8(name).ok()?.to_ascii_lowercase();
    if !is_container(&name) {
        return None;
    }
    let sub = std::str::from_utf8(args.get(1)?).ok()?;
    lookup(&format!("{name}|{sub}"))
}

impl CommandAcl {
    /// The command's name without its subcommand (`acl` for `acl|setuser`).
    pub(crate) fn parent(&self) -> &'static str {
        self.name.split('|').next().unwrap_or(self.name)
    }

    /// The keys a call names, with what it does to each.
    pub(crate) fn keys<'a>(&self, args: &'a [Bytes]) -> Vec<(&'a Bytes, Access)> {
        let Keys { first, last, step, access } = self.keys;
        if step == 0 || args.len() <= usize::from(first) {
            return Vec::new();
        }
        let last = match usize::try_from(last) {
            Ok(last) => last.min(args.len() - 1),
            Err(_) => args.len().saturating_sub(last.unsigned_abs().into()),
        };
        // SET ... GET reads the old value too.
        let access =
            if self.name == "set" && args.iter().skip(3).any(|a| a.eq_ignore_ascii_case(b"GET")) {
                Access::ReadWrite
            } else {
                access
            };
        (usize::from(first)..=last).step_by(usize::from(step)).map(|i| (&args[i], access)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<Bytes> {
        line.split(' ').map(|w| Bytes::from(w.to_owned())).collect()
    }

    #[test]
    fn every_data_command_has_a_line() {
        for name in conclave_kv::command_names() {
            assert!(lookup(name).is_some(), "{name} has no ACL line in acl/table.rs");
        }
    }

    #[test]
    fn key_positions_follow_the_specification() {
        let keys = |line: &str| {
            let args = args(line);
            let acl = for_call(&args).unwrap();
            acl.keys(&args)
                .into_iter()
                .map(|(k, a)| (String::from_utf8_lossy(k).into_owned(), a))
                .collect::<Vec<_>>()
        };
        assert_eq!(keys("GET a"), [("a".into(), R)]);
        assert_eq!(keys("set a 1"), [("a".into(), W)]);
        assert_eq!(keys("SET a 1 GET"), [("a".into(), RW)]);
        assert_eq!(keys("MSET a 1 b 2"), [("a".into(), W), ("b".into(), W)]);
        assert_eq!(keys("DEL a b c").len(), 3);
        assert_eq!(keys("PING"), []);
        assert_eq!(for_call(&args("ACL WHOAMI")).unwrap().name, "acl|whoami");
        assert!(for_call(&args("ACL NOSUCH")).is_none());
        assert!(is_container("acl") && !is_container("get"));
        assert_eq!(for_call(&args("client ID")).unwrap().name, "client|id");
        assert_eq!(for_call(&args("CONFIG get maxmemory")).unwrap().name, "config|get");
        assert!(is_container("client") && is_container("config"));
    }
}
