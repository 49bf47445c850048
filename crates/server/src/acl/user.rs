//! One user: whether it may log in, with which passwords, and what it may run on which keys;
//! the rules of `ACL SETUSER` that change it, and the permission check every command passes.
//!
//! A user is kept as the rules that describe it, in order, so that `ACL LIST` shows what was
//! asked for and a snapshot stores a user as its `ACL LIST` line: restoring replays the line on
//! a new user and gets the same user back (the tests check the round trip).

use std::collections::BTreeSet;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::table::{self, Access, CommandAcl, CATEGORY_NAMES};

/// A user, as every node holds it in the replicated user table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct User {
    /// The user's name.
    pub(crate) name: String,
    /// `on`: may authenticate; `off`: may not, and its connections are closed.
    pub(crate) enabled: bool,
    /// `nopass`: any password authenticates.
    pub(crate) nopass: bool,
    /// SHA-256 of each password, lowercase hex: the plaintext is never kept.
    pub(crate) passwords: BTreeSet<String>,
    /// `skip-sanitize-payload` rather than Redis's default `sanitize-payload`. Nothing here
    /// restores payloads, but Redis lists the flag for every user, and tools that read
    /// `ACL LIST` or `ACL GETUSER` (and Redis's own tests) expect it.
    skip_sanitize_payload: bool,
    /// `allkeys` (`~*`): every key, read and written.
    all_keys: bool,
    /// The key patterns, when not `all_keys`.
    key_patterns: Vec<KeyPattern>,
    /// `allchannels` (`&*`).
    all_channels: bool,
    /// Pub/sub channel patterns, kept for when pub/sub exists.
    channels: Vec<String>,
    /// The command rules after the implicit `-@all`, in order; the last that matches a command
    /// decides. Starts with `+@all` when every command was allowed.
    commands: Vec<CommandRule>,
}

/// `~pattern` (read and write), `%R~pattern` or `%W~pattern`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct KeyPattern {
    pattern: String,
    read: bool,
    write: bool,
}

/// `+target` or `-target`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct CommandRule {
    allow: bool,
    target: Target,
}

/// What a command rule names.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    /// `@all`: every command, the ones added later included.
    All,
    /// `@category`, as its bit.
    Category(table::Categories),
    /// A command, or `command|subcommand`, lowercase.
    Command(String),
}

/// Why `ACL SETUSER` refused a rule: Redis's texts, after
/// `ERR Error in ACL SETUSER modifier '<rule>': `.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RuleError {
    /// Not a rule.
    #[error("Syntax error")]
    Syntax,
    /// `+name` or `+@name` names nothing known.
    #[error("Unknown command or category name in ACL")]
    Unknown,
    /// A key pattern after `allkeys`.
    #[error("Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns")]
    AfterAllKeys,
    /// A channel pattern after `allchannels`.
    #[error("Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels")]
    AfterAllChannels,
    /// `!hash` or `<password>` for a password the user does not have.
    #[error("The password you are trying to remove from the user does not exist")]
    NoSuchPassword,
    /// `+command|subcommand|arg`: Redis allows a first argument of a plain command only.
    #[error("Allowing first-arg of a subcommand is not supported")]
    FirstArgOfSubcommand,
    /// `#hash` that is not a SHA-256 in lowercase hex.
    #[error("The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters")]
    BadHash,
}

/// Why a command may not run: Redis's `NOPERM` cases.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Denied {
    /// The command (or subcommand) is not allowed.
    Command,
    /// This key, one of the call's, matches none of the user's patterns for what the
    /// command does to it.
    Key(Bytes),
}

/// SHA-256 of a password, lowercase hex: what `>password` stores and AUTH compares.
pub(crate) fn hash_password(password: &[u8]) -> String {
    Sha256::digest(password).iter().map(|b| format!("{b:02x}")).collect()
}

