//! A simulator run as a file: the replay files `conclave sim --shrink` and `--record` write and
//! `conclave sim --replay` reads.
//!
//! A file holds everything that decides a run (docs/TESTING.md, "Replay files"): the protocol's
//! settings (Raft timings and any injected bugs), the simulation options (seed included), the
//! fault schedule, and, for the reader's information, the violation the run ended with when it
//! was written. Each fault of the schedule is the simulator's own serde form of a `ScheduledFault`
//! (one fault per line, for people to read and edit); the rest is written here, keys in a fixed
//! order. Reading is strict: an unknown key is an error, since a misspelt one would otherwise
//! silently fall back to its default and replay some other run.

use std::fmt::Write as _;

use anyhow::{anyhow, bail, Context, Result};
use conclave_sim::{FaultSet, Options, ScheduledFault, Violation};
use serde_json::{Map, Value};

/// The format's version; a reader refuses files of another.
const VERSION: u64 = 1;

/// The Raft settings a run used, as `conclave sim` flags set them.
#[derive(Clone, Debug, PartialEq)]
pub struct RaftSettings {
    /// Election timeout in ticks.
    pub election_ticks: u32,
    /// Ticks between heartbeats.
    pub heartbeat_ticks: u32,
    /// Pre-vote on.
    pub pre_vote: bool,
    /// Check-quorum (and the follower lease) on.
    pub check_quorum: bool,
    /// Most entries per AppendEntries.
    pub append_entries_max: usize,
    /// Most AppendEntries in flight per follower.
    pub inflight_max: usize,
    /// Election-timeout ticks a leader's lease leaves for clock drift.
    pub lease_margin_ticks: u32,
    /// Deliberate bugs, by their `--bug` names (empty for the real protocol).
    pub bugs: Vec<String>,
}

/// The violation a file's run ended with when it was written: a note for the reader, and what
/// a replay is compared with.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedViolation {
    /// The invariant's name.
    pub invariant: String,
    /// When it broke, in virtual µs.
    pub time_us: u64,
    /// What was seen.
    pub detail: String,
}

impl From<&Violation> for RecordedViolation {
    fn from(violation: &Violation) -> RecordedViolation {
        RecordedViolation {
            invariant: violation.invariant.name().to_string(),
            time_us: violation.time_us,
            detail: violation.detail.clone(),
        }
    }
}

/// One run, complete: protocol settings, options, fault schedule (inside the options).
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// The protocol's settings.
    pub raft: RaftSettings,
    /// The simulation options; `fault_schedule` is the file's `schedule` (absent: the random
    /// nemesis).
    pub options: Options,
    /// The violation the run ended with when written, if any.
    pub violation: Option<RecordedViolation>,
}

impl Scenario {
    /// The file's text.
    pub fn to_json(&self) -> String {
        let mut out = format!("{{\n  \"conclave_replay\": {VERSION},\n");
        let _ = writeln!(out, "  \"protocol\": {},", raft_json(&self.raft));
        let _ = writeln!(out, "  \"options\": {},", options_json(&self.options));
        if let Some(schedule) = &self.options.fault_schedule {
            out.push_str("  \"schedule\": [");
            for (position, fault) in schedule.iter().enumerate() {
                out.push_str(if position == 0 { "\n    " } else { ",\n    " });
                // Serializing plain data to a string cannot fail.
                out.push_str(&serde_json::to_string(fault).expect("a fault serializes"));
            }
            out.push_str(if schedule.is_empty() { "],\n" } else { "\n  ],\n" });
        }
        match &self.violation {
            Some(violation) => {
                let detail = Value::String(violation.detail.clone());
                let _ = writeln!(
                    out,
                    "  \"violation\": {{\"invariant\": \"{}\", \"time_us\": {}, \"detail\": {detail}}}",
                    violation.invariant, violation.time_us
                );
            }
            None => out.push_str("  \"violation\": null\n"),
        }
        out.push_str("}\n");
        out
    }

