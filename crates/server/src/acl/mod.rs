//! Users and ACLs in Redis's shape: `AUTH user pass`, `ACL SETUSER|DELUSER|...`, command
//! categories and key patterns, and the `default` user.
//!
//! The user table is replicated: `ACL SETUSER` and `ACL DELUSER` are writes through the Raft
//! log, applied by every node to its [`Users`] (beside the key-value store in the state
//! machine), persisted in the WAL and carried in snapshots. The node the client talks to hashes
//! `>password` into `#sha256` before proposing, so plaintext never reaches the log or disk.
//! AUTH and the permission check read the local replica, so they work on followers.
//!
//! - `table.rs`: every command's categories and key arguments, one line each.
//! - `user.rs`: one user, its rules and its permission check.
//! - `users.rs`: the replicated table, its log entries and its snapshot image.
//! - `command.rs`: the `ACL` subcommands that only read.
//! - `log.rs`: `ACL LOG`, this node's recent refusals.

mod command;
mod log;
mod table;
mod user;
mod users;

use bytes::Bytes;
use conclave_kv::Plan;
use conclave_resp::Frame;

pub(crate) use command::execute;
pub use log::AclLog;
pub(crate) use log::{Reason, Refusal};
pub(crate) use user::{hash_password, Denied, User};
pub(crate) use users::ENTRY_TAG;
pub use users::{AclImageError, Users};

/// Plans a call that may change state: `ACL SETUSER` and `ACL DELUSER` become user-table
/// writes, everything else is the key-value store's [`conclave_kv::plan`]. `None` for a command
/// that is neither (the session answers it).
pub(crate) fn plan_write(args: &[Bytes], now_ms: u64) -> Option<Plan> {
    let is_acl = args.first().is_some_and(|a| a.eq_ignore_ascii_case(b"ACL"));
    let sub = args.get(1).map(|a| a.to_ascii_lowercase());
    match (is_acl, sub.as_deref()) {
        (true, Some(b"setuser")) => Some(plan_setuser(args).unwrap_or_else(Plan::Reply)),
        (true, Some(b"deluser")) => Some(plan_deluser(args).unwrap_or_else(Plan::Reply)),
        _ => conclave_kv::plan(args, now_ms),
    }
}

fn arity(name: &str) -> Frame {
    Frame::error(format!("ERR wrong number of arguments for '{name}' command"))
}

fn text(arg: &Bytes) -> Result<String, Frame> {
    String::from_utf8(arg.to_vec()).map_err(|_| Frame::error("ERR Syntax error"))
}

/// `ACL SETUSER`'s arguments with `>password` turned into `#sha256` and `<password` into
/// `!sha256`; any other call unchanged.
pub(crate) fn hash_passwords(mut args: Vec<Bytes>) -> Vec<Bytes> {
    let is_setuser = args.get(1).is_some_and(|a| a.eq_ignore_ascii_case(b"SETUSER"));
    if is_setuser && args[0].eq_ignore_ascii_case(b"ACL") {
        for arg in args.iter_mut().skip(3) {
            if let Some(hashed) = hashed_rule(arg) {
                *arg = Bytes::from(hashed);
            }
        }
    }
    args
}

/// The rule `>password` or `<password` with the password hashed, or `None` for another rule.
fn hashed_rule(rule: &[u8]) -> Option<String> {
    match rule.first() {
        Some(b'>') => Some(format!("#{}", hash_password(&rule[1..]))),
        Some(b'<') => Some(format!("!{}", hash_password(&rule[1..]))),
        _ => None,
    }
}

/// `ACL SETUSER name rules...`: checks the rules (strictly, on a new user, so unknown commands
/// are refused here, before the log), turns passwords into hashes and proposes the rest.
fn plan_setuser(args: &[Bytes]) -> Result<Plan, Frame> {
    if args.len() < 3 {
        return Err(arity("acl|setuser"));
    }
    let name = text(&args[2])?;
    // Any whitespace, as Redis's isspace(): a newline in a name would forge lines of ACL LIST,
    // CLIENT INFO and the ACL LOG's client-info.
    if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == '\0') {
        return Err(Frame::error("ERR Usernames can't contain spaces or null characters"));
    }
    let mut rules = Vec::with_capacity(args.len() - 3);
    let mut scratch = User::new(&name);
    for arg in &args[3..] {
        // Hashed here too (the session already did): the plaintext must not reach the log.
        let rule = match hashed_rule(arg) {
            Some(hashed) => hashed,
            None => text(arg)?,
        };
        match scratch.apply_rule(&rule, true) {
            // Whether the user holds the password is for the log's order to decide.
            Ok(()) | Err(user::RuleError::NoSuchPassword) => {}
            Err(error) => {
                let shown = String::from_utf8_lossy(arg);
                return Err(Frame::error(format!(
                    "ERR Error in ACL SETUSER modifier '{shown}': {error}"
                )));
            }
        }
        rules.push(rule);
    }
    Ok(Plan::Write(users::setuser_entry(&name, &rules)))
}