impl User {
    /// A user as `ACL SETUSER` creates it: off, no password, no keys, no commands.
    pub(crate) fn new(name: &str) -> User {
        User {
            name: name.to_owned(),
            enabled: false,
            nopass: false,
            passwords: BTreeSet::new(),
            skip_sanitize_payload: false,
            all_keys: false,
            key_patterns: Vec::new(),
            all_channels: false,
            channels: Vec::new(),
            commands: Vec::new(),
        }
    }

    /// The `default` user before anyone changes it: on, no password, everything allowed, as in
    /// Redis (`requirepass` then gives it a password on the node that sets it).
    pub(crate) fn default_user() -> User {
        let mut user = User::new("default");
        for rule in ["on", "nopass", "allkeys", "allchannels", "allcommands"] {
            user.apply_rule(rule, true).expect("the default user's rules are valid");
        }
        user
    }

    /// Applies one rule of `ACL SETUSER`. `strict` also refuses commands this release does not
    /// know; it is set where a rule is proposed, and unset where the log is applied, so that a
    /// node never disagrees with the leader that accepted the rule.
    pub(crate) fn apply_rule(&mut self, rule: &str, strict: bool) -> Result<(), RuleError> {
        match rule.to_ascii_lowercase().as_str() {
            "on" => self.enabled = true,
            "off" => self.enabled = false,
            "nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            "resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            "allkeys" => self.allow_all_keys(),
            "resetkeys" => {
                self.all_keys = false;
                self.key_patterns.clear();
            }
            "allchannels" => {
                self.all_channels = true;
                self.channels.clear();
            }
            "resetchannels" => {
                self.all_channels = false;
                self.channels.clear();
            }
            "allcommands" => self.push_command(true, Target::All),
            "nocommands" => self.push_command(false, Target::All),
            "reset" => {
                let name = std::mem::take(&mut self.name);
                *self = User::new(&name);
            }
            // Kept and listed as Redis does; payload sanitisation does not apply here.
            "sanitize-payload" => self.skip_sanitize_payload = false,
            "skip-sanitize-payload" => self.skip_sanitize_payload = true,
            _ => return self.apply_prefixed(rule, strict),
        }
        Ok(())
    }

    fn apply_prefixed(&mut self, rule: &str, strict: bool) -> Result<(), RuleError> {
        let mut chars = rule.chars();
        let Some(first) = chars.next() else { return Err(RuleError::Syntax) };
        let rest = chars.as_str();
        match first {
            '>' => {
                self.passwords.insert(hash_password(rest.as_bytes()));
                self.nopass = false;
            }
            '<' => {
                if !self.passwords.remove(&hash_password(rest.as_bytes())) {
                    return Err(RuleError::NoSuchPassword);
                }
            }
            '#' => {
                if !is_password_hash(rest) {
                    return Err(RuleError::BadHash);
                }
                self.passwords.insert(rest.to_owned());
                self.nopass = false;
            }
            '!' => {
                if !is_password_hash(rest) {
                    return Err(RuleError::BadHash);
                }
                if !self.passwords.remove(rest) {
                    return Err(RuleError::NoSuchPassword);
                }
            }
            '~' => self.add_key_pattern(rest, true, true)?,
            '%' => {
                let (flags, pattern) = rest.split_once('~').ok_or(RuleError::Syntax)?;
                let read = flags.contains(['r', 'R']);
                let write = flags.contains(['w', 'W']);
                if flags.is_empty() || flags.chars().any(|c| !"rRwW".contains(c)) {
                    return Err(RuleError::Syntax);
                }
                self.add_key_pattern(pattern, read, write)?;
            }
            '&' => {
                if rest.contains(char::is_whitespace) {
                    return Err(RuleError::Syntax);
                }
                if self.all_channels {
                    return Err(RuleError::AfterAllChannels);
                }
                if rest == "*" {
                    self.all_channels = true;
                    self.channels.clear();
                } else if !self.channels.iter().any(|c| c == rest) {
                    self.channels.push(rest.to_owned());
                }
            }
            '+' | '-' => {
                let first_arg_of = rest.rsplit_once('|').map(|(head, _)| head);
                if strict
                    && first == '+'
                    && first_arg_of.is_some_and(|h| h.contains('|') && table::lookup(h).is_some())
                {
                    return Err(RuleError::FirstArgOfSubcommand);
                }
                let target = parse_target(rest, strict)?;
                self.push_command(first == '+', target);
            }
            _ => return Err(RuleError::Syntax),
        }
        Ok(())
    }

