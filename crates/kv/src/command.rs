//! Planning: from a client's arguments to what the server does with them.
//!
//! Every check that depends only on the arguments (arity, syntax, integer arguments, option
//! conflicts, expiry ranges) is made here, at the node the client talks to, so a malformed
//! command never costs a consensus round. What depends on the state (does the key exist, is
//! its value an integer) is decided by `apply` or `query`.

use bytes::Bytes;
use conclave_resp::Frame;

use crate::codec;
use crate::options::{self, ExpiryArg};
use crate::query::{Query, TtlForm};
use crate::reply;
use crate::write::{SetCondition, SetReply, SetTtl, SetWrite, Write};

/// What the server does with a client command.
#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    /// Goes through consensus: propose these bytes; the reply is what
    /// [`KvStore::apply`](crate::KvStore::apply) returns for them.
    Write(Bytes),
    /// Needs a read barrier (ReadIndex or a lease) and then
    /// [`KvStore::query`](crate::KvStore::query).
    Read(Query),
    /// Answered at once, without consensus or state (syntax errors, wrong arity, ...).
    Reply(Frame),
}

/// Plans a data command, so that the server knows whether to propose it, read, or answer at once.
///
/// `args[0]` is the command name, in any case. `now_ms` is the proposing node's wall clock in ms
/// since the Unix epoch: relative expiries (EX, PX, EXPIRE, ...) become absolute deadlines here,
/// at the leader, and the clock travels in the command, so every node applies the same deadline
/// and advances the replicated clock the same way.
///
/// Returns `None` for a command that is not a data command: the server handles PING, HELLO,
/// AUTH, CLIENT, INFO and the like, and answers unknown commands itself.
///
/// ```
/// use bytes::Bytes;
/// use conclave_kv::{plan, KvStore, Plan};
/// use conclave_resp::Frame;
///
/// let args: Vec<Bytes> = ["set", "greeting", "hello", "EX", "60"].map(Bytes::from).to_vec();
/// let Some(Plan::Write(command)) = plan(&args, 1_700_000_000_000) else { panic!() };
/// let mut store = KvStore::new();
/// assert_eq!(store.apply(&command), Frame::ok());
/// assert_eq!(store.next_expiry(), Some(1_700_000_060_000));
///
/// let wrong = plan(&[Bytes::from("GET")], 0);
/// assert_eq!(
///     wrong,
///     Some(Plan::Reply(Frame::error("ERR wrong number of arguments for 'get' command")))
/// );
/// assert_eq!(plan(&[Bytes::from("PING")], 0), None);
/// ```
pub fn plan(args: &[Bytes], now_ms: u64) -> Option<Plan> {
    let name = args.first()?;
    let spec = COMMANDS.iter().find(|spec| name.eq_ignore_ascii_case(spec.name.as_bytes()))?;
    let arity_ok = match usize::try_from(spec.arity) {
        Ok(exact) => args.len() == exact,
        Err(_) => args.len() >= spec.arity.unsigned_abs() as usize,
    };
    if !arity_ok {
        return Some(Plan::Reply(reply::wrong_arity(spec.name)));
    }
    let call = Call { name: spec.name, args, now_ms };
    Some((spec.build)(&call).unwrap_or_else(Plan::Reply))
}

/// The names (lowercase) of every data command [`plan`] handles: the server checks that each
/// has its ACL categories and key positions declared.
pub fn command_names() -> impl Iterator<Item = &'static str> {
    COMMANDS.iter().map(|spec| spec.name)
}

/// A command being planned.
pub(crate) struct Call<'a> {
    /// The command's name, lowercase, as error replies print it.
    pub(crate) name: &'static str,
    /// The arguments, the name first. Invariant: their count passed the arity check.
    pub(crate) args: &'a [Bytes],
    /// The planning node's clock.
    pub(crate) now_ms: u64,
}

impl Call<'_> {
    /// Argument `index` (a cheap reference-counted clone).
    pub(crate) fn arg(&self, index: usize) -> Bytes {
        self.args[index].clone()
    }

    /// Arguments from `index` on.
    fn args_from(&self, index: usize) -> Vec<Bytes> {
        self.args[index..].to_vec()
    }

    /// The plan that proposes `write`, stamped with this node's clock.
    pub(crate) fn write(&self, write: Write) -> Plan {
        Plan::Write(codec::encode(self.now_ms, &write))
    }
}

