//! The replicated user table: what `ACL SETUSER` and `ACL DELUSER` change through the log, the
//! same on every node, and how it travels in log entries and snapshots.
//!
//! ```text
//! entry  = 0xAC  op:u8 (1 = SETUSER, 2 = DELUSER)  count:u32le  string{count}
//! string = len:u32le bytes
//! image  = "CACL" version:u8 (= 1) count:u32le (name:string line:string){count}
//! ```
//!
//! SETUSER's strings are the user's name then its rules; DELUSER's are the names. A password in
//! a rule is always a `#hash` by the time it is proposed: the node the client talks to hashes
//! `>password` first, so plaintext never reaches the log or a snapshot. The first byte 0xAC
//! tells an ACL entry from a key-value one, whose first byte is the key-value format (1).
//! An image holds each user as its `ACL LIST` rules, replayed on restore.

use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};
use conclave_resp::Frame;

use super::user::{hash_password, User};
use crate::token::equal_in_constant_time;

/// The first byte of every ACL log entry.
pub(crate) const ENTRY_TAG: u8 = 0xAC;
const OP_SETUSER: u8 = 1;
const OP_DELUSER: u8 = 2;
const IMAGE_MAGIC: &[u8; 4] = b"CACL";
const IMAGE_VERSION: u8 = 1;

/// Every user, by name; `default` is always there.
#[derive(Clone, Debug)]
pub struct Users {
    users: BTreeMap<String, User>,
    /// How many times each name was deleted (or replaced by a snapshot) on this node: a
    /// connection remembers its user's count when it logs in, and closes when it changes, even
    /// if a user of the same name exists again by the time it looks. Local to the node, and so
    /// not part of the table's equality, image or replies.
    deletions: BTreeMap<String, u64>,
}

/// Two tables are equal when they hold the same users (the local deletion counts aside).
impl PartialEq for Users {
    fn eq(&self, other: &Users) -> bool {
        self.users == other.users
    }
}

impl Eq for Users {}

impl Default for Users {
    fn default() -> Users {
        let default = User::default_user();
        Users {
            users: BTreeMap::from([(default.name.clone(), default)]),
            deletions: BTreeMap::new(),
        }
    }
}

/// Why an ACL entry or image could not be read (a damaged entry is refused the same way on
/// every node).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AclImageError {
    /// The bytes end early or hold a length past their end.
    #[error("the ACL data is truncated")]
    Truncated,
    /// An unknown tag, operation, magic or version.
    #[error("the ACL data has an unknown {0}")]
    Unknown(&'static str),
    /// A name or rule that is not UTF-8, or a rule that does not apply.
    #[error("the ACL data holds an invalid user: {0}")]
    Invalid(String),
}

/// The log entry of `ACL SETUSER name rules...`.
pub(crate) fn setuser_entry(name: &str, rules: &[String]) -> Bytes {
    let mut strings = vec![name];
    strings.extend(rules.iter().map(String::as_str));
    entry(OP_SETUSER, &strings)
}

/// The log entry of `ACL DELUSER names...`.
pub(crate) fn deluser_entry(names: &[String]) -> Bytes {
    entry(OP_DELUSER, &names.iter().map(String::as_str).collect::<Vec<_>>())
}

fn entry(op: u8, strings: &[&str]) -> Bytes {
    let mut out = BytesMut::new();
    out.put_u8(ENTRY_TAG);
    out.put_u8(op);
    put_strings(&mut out, strings);
    out.freeze()
}

fn put_strings(out: &mut BytesMut, strings: &[&str]) {
    out.put_u32_le(strings.len() as u32);
    for s in strings {
        out.put_u32_le(s.len() as u32);
        out.put_slice(s.as_bytes());
    }
}

