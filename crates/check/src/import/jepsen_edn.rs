//! Jepsen/Knossos histories as EDN maps, one per line, for key-value operations:
//!
//! ```text
//! {:process 0, :type :invoke, :f :put, :key "k", :value "v"}
//! {:process 0, :type :ok, :f :put, :key "k", :value "v"}
//! {:process 1, :type :invoke, :f :get, :value ["k" nil]}
//! {:process 1, :type :ok, :f :get, :value ["k" "v"]}
//! ```
//!
//! `:process` is an integer (other processes, like `:nemesis`, are skipped); `:type` is
//! `:invoke`, `:ok`, `:fail` or `:info`; `:f` is a keyword or string. The key is `:key`, or, when
//! there is none and `f` is `get`, `put`, `append`, `read` or `write`, the first element of a
//! two-element `:value` vector (Jepsen's independent-key tuple `[k v]`), whose second element is
//! then the value. `:time` (nanoseconds) is kept; other entries are ignored. Blank lines and `;`
//! comments are skipped; any other line must be such a map.

use crate::error::Error;
use crate::history::{Event, EventKind, History, Meta};
use crate::import::edn::{parse_edn, Edn};
use crate::value::Value;

/// The operations whose `[k v]` value is read as a key and a value.
const TUPLE_FS: [&str; 5] = ["get", "put", "append", "read", "write"];

/// Reads EDN maps, one per line; the history's meta line names the `kv` model.
pub fn parse_jepsen_edn(text: &str) -> Result<History, Error> {
    let mut events = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with(';') {
            continue;
        }
        let bad = |reason: String| Error::Syntax { line, reason };
        let edn = parse_edn(trimmed).map_err(bad)?;
        if !matches!(edn, Edn::Map(_)) {
            return Err(bad("expected a map {:process .. :type .. :f ..}".into()));
        }
        if let Some(event) = event_of(&edn).map_err(bad)? {
            events.push(Event { line, ..event });
        }
    }
    Ok(History { meta: Some(Meta { model: Some("kv".into()), ..Meta::default() }), events })
}

fn event_of(edn: &Edn) -> Result<Option<Event>, String> {
    let process = match edn.get("process") {
        Some(Edn::Int(p)) => u64::try_from(*p).map_err(|_| format!("process {p} is negative"))?,
        Some(Edn::Keyword(_)) => return Ok(None),
        Some(other) => return Err(format!("process {other:?} is not an integer")),
        None => return Err("no :process".into()),
    };
    let kind = match edn.get("type") {
        Some(Edn::Keyword(k)) if k == "invoke" => EventKind::Invoke,
        Some(Edn::Keyword(k)) if k == "ok" => EventKind::Ok,
        Some(Edn::Keyword(k)) if k == "fail" => EventKind::Fail,
        Some(Edn::Keyword(k)) if k == "info" => EventKind::Info,
        Some(other) => return Err(format!(":type {other:?} is not :invoke, :ok, :fail or :info")),
        None => return Err("no :type".into()),
    };
    let f = match edn.get("f") {
        Some(Edn::Keyword(f) | Edn::Str(f)) => f.clone(),
        Some(other) => return Err(format!(":f {other:?} is not a keyword")),
        None => return Err("no :f".into()),
    };
    let mut value = edn.get("value").map_or(Value::Nil, Edn::to_value);
    let mut key = edn.get("key").map(Edn::to_value);
    if key.is_none() && TUPLE_FS.contains(&f.as_str()) {
        if let Value::List(items) = &value {
            if let [k, v] = items.as_slice() {
                key = Some(k.clone());
                value = v.clone();
            }
        }
    }
    let time = match edn.get("time") {
        None | Some(Edn::Nil) => None,
        Some(Edn::Int(t)) => u64::try_from(*t).ok(),
        Some(other) => return Err(format!(":time {other:?} is not an integer")),
    };
    let mut event = Event::invoke(process, &f).with_value(value);
    event.kind = kind;
    event.key = key;
    event.time = time;
    Ok(Some(event))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_maps_keys_and_tuples() {
        let text = "; a comment\n\
            {:process 0, :type :invoke, :f :put, :key \"k\", :value \"v\", :time 10}\n\
            \n\
            {:process :nemesis, :type :info, :f :start, :value nil}\n\
            {:process 1, :type :invoke, :f :get, :value [\"k\" nil]}\n\
            {:process 1 :type :ok :f :get :value [\"k\" 5]}\n";
        let h = parse_jepsen_edn(text).unwrap();
        assert_eq!(h.meta.unwrap().model.as_deref(), Some("kv"));
        assert_eq!(h.events.len(), 3);
        let e = &h.events[0];
        assert_eq!((e.line, e.process, e.kind, e.f.as_str()), (2, 0, EventKind::Invoke, "put"));
        assert_eq!(
            (e.key.clone(), e.value.clone(), e.time),
            (Some("k".into()), "v".into(), Some(10))
        );
        let e = &h.events[2];
        assert_eq!(
            (e.line, e.kind, e.key.clone(), e.value.clone()),
            (6, EventKind::Ok, Some("k".into()), Value::Int(5))
        );
    }

    #[test]
    fn malformed_lines_name_their_line() {
        for (bad, needle) in [
            ("{:process 0 :type :invoke :f :get", "missing"),
            ("[1 2]", "expected a map"),
            ("{:type :invoke :f :get}", "no :process"),
            ("{:process 0 :type :begin :f :get}", ":type"),
            ("{:process 0 :type :ok}", "no :f"),
            ("{:process -1 :type :ok :f :get}", "negative"),
        ] {
            let text = format!("{{:process 0 :type :invoke :f :get :key 1}}\n{bad}\n");
            let err = parse_jepsen_edn(&text).unwrap_err();
            assert_eq!(err.line(), Some(2), "{err}");
            assert!(err.to_string().contains(needle), "{bad}: {err}");
        }
    }
}