    fn allow_all_keys(&mut self) {
        self.all_keys = true;
        self.key_patterns.clear();
    }

    fn add_key_pattern(&mut self, pattern: &str, read: bool, write: bool) -> Result<(), RuleError> {
        if pattern.contains(char::is_whitespace) {
            return Err(RuleError::Syntax);
        }
        if self.all_keys {
            return Err(RuleError::AfterAllKeys);
        }
        if pattern == "*" && read && write {
            self.allow_all_keys();
            return Ok(());
        }
        let new = KeyPattern { pattern: pattern.to_owned(), read, write };
        if !self.key_patterns.contains(&new) {
            self.key_patterns.push(new);
        }
        Ok(())
    }

    /// Adds a command rule. A rule overrides every earlier one on the same target, which is
    /// then dropped; `+@all` and `-@all` override everything before them.
    fn push_command(&mut self, allow: bool, target: Target) {
        if target == Target::All {
            self.commands.clear();
            if allow {
                self.commands.push(CommandRule { allow, target });
            }
            return;
        }
        self.commands.retain(|rule| rule.target != target);
        self.commands.push(CommandRule { allow, target });
    }

    /// Whether the user may run the command `acl` describes, keys aside.
    pub(crate) fn may_run(&self, acl: &CommandAcl) -> bool {
        let mut allowed = false;
        for rule in &self.commands {
            let matches = match &rule.target {
                Target::All => true,
                Target::Category(bit) => acl.categories & bit != 0,
                Target::Command(name) => name == acl.name || name == acl.parent(),
            };
            if matches {
                allowed = rule.allow;
            }
        }
        allowed
    }

    /// Whether the user may run everything on every key (`+@all allkeys`, as `default`): then
    /// no call needs looking up, which keeps the check off the common path.
    pub(crate) fn is_unrestricted(&self) -> bool {
        self.all_keys
            && matches!(
                self.commands.as_slice(),
                [CommandRule { allow: true, target: Target::All }]
            )
    }

    /// Whether the user may do `access` to `key`.
    pub(crate) fn may_access(&self, key: &[u8], access: Access) -> bool {
        if self.all_keys {
            return true;
        }
        let (read, write) = match access {
            Access::Touch => (false, false),
            Access::Read => (true, false),
            Access::Write => (false, true),
            Access::ReadWrite => (true, true),
        };
        self.key_patterns.iter().any(|p| {
            (p.read || !read)
                && (p.write || !write)
                && conclave_kv::glob_match(p.pattern.as_bytes(), key)
        })
    }

    /// The permission check of a call (`args[0]` the command), as Redis makes it before
    /// executing: the command first, then each key.
    pub(crate) fn check(&self, acl: &CommandAcl, args: &[Bytes]) -> Result<(), Denied> {
        if !self.may_run(acl) {
            return Err(Denied::Command);
        }
        match acl.keys(args).into_iter().find(|(key, access)| !self.may_access(key, *access)) {
            None => Ok(()),
            Some((key, _)) => Err(Denied::Key(key.clone())),
        }
    }