/// Reads `count:u32le string{count}` from the front of `input`.
fn read_strings(input: &mut &[u8]) -> Result<Vec<String>, AclImageError> {
    let count = read_u32(input)?;
    // Each string takes at least its 4-byte length: a count beyond that is damage.
    if count as usize > input.len() / 4 {
        return Err(AclImageError::Truncated);
    }
    (0..count).map(|_| read_string(input)).collect()
}

fn read_u32(input: &mut &[u8]) -> Result<u32, AclImageError> {
    let (head, rest) = input.split_first_chunk::<4>().ok_or(AclImageError::Truncated)?;
    *input = rest;
    Ok(u32::from_le_bytes(*head))
}

fn read_string(input: &mut &[u8]) -> Result<String, AclImageError> {
    let len = read_u32(input)? as usize;
    if input.len() < len {
        return Err(AclImageError::Truncated);
    }
    let (text, rest) = input.split_at(len);
    *input = rest;
    String::from_utf8(text.to_vec()).map_err(|_| AclImageError::Invalid("not UTF-8".into()))
}

impl Users {
    /// The user named `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&User> {
        self.users.get(name)
    }

    /// Which incarnation of `name` this node holds: it changes each time the user is deleted,
    /// so a connection can tell its user from a new one of the same name.
    pub(crate) fn incarnation(&self, name: &str) -> u64 {
        self.deletions.get(name).copied().unwrap_or(0)
    }

    /// Carries the deletion counts over a snapshot restore from the table it replaces, counting
    /// every user that the snapshot removed or changed as deleted: the log entries between
    /// them are not seen, so a change cannot be told from a deletion and re-creation.
    pub(crate) fn succeed(&mut self, previous: &Users) {
        self.deletions = previous.deletions.clone();
        for (name, user) in &previous.users {
            if self.users.get(name) != Some(user) {
                *self.deletions.entry(name.clone()).or_default() += 1;
            }
        }
    }

    /// Every user, by name.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &User> {
        self.users.values()
    }

    /// Whether `password` authenticates `name`. On a node with `requirepass` set, that password
    /// authenticates `default` too, and `default` is never passwordless there (see
    /// docs/SECURITY.md).
    pub(crate) fn authenticate(
        &self,
        name: &str,
        password: &[u8],
        requirepass: Option<&str>,
    ) -> bool {
        let Some(user) = self.users.get(name).filter(|u| u.enabled) else { return false };
        // Hashes are compared, never the passwords, each in constant time and all of them
        // every time, so the time taken says nothing about the stored hashes either.
        let hash = hash_password(password);
        let required = match requirepass {
            Some(required) if name == "default" => Some(hash_password(required.as_bytes())),
            _ => None,
        };
        let matched = required.iter().chain(&user.passwords).fold(false, |found, stored| {
            found | equal_in_constant_time(stored.as_bytes(), hash.as_bytes())
        });
        matched || (required.is_none() && user.nopass)
    }

    /// Whether a new connection is authenticated as `default` without AUTH: `default` is on
    /// and needs no password.
    pub(crate) fn default_is_open(&self, requirepass: Option<&str>) -> bool {
        requirepass.is_none() && self.users.get("default").is_some_and(|u| u.enabled && u.nopass)
    }

    /// An enabled user that anyone may log in as without knowing a password, if any (what
    /// protected mode refuses to expose). `requirepass` is the `default` user's password.
    pub(crate) fn passwordless_user(&self, requirepass: Option<&str>) -> Option<&str> {
        let open =
            |u: &&User| u.enabled && u.nopass && !(u.name == "default" && requirepass.is_some());
        self.users.values().find(open).map(|u| u.name.as_str())
    }

    /// `ACL SETUSER`: applies `rules` in order to `name` (created if absent), all or nothing.
    pub(crate) fn set_user(
        &mut self,
        name: &str,
        rules: &[String],
        strict: bool,
    ) -> Result<(), String> {
        let mut user = self.users.get(name).cloned().unwrap_or_else(|| User::new(name));
        for rule in rules {
            user.apply_rule(rule, strict)
                .map_err(|e| format!("ERR Error in ACL SETUSER modifier '{rule}': {e}"))?;
        }
        self.users.insert(name.to_owned(), user);
        Ok(())
    }

    /// Applies an ACL log entry and returns the reply for the client that proposed it. A
    /// damaged entry changes nothing and gets an error reply, the same on every node.
    pub(crate) fn apply(&mut self, command: &[u8]) -> Frame {
        let mut input = command;
        let (Some(&ENTRY_TAG), Some(&op)) = (input.first(), input.get(1)) else {
            return Frame::error("ERR undecodable ACL log entry");
        };
        input = &input[2..];
        let strings = match read_strings(&mut input) {
            Ok(strings) if input.is_empty() => strings,
            Ok(_) => return Frame::error("ERR undecodable ACL log entry: trailing bytes"),
            Err(error) => return Frame::error(format!("ERR undecodable ACL log entry: {error}")),
        };
        match (op, strings.split_first()) {
            (OP_SETUSER, Some((name, rules))) => match self.set_user(name, rules, false) {
                Ok(()) => Frame::ok(),
                Err(error) => Frame::error(error),
            },
            (OP_DELUSER, _) => {
                if strings.iter().any(|n| n == "default") {
                    return Frame::error("ERR The 'default' user cannot be removed");
                }
                let mut removed = 0;
                for name in &strings {
                    if self.users.remove(name.as_str()).is_some() {
                        *self.deletions.entry(name.clone()).or_default() += 1;
                        removed += 1;
                    }
                }
                Frame::Integer(removed)
            }
            _ => Frame::error("ERR undecodable ACL log entry: unknown operation"),
        }
    }

    /// The table as a versioned image, for snapshots: canonical (users in name order, each as
    /// its rules), so equal tables give equal bytes.
    pub(crate) fn image(&self) -> Bytes {
        let mut out = BytesMut::new();
        out.put_slice(IMAGE_MAGIC);
        out.put_u8(IMAGE_VERSION);
        out.put_u32_le(self.users.len() as u32);
        for user in self.users.values() {
            put_strings(&mut out, &[&user.name, &user.rules().join(" ")]);
        }
        out.freeze()
    }

    /// Rebuilds the table from [`Users::image`]; anything damaged is an error, never a panic.
    pub(crate) fn restore(image: &[u8]) -> Result<Users, AclImageError> {
        let mut input = image;
        let header = input.split_first_chunk::<5>().ok_or(AclImageError::Truncated)?;
        if &header.0[..4] != IMAGE_MAGIC {
            return Err(AclImageError::Unknown("magic"));
        }
        if header.0[4] != IMAGE_VERSION {
            return Err(AclImageError::Unknown("version"));
        }
        input = header.1;
        let count = read_u32(&mut input)?;
        let mut users = BTreeMap::new();
        for _ in 0..count {
            let pair = read_strings(&mut input)?;
            let [name, line] = <[String; 2]>::try_from(pair)
                .map_err(|_| AclImageError::Invalid("a user is not a name and a line".into()))?;
            let mut user = User::new(&name);
            for rule in line.split(' ').filter(|r| !r.is_empty()) {
                user.apply_rule(rule, false)
                    .map_err(|e| AclImageError::Invalid(format!("{name}: '{rule}': {e}")))?;
            }
            users.insert(name, user);
        }
        if !input.is_empty() {
            return Err(AclImageError::Invalid("trailing bytes".into()));
        }
        if !users.contains_key("default") {
            return Err(AclImageError::Invalid("no default user".into()));
        }
        Ok(Users { users, deletions: BTreeMap::new() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Vec<String> {
        text.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn entries_apply_identically_and_the_image_round_trips() {
        let mut a = Users::default();
        let hash = hash_password(b"pw");
        let set = setuser_entry("alice", &rules(&format!("on #{hash} ~a:* +@read")));
        assert_eq!(a.apply(&set), Frame::ok());
        assert!(a.authenticate("alice", b"pw", None));
        assert!(!a.authenticate("alice", b"nope", None));
        let mut b = Users::default();
        b.apply(&set);
        assert_eq!(a, b);
        assert_eq!(a.image(), b.image());
        assert_eq!(Users::restore(&a.image()).unwrap(), a);
        assert_eq!(a.apply(&deluser_entry(&["alice".into(), "ghost".into()])), Frame::Integer(1));
        assert_eq!(
            a.apply(&deluser_entry(&["default".into()])),
            Frame::error("ERR The 'default' user cannot be removed")
        );
    }

    #[test]
    fn deleting_a_user_gives_its_name_a_new_incarnation() {
        let mut users = Users::default();
        let set = setuser_entry("eve", &rules("on nopass"));
        users.apply(&set);
        assert_eq!(users.incarnation("eve"), 0);
        users.apply(&setuser_entry("eve", &rules("+@all")));
        assert_eq!(users.incarnation("eve"), 0, "a change is not a deletion");
        users.apply(&deluser_entry(&["eve".into()]));
        users.apply(&set);
        assert_eq!(users.incarnation("eve"), 1, "the same name, another user");
        // A snapshot that changed or removed users counts as deleting them.
        let mut before = users.clone();
        before.apply(&setuser_entry("mallory", &rules("on nopass")));
        let mut restored = Users::restore(&users.image()).unwrap();
        restored.succeed(&before);
        assert_eq!(restored.incarnation("eve"), 1);
        assert_eq!(restored.incarnation("mallory"), 1);
        assert_eq!(restored.incarnation("default"), 0);
    }

    #[test]
    fn a_failing_rule_changes_nothing() {
        let mut users = Users::default();
        let absent = hash_password(b"never set");
        let reply = users.apply(&setuser_entry("bob", &rules(&format!("on ~x !{absent}"))));
        assert_eq!(
            reply,
            Frame::error(format!("ERR Error in ACL SETUSER modifier '!{absent}': The password you are trying to remove from the user does not exist"))
        );
        assert!(users.get("bob").is_none());
    }

    #[test]
    fn requirepass_is_the_default_users_password() {
        let users = Users::default();
        assert!(users.default_is_open(None));
        assert!(!users.default_is_open(Some("pw")));
        assert!(users.authenticate("default", b"pw", Some("pw")));
        assert!(
            !users.authenticate("default", b"other", Some("pw")),
            "nopass gives way to requirepass"
        );
        assert!(users.authenticate("default", b"anything", None));
        let mut two = users.clone();
        two.set_user("carol", &["on".into(), ">one".into(), ">two".into()], true).unwrap();
        assert!(two.authenticate("carol", b"one", None) && two.authenticate("carol", b"two", None));
        assert!(
            !two.authenticate("carol", b"three", None) && !two.authenticate("carol", b"", None)
        );
        assert!(!two.authenticate("nobody", b"one", None) && !two.authenticate("", b"", None));
        assert_eq!(users.passwordless_user(None), Some("default"));
        assert_eq!(users.passwordless_user(Some("pw")), None);
        let mut closed = users.clone();
        closed.set_user("default", &["resetpass".into(), ">pw".into()], true).unwrap();
        closed.set_user("guest", &["off".into(), "nopass".into()], true).unwrap();
        assert_eq!(closed.passwordless_user(None), None, "a disabled user is no way in");
    }

    #[test]
    fn damaged_bytes_are_errors_not_panics() {
        let users = Users::default();
        let image = users.image();
        for cut in 0..image.len() {
            assert!(Users::restore(&image[..cut]).is_err(), "cut at {cut}");
        }
        let entry = setuser_entry("x", &rules("on"));
        let mut copy = users.clone();
        for cut in 0..entry.len() {
            assert!(matches!(copy.apply(&entry[..cut]), Frame::Error(_)), "cut at {cut}");
        }
        assert_eq!(copy, users);
    }
}