type Build = fn(&Call<'_>) -> Result<Plan, Frame>;

/// A data command: its name, its arity as Redis's command table gives it (`n`: exactly `n`
/// arguments with the name; `-n`: at least `n`), and how to plan it once the arity is right.
struct Spec {
    name: &'static str,
    arity: i8,
    build: Build,
}

/// Every data command. GET and SET come first: the lookup is a linear scan and they are most of
/// the traffic.
const COMMANDS: &[Spec] = &[
    Spec { name: "get", arity: 2, build: |call| read(Query::Get(call.arg(1))) },
    Spec { name: "set", arity: -3, build: options::set },
    Spec { name: "mget", arity: -2, build: |call| read(Query::MGet(call.args_from(1))) },
    Spec { name: "mset", arity: -3, build: |call| mset(call, false) },
    Spec { name: "del", arity: -2, build: delete },
    Spec { name: "unlink", arity: -2, build: delete },
    Spec { name: "exists", arity: -2, build: |call| read(Query::Exists(call.args_from(1))) },
    Spec { name: "touch", arity: -2, build: |call| read(Query::Exists(call.args_from(1))) },
    Spec { name: "incr", arity: 2, build: |call| incr(call, 1) },
    Spec { name: "decr", arity: 2, build: |call| incr(call, -1) },
    Spec { name: "incrby", arity: 3, build: incrby },
    Spec { name: "decrby", arity: 3, build: decrby },
    Spec { name: "setnx", arity: 3, build: setnx },
    Spec { name: "setex", arity: 4, build: |call| setex(call, ExpiryArg::Ex) },
    Spec { name: "psetex", arity: 4, build: |call| setex(call, ExpiryArg::Px) },
    Spec { name: "getset", arity: 3, build: getset },
    Spec { name: "getdel", arity: 2, build: |call| Ok(call.write(Write::GetDel(call.arg(1)))) },
    Spec { name: "append", arity: 3, build: append },
    Spec { name: "strlen", arity: 2, build: |call| read(Query::StrLen(call.arg(1))) },
    Spec { name: "msetnx", arity: -3, build: |call| mset(call, true) },
    Spec { name: "type", arity: 2, build: |call| read(Query::Type(call.arg(1))) },
    Spec { name: "ttl", arity: 2, build: |call| ttl(call, TtlForm::Seconds) },
    Spec { name: "pttl", arity: 2, build: |call| ttl(call, TtlForm::Milliseconds) },
    Spec { name: "expiretime", arity: 2, build: |call| ttl(call, TtlForm::UnixSeconds) },
    Spec { name: "pexpiretime", arity: 2, build: |call| ttl(call, TtlForm::UnixMilliseconds) },
    Spec { name: "expire", arity: -3, build: |call| options::expire(call, true, true) },
    Spec { name: "pexpire", arity: -3, build: |call| options::expire(call, false, true) },
    Spec { name: "expireat", arity: -3, build: |call| options::expire(call, true, false) },
    Spec { name: "pexpireat", arity: -3, build: |call| options::expire(call, false, false) },
    Spec { name: "persist", arity: 2, build: |call| Ok(call.write(Write::Persist(call.arg(1)))) },
    Spec { name: "scan", arity: -2, build: options::scan },
    Spec { name: "keys", arity: 2, build: |call| read(Query::Keys(call.arg(1))) },
    Spec { name: "dbsize", arity: 1, build: |_| read(Query::DbSize) },
    Spec { name: "randomkey", arity: 1, build: |_| read(Query::RandomKey) },
    Spec { name: "flushdb", arity: -1, build: options::flush },
    Spec { name: "flushall", arity: -1, build: options::flush },
];

fn read(query: Query) -> Result<Plan, Frame> {
    Ok(Plan::Read(query))
}

fn ttl(call: &Call<'_>, form: TtlForm) -> Result<Plan, Frame> {
    read(Query::Ttl { key: call.arg(1), form })
}

fn delete(call: &Call<'_>) -> Result<Plan, Frame> {
    Ok(call.write(Write::Delete(call.args_from(1))))
}

fn append(call: &Call<'_>) -> Result<Plan, Frame> {
    Ok(call.write(Write::Append { key: call.arg(1), suffix: call.arg(2) }))
}

fn incr(call: &Call<'_>, delta: i64) -> Result<Plan, Frame> {
    Ok(call.write(Write::IncrBy { key: call.arg(1), delta }))
}

fn incrby(call: &Call<'_>) -> Result<Plan, Frame> {
    incr(call, options::integer(&call.args[2])?)
}

fn decrby(call: &Call<'_>) -> Result<Plan, Frame> {
    let decrement = options::integer(&call.args[2])?;
    // Negating i64::MIN overflows; Redis refuses it with its own wording.
    let delta = decrement.checked_neg().ok_or_else(reply::decrement_overflow)?;
    incr(call, delta)
}

fn set_write(call: &Call<'_>, value: usize, condition: SetCondition, ttl: SetTtl) -> SetWrite {
    SetWrite { key: call.arg(1), value: call.arg(value), condition, ttl, reply: SetReply::Ok }
}

fn setnx(call: &Call<'_>) -> Result<Plan, Frame> {
    let set = set_write(call, 2, SetCondition::IfAbsent, SetTtl::Clear);
    Ok(call.write(Write::Set(SetWrite { reply: SetReply::Flag, ..set })))
}

fn getset(call: &Call<'_>) -> Result<Plan, Frame> {
    let set = set_write(call, 2, SetCondition::Always, SetTtl::Clear);
    Ok(call.write(Write::Set(SetWrite { reply: SetReply::OldValue, ..set })))
}

/// SETEX and PSETEX: `key amount value`.
fn setex(call: &Call<'_>, unit: ExpiryArg) -> Result<Plan, Frame> {
    let deadline = options::set_deadline(call, unit, &call.args[2])?;
    let set = set_write(call, 3, SetCondition::Always, SetTtl::At(deadline));
    Ok(call.write(Write::Set(set)))
}

fn mset(call: &Call<'_>, only_if_none_exist: bool) -> Result<Plan, Frame> {
    let pairs = call.args[1..].chunks_exact(2);
    // A dangling key without its value is an arity error in Redis, not a syntax error.
    if !pairs.remainder().is_empty() {
        return Err(reply::wrong_arity(call.name));
    }
    let pairs: Vec<(Bytes, Bytes)> = pairs.map(|pair| (pair[0].clone(), pair[1].clone())).collect();
    let write = if only_if_none_exist { Write::MSetNx(pairs) } else { Write::MSet(pairs) };
    Ok(call.write(write))
}