    /// The flags `ACL GETUSER` and `ACL LIST` show, in Redis's order.
    pub(crate) fn flags(&self) -> Vec<&'static str> {
        let mut flags = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            flags.push("nopass");
        }
        flags.push(if self.skip_sanitize_payload {
            "skip-sanitize-payload"
        } else {
            "sanitize-payload"
        });
        flags
    }

    /// The command rules as `ACL LIST` and `ACL GETUSER` show them: `+@all ...` or `-@all ...`.
    pub(crate) fn commands_text(&self) -> String {
        let mut rules = self.commands.iter().peekable();
        let mut out = match rules.peek() {
            Some(CommandRule { allow: true, target: Target::All }) => {
                rules.next();
                String::from("+@all")
            }
            _ => String::from("-@all"),
        };
        for rule in rules {
            out.push(' ');
            out.push(if rule.allow { '+' } else { '-' });
            match &rule.target {
                Target::All => out.push_str("@all"),
                Target::Category(bit) => {
                    out.push('@');
                    out.push_str(CATEGORY_NAMES[bit.trailing_zeros() as usize]);
                }
                Target::Command(name) => out.push_str(name),
            }
        }
        out
    }

    /// The key patterns as `ACL GETUSER` shows them.
    pub(crate) fn keys_text(&self) -> String {
        if self.all_keys {
            return "~*".into();
        }
        let pattern = |p: &KeyPattern| match (p.read, p.write) {
            (true, false) => format!("%R~{}", p.pattern),
            (false, true) => format!("%W~{}", p.pattern),
            _ => format!("~{}", p.pattern),
        };
        self.key_patterns.iter().map(pattern).collect::<Vec<_>>().join(" ")
    }

    /// The channel patterns as `ACL GETUSER` shows them.
    pub(crate) fn channels_text(&self) -> String {
        if self.all_channels {
            return "&*".into();
        }
        self.channels.iter().map(|c| format!("&{c}")).collect::<Vec<_>>().join(" ")
    }

    /// The rules that rebuild this user from [`User::new`], in `ACL LIST`'s order.
    pub(crate) fn rules(&self) -> Vec<String> {
        let mut rules: Vec<String> = self.flags().into_iter().map(str::to_owned).collect();
        rules.extend(self.passwords.iter().map(|h| format!("#{h}")));
        let keys = self.keys_text();
        rules.extend(keys.split(' ').filter(|k| !k.is_empty()).map(str::to_owned));
        if !self.all_channels {
            rules.push("resetchannels".into());
        }
        let channels = self.channels_text();
        rules.extend(channels.split(' ').filter(|c| !c.is_empty()).map(str::to_owned));
        rules.extend(self.commands_text().split(' ').map(str::to_owned));
        rules
    }

    /// The user's `ACL LIST` line.
    pub(crate) fn list_line(&self) -> String {
        format!("user {} {}", self.name, self.rules().join(" "))
    }
}