/// `ACL DELUSER names...`.
fn plan_deluser(args: &[Bytes]) -> Result<Plan, Frame> {
    if args.len() < 3 {
        return Err(arity("acl|deluser"));
    }
    let names = args[2..].iter().map(text).collect::<Result<Vec<_>, _>>()?;
    if names.iter().any(|n| n == "default") {
        return Err(Frame::error("ERR The 'default' user cannot be removed"));
    }
    Ok(Plan::Write(users::deluser_entry(&names)))
}

/// The permission check a call passes before it runs, with Redis's `NOPERM` replies. A call
/// the table does not know is let through only when it is not a data command (the session then
/// answers it as unknown); a data command without a line needs `+@all` and `allkeys`.
pub(crate) fn check(user: &User, args: &[Bytes]) -> Result<(), (Frame, Reason, Bytes)> {
    if user.is_unrestricted() {
        return Ok(());
    }
    let line = match table::for_call(args) {
        Some(line) => line,
        None => {
            let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
            if !conclave_kv::command_names().any(|known| known == name) {
                return Ok(());
            }
            &table::UNLISTED
        }
    };
    user.check(line, args).map_err(|denied| {
        let (reason, object) = match &denied {
            Denied::Command if line.name.is_empty() => (Reason::Command, args[0].clone()),
            Denied::Command => (Reason::Command, Bytes::from_static(line.name.as_bytes())),
            Denied::Key(key) => (Reason::Key, key.clone()),
        };
        (denial(user, line.name, &args[0], denied), reason, object)
    })
}

/// The `NOPERM` reply for a denied call.
fn denial(user: &User, line_name: &str, name: &Bytes, denied: Denied) -> Frame {
    match denied {
        Denied::Command => {
            let shown = if line_name.is_empty() {
                String::from_utf8_lossy(name).to_ascii_lowercase()
            } else {
                line_name.to_owned()
            };
            Frame::error(format!(
                "NOPERM User {} has no permissions to run the '{shown}' command",
                user.name
            ))
        }
        Denied::Key(_) => Frame::error("NOPERM No permissions to access a key"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_with_whitespace_or_nul_are_refused() {
        for name in ["a b", "a\tb", "a\nuser=default", "a\rb", "a\u{b}b", "a\0b", ""] {
            let args: Vec<Bytes> = ["ACL", "SETUSER", name, "on"].map(Bytes::from).to_vec();
            let refused = Frame::error("ERR Usernames can't contain spaces or null characters");
            assert!(
                matches!(plan_write(&args, 0), Some(Plan::Reply(f)) if f == refused),
                "{name:?}"
            );
        }
        let args: Vec<Bytes> = ["ACL", "SETUSER", "a-b", "on"].map(Bytes::from).to_vec();
        assert!(matches!(plan_write(&args, 0), Some(Plan::Write(_))));
    }

    #[test]
    fn passwords_are_hashed_before_anything_else_sees_them() {
        let args: Vec<Bytes> =
            ["acl", "setuser", ">x", ">pw", "<old", "~k"].map(Bytes::from).to_vec();
        let hashed = hash_passwords(args.clone());
        assert_eq!(hashed[2], ">x", "the user's name is not a rule");
        assert_eq!(hashed[3], Bytes::from(format!("#{}", hash_password(b"pw"))));
        assert_eq!(hashed[4], Bytes::from(format!("!{}", hash_password(b"old"))));
        assert_eq!(hashed[5], "~k");
        let other: Vec<Bytes> = ["SET", ">k", ">v"].map(Bytes::from).to_vec();
        assert_eq!(hash_passwords(other.clone()), other);
    }
}