    /// Reads a file's text. Keys left out take the defaults of `conclave sim`'s flags.
    pub fn from_json(text: &str) -> Result<Scenario> {
        let value: Value = serde_json::from_str(text).context("not valid JSON")?;
        let mut file = Object::new(&value, "the file")?;
        match file.u64("conclave_replay")? {
            Some(VERSION) => {}
            Some(other) => bail!("replay format version {other}; this binary reads {VERSION}"),
            None => bail!("not a replay file: `conclave_replay` (the format version) is missing"),
        }
        let raft = match file.take("protocol") {
            Some(protocol) => raft_from_json(&protocol)?,
            None => raft_from_json(&Value::Object(Map::new()))?,
        };
        let mut options = match file.take("options") {
            Some(options) => options_from_json(&options)?,
            None => Options::default(),
        };
        if let Some(schedule) = file.take("schedule") {
            let faults = schedule.as_array().ok_or_else(|| anyhow!("`schedule` is not a list"))?;
            let faults: Result<Vec<ScheduledFault>> = faults
                .iter()
                .enumerate()
                .map(|(index, fault)| {
                    serde_json::from_value::<ScheduledFault>(fault.clone())
                        .with_context(|| format!("schedule[{index}]"))
                })
                .collect();
            options.fault_schedule = Some(faults?);
        }
        let violation = match file.take("violation") {
            None | Some(Value::Null) => None,
            Some(violation) => Some(violation_from_json(&violation)?),
        };
        file.finish()?;
        Ok(Scenario { raft, options, violation })
    }
}

fn raft_json(raft: &RaftSettings) -> String {
    let bugs: Vec<String> =
        raft.bugs.iter().map(|bug| Value::String(bug.clone()).to_string()).collect();
    format!(
        "{{\"name\": \"raft\", \"election_ticks\": {}, \"heartbeat_ticks\": {}, \"pre_vote\": {}, \
         \"check_quorum\": {}, \"append_entries_max\": {}, \"inflight_max\": {}, \
         \"lease_margin_ticks\": {}, \"bugs\": [{}]}}",
        raft.election_ticks,
        raft.heartbeat_ticks,
        raft.pre_vote,
        raft.check_quorum,
        raft.append_entries_max,
        raft.inflight_max,
        raft.lease_margin_ticks,
        bugs.join(", ")
    )
}

fn raft_from_json(value: &Value) -> Result<RaftSettings> {
    let mut protocol = Object::new(value, "protocol")?;
    if let Some(name) = protocol.str("name")? {
        if name != "raft" {
            bail!("protocol `{name}`: this binary simulates raft only");
        }
    }
    let bugs = match protocol.take("bugs") {
        None => Vec::new(),
        Some(bugs) => bugs
            .as_array()
            .and_then(|bugs| bugs.iter().map(|bug| bug.as_str().map(str::to_string)).collect())
            .ok_or_else(|| anyhow!("protocol.bugs is not a list of names"))?,
    };
    let settings = RaftSettings {
        election_ticks: protocol.u32("election_ticks")?.unwrap_or(10),
        heartbeat_ticks: protocol.u32("heartbeat_ticks")?.unwrap_or(1),
        pre_vote: protocol.bool("pre_vote")?.unwrap_or(true),
        check_quorum: protocol.bool("check_quorum")?.unwrap_or(true),
        append_entries_max: protocol.usize("append_entries_max")?.unwrap_or(256),
        inflight_max: protocol.usize("inflight_max")?.unwrap_or(64),
        lease_margin_ticks: protocol.u32("lease_margin_ticks")?.unwrap_or(2),
        bugs,
    };
    protocol.finish()?;
    Ok(settings)
}