/// Whether `text` is a password hash as `#hash` and `!hash` take it: SHA-256 in lowercase hex.
fn is_password_hash(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The target of a `+`/`-` rule: `@all`, `@category`, `command` or `command|subcommand`.
fn parse_target(text: &str, strict: bool) -> Result<Target, RuleError> {
    if let Some(category) = text.strip_prefix('@') {
        if category.eq_ignore_ascii_case("all") {
            return Ok(Target::All);
        }
        return table::category(category).map(Target::Category).ok_or(RuleError::Unknown);
    }
    let name = text.to_ascii_lowercase();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(RuleError::Syntax);
    }
    let known = match name.split_once('|') {
        Some((parent, _)) => table::is_container(parent) && table::lookup(&name).is_some(),
        None => table::lookup(&name).is_some() || table::is_container(&name),
    };
    if strict && !known {
        return Err(RuleError::Unknown);
    }
    Ok(Target::Command(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(rules: &str) -> Result<User, RuleError> {
        let mut user = User::new("u");
        for rule in rules.split(' ').filter(|r| !r.is_empty()) {
            user.apply_rule(rule, true)?;
        }
        Ok(user)
    }

    fn call(line: &str) -> Vec<Bytes> {
        line.split(' ').map(|w| Bytes::from(w.to_owned())).collect()
    }

    fn check(user: &User, line: &str) -> Result<(), Denied> {
        let args = call(line);
        user.check(table::for_call(&args).unwrap(), &args)
    }

    fn key(name: &str) -> Result<(), Denied> {
        Err(Denied::Key(Bytes::from(name.to_owned())))
    }

    #[test]
    fn the_default_user_may_do_everything() {
        let default = User::default_user();
        assert_eq!(default.list_line(), "user default on nopass sanitize-payload ~* &* +@all");
        assert_eq!(check(&default, "FLUSHALL"), Ok(()));
        assert_eq!(check(&default, "ACL SETUSER x"), Ok(()));
        assert!(default.is_unrestricted());
        assert!(!user("on ~* +@all -keys").unwrap().is_unrestricted());
        assert!(!user("on %R~* +@all").unwrap().is_unrestricted());
    }

    #[test]
    fn commands_categories_and_subcommands() {
        let u = user("on >p +@read -strlen +acl|whoami").unwrap();
        assert_eq!(check(&u, "GET k"), key("k"), "no key pattern yet");
        let u = user("on ~* +@read -strlen +acl|whoami").unwrap();
        assert_eq!(check(&u, "GET k"), Ok(()));
        assert_eq!(check(&u, "STRLEN k"), Err(Denied::Command));
        assert_eq!(check(&u, "SET k v"), Err(Denied::Command));
        assert_eq!(check(&u, "ACL WHOAMI"), Ok(()));
        assert_eq!(check(&u, "ACL SETUSER x"), Err(Denied::Command));
        let u = user("on ~* +@all -@dangerous").unwrap();
        assert_eq!(check(&u, "FLUSHDB"), Err(Denied::Command));
        assert_eq!(check(&u, "SET k v"), Ok(()));
        let u = user("on ~* -@all +acl").unwrap();
        assert_eq!(check(&u, "ACL LIST"), Ok(()));
        // Subcommands of CLIENT and CONFIG, as Redis's rules name them.
        let u = user("on ~* +@all -client|kill -config|set").unwrap();
        assert_eq!(check(&u, "CLIENT ID"), Ok(()));
        assert_eq!(check(&u, "CLIENT KILL x"), Err(Denied::Command));
        assert_eq!(check(&u, "CONFIG GET maxmemory"), Ok(()));
        assert_eq!(check(&u, "CONFIG SET maxmemory 1"), Err(Denied::Command));
        let u = user("on ~* -@all +client|id +config|get").unwrap();
        assert_eq!(check(&u, "client id"), Ok(()));
        assert_eq!(check(&u, "CLIENT INFO"), Err(Denied::Command));
        assert_eq!(check(&u, "CONFIG GET *"), Ok(()));
        let u = user("on ~* -@all +@connection").unwrap();
        assert_eq!(check(&u, "CLIENT SETNAME n"), Ok(()));
        assert_eq!(check(&u, "CONFIG GET *"), Err(Denied::Command));
    }

    #[test]
    fn key_patterns_with_read_and_write_permissions() {
        let u = user("on +@all ~app:* %R~ro:* %W~wo:*").unwrap();
        assert_eq!(check(&u, "GET app:1"), Ok(()));
        assert_eq!(check(&u, "GET other"), key("other"));
        assert_eq!(check(&u, "GET ro:1"), Ok(()));
        assert_eq!(check(&u, "SET ro:1 v"), key("ro:1"));
        assert_eq!(check(&u, "SET wo:1 v"), Ok(()));
        assert_eq!(check(&u, "SET wo:1 v GET"), key("wo:1"));
        assert_eq!(check(&u, "GET wo:1"), key("wo:1"));
        assert_eq!(check(&u, "EXISTS ro:1 wo:1"), Ok(()), "existence needs any pattern");
        assert_eq!(check(&u, "TYPE wo:1"), Ok(()));
        assert_eq!(check(&u, "STRLEN wo:1"), Ok(()));
        for expiry in ["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"] {
            assert_eq!(check(&u, &format!("{expiry} ro:1")), Ok(()));
            assert_eq!(check(&u, &format!("{expiry} wo:1")), key("wo:1"), "{expiry} reads");
        }
        assert_eq!(check(&u, "MSET app:1 v ro:1 v"), key("ro:1"));
        assert_eq!(check(&u, "DEL app:1 app:2"), Ok(()));
    }

    #[test]
    fn passwords_are_kept_hashed() {
        let mut u = user("on >secret").unwrap();
        let hash = hash_password(b"secret");
        assert_eq!(hash.len(), 64);
        assert!(u.passwords.contains(&hash));
        assert!(u.list_line().contains(&format!("#{hash}")) && !u.list_line().contains("secret"));
        assert_eq!(u.apply_rule("<wrong", true), Err(RuleError::NoSuchPassword));
        u.apply_rule(&format!("!{hash}"), true).unwrap();
        assert!(u.passwords.is_empty());
        assert_eq!(u.apply_rule("#ABC", true), Err(RuleError::BadHash));
        assert_eq!(u.apply_rule("!ABC", true), Err(RuleError::BadHash), "checked as Redis does");
        assert_eq!(
            u.apply_rule(&format!("!{}", hash.to_uppercase()), true),
            Err(RuleError::BadHash)
        );
        u.apply_rule("nopass", true).unwrap();
        assert!(u.nopass);
        u.apply_rule(">x", true).unwrap();
        assert!(!u.nopass, "a password ends nopass");
    }

    #[test]
    fn flags_include_payload_sanitisation_as_in_redis_7() {
        let u = user("").unwrap();
        assert_eq!(u.flags(), ["off", "sanitize-payload"]);
        assert_eq!(u.list_line(), "user u off sanitize-payload resetchannels -@all");
        let u = user("on nopass skip-sanitize-payload").unwrap();
        assert_eq!(u.flags(), ["on", "nopass", "skip-sanitize-payload"]);
        let u = user("skip-sanitize-payload sanitize-payload").unwrap();
        assert_eq!(u.flags(), ["off", "sanitize-payload"]);
        assert_eq!(
            user("skip-sanitize-payload reset").unwrap().flags(),
            ["off", "sanitize-payload"]
        );
    }

    #[test]
    fn refusals_use_redis_texts() {
        assert_eq!(user("bogus"), Err(RuleError::Syntax));
        assert_eq!(user("+nosuch"), Err(RuleError::Unknown));
        assert_eq!(user("+@nosuch"), Err(RuleError::Unknown));
        assert_eq!(user("+get|x"), Err(RuleError::Unknown));
        assert_eq!(user("+config|get|appendonly"), Err(RuleError::FirstArgOfSubcommand));
        assert_eq!(user("+acl|setuser|x"), Err(RuleError::FirstArgOfSubcommand));
        assert_eq!(user("-config|get|appendonly"), Err(RuleError::Unknown));
        assert_eq!(user("+config|nosuch|x"), Err(RuleError::Unknown));
        assert_eq!(user("%X~a"), Err(RuleError::Syntax));
        assert_eq!(user("allkeys ~a"), Err(RuleError::AfterAllKeys));
        assert_eq!(user("&* &a"), Err(RuleError::AfterAllChannels));
        assert!(
            User::new("u").apply_rule("+nosuch", false).is_ok(),
            "lenient when applying the log"
        );
    }

    #[test]
    fn the_list_line_rebuilds_the_same_user() {
        let cases = [
            "on >a >b ~app:* %R~ro:* %W~wo:* &news +@read -get +acl|whoami",
            "off nopass allkeys allchannels +@all -@dangerous +flushdb",
            "on resetchannels nocommands",
            "on skip-sanitize-payload nopass",
            "skip-sanitize-payload reset",
            "reset",
        ];
        for rules in cases {
            let u = user(rules).unwrap();
            let rebuilt = user(&u.rules().join(" ")).unwrap();
            assert_eq!(rebuilt, u, "{rules} -> {}", u.list_line());
        }
        let u = user("on ~a +get -@all +set").unwrap();
        assert_eq!(u.list_line(), "user u on sanitize-payload ~a resetchannels -@all +set");
    }
}
