//! The `ACL` subcommands that only read the user table (`SETUSER` and `DELUSER` are writes,
//! planned in `mod.rs`). They read the local replica, like AUTH.

use bytes::Bytes;
use conclave_resp::Frame;

use super::table::{self, CATEGORY_NAMES, COMMANDS};
use super::user::Denied;
use crate::session::Session;
use crate::shared::now_ms;

fn bulk(text: impl Into<String>) -> Frame {
    Frame::Bulk(Bytes::from(text.into()))
}

fn arity(sub: &str) -> Frame {
    super::arity(&format!("acl|{sub}"))
}

/// Executes `ACL <subcommand> ...` (`args[0]` is `ACL`).
pub(crate) fn execute(session: &mut Session, args: &[Bytes]) -> Frame {
    let Some(sub) = args.get(1).map(|s| String::from_utf8_lossy(s).to_ascii_lowercase()) else {
        return super::arity("acl");
    };
    let users =
        |f: &dyn Fn(&super::Users) -> Frame| session.shared.handle.with_state(|m| f(&m.users));
    match (sub.as_str(), args.len()) {
        ("whoami", 2) => bulk(session.user.name.clone()),
        ("users", 2) => users(&|u| Frame::Array(u.iter().map(|user| bulk(user.name.clone())).collect())),
        ("list", 2) => users(&|u| Frame::Array(u.iter().map(|user| bulk(user.list_line())).collect())),
        ("getuser", 3) => {
            let name = String::from_utf8_lossy(&args[2]).into_owned();
            users(&|u| u.get(&name).map_or(Frame::Null, getuser))
        }
        ("cat", 2) => Frame::Array(CATEGORY_NAMES.iter().map(|c| bulk(*c)).collect()),
        ("cat", 3) => {
            let name = String::from_utf8_lossy(&args[2]);
            match table::category(&name) {
                Some(bit) => Frame::Array(
                    COMMANDS.iter().filter(|c| c.categories & bit != 0).map(|c| bulk(c.name)).collect(),
                ),
                None => Frame::error(format!("ERR Unknown category '{name}'")),
            }
        }
        ("genpass", 2 | 3) => genpass(args.get(2)),
        ("dryrun", n) if n >= 4 => dryrun(session, args),
        ("save" | "load", 2) => Frame::error(
            // Redis's opening words, which clients and Redis's tests match on, then why.
            "ERR This Redis instance is not configured to use an ACL file: Conclave replicates users through the log and keeps them in every node's WAL and snapshots, so ACL SETUSER alone is enough",
        ),
        ("log", 2) => session.shared.acl_log.reply(10, now_ms()),
        ("log", 3) if args[2].eq_ignore_ascii_case(b"RESET") => {
            session.shared.acl_log.reset();
            Frame::ok()
        }
        ("log", 3) => match std::str::from_utf8(&args[2]).ok().and_then(|n| n.parse::<usize>().ok()) {
            Some(count) => session.shared.acl_log.reply(count, now_ms()),
            None => Frame::error("ERR value is out of range, must be positive"),
        },
        ("help", 2) => Frame::Array(HELP.iter().map(|line| Frame::Simple(Bytes::from_static(line.as_bytes()))).collect()),
        // Redis declares these variadic, so extra arguments pass its arity check and meet the
        // subcommand's own refusal instead.
        ("cat" | "genpass" | "log", _) if args.len() > 3 => Frame::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try ACL HELP.",
            String::from_utf8_lossy(&args[1])
        )),
        ("whoami" | "users" | "list" | "getuser" | "cat" | "genpass" | "dryrun" | "save" | "load" | "help" | "log", _) => {
            arity(&sub)
        }
        _ => Frame::error(format!(
            "ERR unknown subcommand '{}'. Try ACL HELP.",
            String::from_utf8_lossy(&args[1])
        )),
    }
}

const HELP: [&str; 12] = [
    "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CAT [<category>]",
    "DELUSER <username> [<username> ...]",
    "DRYRUN <username> <command> [<arg> ...]",
    "GETUSER <username>",
    "LIST",
    "USERS",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "WHOAMI",
    "GENPASS [<bits>]",
    "LOG [<count> | RESET]",
    "HELP",
];

/// `ACL GETUSER`'s map, as Redis 7 shapes it.
fn getuser(user: &super::User) -> Frame {
    let strings = |items: Vec<String>| Frame::Array(items.into_iter().map(bulk).collect());
    Frame::Map(vec![
        // A set in RESP3, as Redis sends it.
        (bulk("flags"), Frame::Set(user.flags().into_iter().map(bulk).collect())),
        (bulk("passwords"), strings(user.passwords.iter().cloned().collect())),
        (bulk("commands"), bulk(user.commands_text())),
        (bulk("keys"), bulk(user.keys_text())),
        (bulk("channels"), bulk(user.channels_text())),
        (bulk("selectors"), Frame::Array(Vec::new())),
    ])
}

/// `ACL GENPASS [bits]`: random bits from the operating system, in hex.
fn genpass(bits: Option<&Bytes>) -> Frame {
    let bits = match bits.map(|b| std::str::from_utf8(b).ok().and_then(|s| s.parse::<u32>().ok())) {
        None => 256,
        Some(Some(bits)) if (1..=4096).contains(&bits) => bits,
        Some(_) => {
            return Frame::error(
                "ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096",
            )
        }
    };
    let chars = bits.div_ceil(4) as usize;
    let mut random = vec![0u8; chars.div_ceil(2)];
    if let Err(error) = getrandom::fill(&mut random) {
        return Frame::error(format!(
            "ERR the operating system's random generator failed: {error}"
        ));
    }
    let mut hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    hex.truncate(chars);
    bulk(hex)
}

/// `ACL DRYRUN user command args...`: whether the user could run the call, without running it.
fn dryrun(session: &Session, args: &[Bytes]) -> Frame {
    let name = String::from_utf8_lossy(&args[2]).into_owned();
    let Some(user) = session.shared.handle.with_state(|m| m.users.get(&name).cloned()) else {
        return Frame::error(format!("ERR User '{name}' not found"));
    };
    let call = &args[3..];
    let Some(line) = table::for_call(call) else {
        // Named as the client typed it, as Redis does.
        let command = String::from_utf8_lossy(&call[0]);
        return Frame::error(format!("ERR Command '{command}' not found"));
    };
    match user.check(line, call) {
        Ok(()) => Frame::ok(),
        Err(Denied::Command) => {
            bulk(format!("User {name} has no permissions to run the '{}' command", line.name))
        }
        Err(Denied::Key(key)) => bulk(format!(
            "User {name} has no permissions to access the '{}' key",
            String::from_utf8_lossy(&key)
        )),
    }
}