/// The options on one indented line per field (the schedule goes separately).
fn options_json(options: &Options) -> String {
    let fields = [
        ("seed", options.seed.to_string()),
        ("nodes", options.nodes.to_string()),
        ("spare_nodes", options.spares().to_string()),
        ("clients", options.clients.to_string()),
        ("ops", options.ops.to_string()),
        ("read_ratio", options.read_ratio.to_string()),
        ("faults", format!("\"{}\"", options.faults)),
        ("tick_us", options.tick_us.to_string()),
        ("clock_drift", options.clock_drift.to_string()),
        ("client_timeout_us", options.client_timeout_us.to_string()),
        ("drop_probability", options.drop_probability.to_string()),
        ("duplicate_probability", options.duplicate_probability.to_string()),
        ("latency_min_us", options.latency_min_us.to_string()),
        ("latency_max_us", options.latency_max_us.to_string()),
        ("disk_latency_min_us", options.disk_latency_min_us.to_string()),
        ("disk_latency_max_us", options.disk_latency_max_us.to_string()),
        ("check_commit_durability", options.check_commit_durability.to_string()),
        ("ops_time_max_us", options.ops_time_max_us.to_string()),
        ("converge_time_max_us", options.converge_time_max_us.to_string()),
        ("recent_trace_len", options.recent_trace_len.to_string()),
        ("history_check_steps", options.history_check_steps.to_string()),
    ];
    let lines: Vec<String> =
        fields.iter().map(|(key, value)| format!("    \"{key}\": {value}")).collect();
    format!("{{\n{}\n  }}", lines.join(",\n"))
}

fn options_from_json(value: &Value) -> Result<Options> {
    let mut object = Object::new(value, "options")?;
    let defaults = Options::default();
    let faults = match object.str("faults")? {
        Some(text) => text.parse::<FaultSet>().context("options.faults")?,
        None => defaults.faults,
    };
    let options = Options {
        seed: object.u64("seed")?.unwrap_or(defaults.seed),
        nodes: object.usize("nodes")?.unwrap_or(defaults.nodes),
        spare_nodes: object.usize("spare_nodes")?,
        clients: object.usize("clients")?.unwrap_or(defaults.clients),
        ops: object.u64("ops")?.unwrap_or(defaults.ops),
        read_ratio: object.f64("read_ratio")?.unwrap_or(defaults.read_ratio),
        faults,
        tick_us: object.u64("tick_us")?.unwrap_or(defaults.tick_us),
        clock_drift: object.f64("clock_drift")?.unwrap_or(defaults.clock_drift),
        client_timeout_us: object.u64("client_timeout_us")?.unwrap_or(defaults.client_timeout_us),
        drop_probability: object.f64("drop_probability")?.unwrap_or(defaults.drop_probability),
        duplicate_probability: object
            .f64("duplicate_probability")?
            .unwrap_or(defaults.duplicate_probability),
        latency_min_us: object.u64("latency_min_us")?.unwrap_or(defaults.latency_min_us),
        latency_max_us: object.u64("latency_max_us")?.unwrap_or(defaults.latency_max_us),
        disk_latency_min_us: object
            .u64("disk_latency_min_us")?
            .unwrap_or(defaults.disk_latency_min_us),
        disk_latency_max_us: object
            .u64("disk_latency_max_us")?
            .unwrap_or(defaults.disk_latency_max_us),
        check_commit_durability: object
            .bool("check_commit_durability")?
            .unwrap_or(defaults.check_commit_durability),
        ops_time_max_us: object.u64("ops_time_max_us")?.unwrap_or(defaults.ops_time_max_us),
        converge_time_max_us: object
            .u64("converge_time_max_us")?
            .unwrap_or(defaults.converge_time_max_us),
        recent_trace_len: object.usize("recent_trace_len")?.unwrap_or(defaults.recent_trace_len),
        history_check_steps: object
            .u64("history_check_steps")?
            .unwrap_or(defaults.history_check_steps),
        fault_schedule: None,
    };
    object.finish()?;
    Ok(options)
}

fn violation_from_json(value: &Value) -> Result<RecordedViolation> {
    let mut object = Object::new(value, "violation")?;
    let violation = RecordedViolation {
        invariant: object.str("invariant")?.unwrap_or_default(),
        time_us: object.u64("time_us")?.unwrap_or(0),
        detail: object.str("detail")?.unwrap_or_default(),
    };
    object.finish()?;
    Ok(violation)
}

/// A JSON object being read: typed getters that remove what they read, so that whatever is
/// left at [`finish`](Object::finish) is an unknown key.
struct Object {
    fields: Map<String, Value>,
    what: &'static str,
}

impl Object {
    fn new(value: &Value, what: &'static str) -> Result<Object> {
        match value {
            Value::Object(fields) => Ok(Object { fields: fields.clone(), what }),
            _ => bail!("{what} is not a JSON object"),
        }
    }

    fn take(&mut self, key: &str) -> Option<Value> {
        self.fields.remove(key)
    }

    fn u64(&mut self, key: &str) -> Result<Option<u64>> {
        let what = self.what;
        self.take(key)
            .map(|value| {
                value.as_u64().ok_or_else(|| anyhow!("{what}: `{key}` is not a whole number"))
            })
            .transpose()
    }

    fn u32(&mut self, key: &str) -> Result<Option<u32>> {
        let what = self.what;
        self.u64(key)?
            .map(|value| u32::try_from(value).map_err(|_| anyhow!("{what}: `{key}` is too large")))
            .transpose()
    }

    fn usize(&mut self, key: &str) -> Result<Option<usize>> {
        let what = self.what;
        self.u64(key)?
            .map(|value| {
                usize::try_from(value).map_err(|_| anyhow!("{what}: `{key}` is too large"))
            })
            .transpose()
    }

    fn f64(&mut self, key: &str) -> Result<Option<f64>> {
        let what = self.what;
        self.take(key)
            .map(|value| value.as_f64().ok_or_else(|| anyhow!("{what}: `{key}` is not a number")))
            .transpose()
    }

    fn bool(&mut self, key: &str) -> Result<Option<bool>> {
        let what = self.what;
        self.take(key)
            .map(|value| {
                value.as_bool().ok_or_else(|| anyhow!("{what}: `{key}` is not true or false"))
            })
            .transpose()
    }

    fn str(&mut self, key: &str) -> Result<Option<String>> {
        let what = self.what;
        self.take(key)
            .map(|value| {
                value
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| anyhow!("{what}: `{key}` is not a string"))
            })
            .transpose()
    }

    /// Fails naming the first key nobody asked for.
    fn finish(self) -> Result<()> {
        match self.fields.keys().next() {
            Some(key) => bail!("{}: unknown key `{key}`", self.what),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conclave_core::{MembershipChange, NodeId};
    use conclave_sim::FaultAction;

    fn settings() -> RaftSettings {
        RaftSettings {
            election_ticks: 10,
            heartbeat_ticks: 1,
            pre_vote: true,
            check_quorum: false,
            append_entries_max: 1,
            inflight_max: 1,
            lease_margin_ticks: 2,
            bugs: vec!["figure8-commit".to_string()],
        }
    }

    fn every_fault() -> Vec<ScheduledFault> {
        let id = NodeId;
        let actions = [
            FaultAction::Partition { groups: vec![vec![id(1)], vec![id(2), id(3)]] },
            FaultAction::Cut { links: vec![(id(1), id(2)), (id(3), id(2))] },
            FaultAction::Crash { node: id(2) },
            FaultAction::CrashPoint { node: id(3), ordinal: 0 },
            FaultAction::CrashPoint { node: id(3), ordinal: 2 },
            FaultAction::PowerCut { node: id(1) },
            FaultAction::FailSync { node: id(1), down_us: Some(1_234) },
            FaultAction::FailSync { node: id(2), down_us: None },
            FaultAction::Drop { probability: 0.07 },
            FaultAction::Duplicate { probability: 0.2 },
            FaultAction::Delay,
            FaultAction::Reorder,
            FaultAction::SlowDisk { nodes: vec![id(1), id(3)] },
            FaultAction::ChangeMembership { change: MembershipChange::AddLearner(id(4)) },
            FaultAction::ChangeMembership { change: MembershipChange::Promote(id(4)) },
            FaultAction::ChangeMembership { change: MembershipChange::Remove(id(1)) },
            FaultAction::ChangeMembership {
                change: MembershipChange::Replace { voters: vec![id(2), id(4)], learners: vec![] },
            },
            FaultAction::TransferLeader { target: id(3) },
        ];
        actions
            .into_iter()
            .enumerate()
            .map(|(i, action)| {
                let duration_us = match action {
                    FaultAction::ChangeMembership { .. } | FaultAction::TransferLeader { .. } => {
                        None
                    }
                    _ => Some(1_000 * i as u64 + 1),
                };
                ScheduledFault { at_us: 10_000 * i as u64, action, duration_us }
            })
            .collect()
    }

    #[test]
    fn a_scenario_survives_the_round_trip() {
        let options = Options {
            seed: 42,
            nodes: 3,
            spare_nodes: Some(1),
            ops: 17,
            read_ratio: 0.3,
            faults: "crash,partition,membership".parse().unwrap(),
            fault_schedule: Some(every_fault()),
            ..Options::default()
        };
        let violation = RecordedViolation {
            invariant: "commit-durability".to_string(),
            time_us: 123,
            detail: "entry \"7\" lost\nbadly".to_string(),
        };
        let scenario = Scenario { raft: settings(), options, violation: Some(violation) };
        let text = scenario.to_json();
        assert_eq!(Scenario::from_json(&text).unwrap(), scenario, "{text}");
        // One fault per line, for people.
        assert!(text.contains("\n    {\"at_us\":0,\"fault\":\"partition\",\"groups\":[[1],[2,3]],\"for_us\":1},\n"), "{text}");
        // Without a schedule, the nemesis is random. The spares are written out, pinned: how
        // many there are would otherwise follow the fault kinds.
        let random = Scenario { options: Options::default(), violation: None, ..scenario };
        let read = Scenario::from_json(&random.to_json()).unwrap();
        assert_eq!(read.options, Options { spare_nodes: Some(0), ..Options::default() });
        assert_eq!((read.raft, read.violation), (random.raft, None));
    }

    #[test]
    fn left_out_keys_take_the_flag_defaults() {
        let scenario =
            Scenario::from_json(r#"{"conclave_replay": 1, "options": {"seed": 9}}"#).unwrap();
        assert_eq!(scenario.options, Options { seed: 9, ..Options::default() });
        assert_eq!(scenario.raft.election_ticks, 10);
        assert!(scenario.raft.bugs.is_empty() && scenario.violation.is_none());
    }

    #[test]
    fn mistakes_are_refused_by_name() {
        let error = |text: &str| format!("{:#}", Scenario::from_json(text).unwrap_err());
        assert!(error("{}").contains("conclave_replay"));
        assert!(error(r#"{"conclave_replay": 2}"#).contains("version 2"));
        assert!(error(r#"{"conclave_replay": 1, "option": {}}"#).contains("`option`"));
        assert!(error(r#"{"conclave_replay": 1, "options": {"sede": 1}}"#).contains("`sede`"));
        let bad_fault = r#"{"conclave_replay": 1, "schedule": [{"at_us": 1, "fault": "meteor"}]}"#;
        let message = error(bad_fault);
        assert!(message.contains("schedule[0]") && message.contains("meteor"), "{message}");
        let missing = r#"{"conclave_replay": 1, "schedule": [{"at_us": 1, "fault": "crash"}]}"#;
        assert!(error(missing).contains("`node`"));
        assert!(error("{").contains("JSON"));
    }
}
