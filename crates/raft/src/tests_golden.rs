//! Golden tests: Raft scenarios written as text files in `crates/raft/testdata/`, each step
//! followed by the trace it must produce.
//!
//! A scenario reads like a story and its expected trace is reviewed like any other diff, which is
//! why the tricky cases of the core (pre-vote, fast backtracking, snapshots, joint consensus,
//! ReadIndex, leader transfer) live here rather than in hand-written assertions: a change of
//! behaviour shows up as a readable change of the trace.
//!
//! # Format
//!
//! A file is a sequence of blocks separated by blank lines. Each block is optional `#` comment
//! lines, one command line, a `----` line, and the expected output (never blank; a step with
//! nothing to show prints `ok`). A command is a name, positional arguments, and `key=value`
//! arguments:
//!
//! | command | what it does |
//! | --- | --- |
//! | `cluster voters=N [spares=N] [seed=N] [pre-vote=B] [check-quorum=B] [snapshot-every=N] [trailing=N] [chunk-bytes=N]` | builds nodes `1..=N` (and spares outside the membership) on a [`MemoryCluster`] |
//! | `tick ID... \| all [times=N]` | ticks nodes, handling each node's `Ready` after every tick |
//! | `campaign ID` | starts an election on `ID` now |
//! | `propose ID DATA` | proposes a command |
//! | `change ID add-learner=X \| promote=X \| remove=X \| voters=X,Y [learners=Z]` | asks for a membership change |
//! | `read ID READ-ID [mode=lease]` | asks for a linearizable read (ReadIndex by default) |
//! | `transfer ID TARGET` | asks the leader `ID` to hand leadership to `TARGET` |
//! | `deliver [from=ID] [to=ID]` | delivers the queued messages (those matching) once; answers are queued, not delivered |
//! | `drop [from=ID] [to=ID]` | loses the queued messages (those matching) |
//! | `stabilize` | delivers until nothing is queued |
//! | `round [times=N]` | ticks every node once, then stabilizes, N times; prints only the changes (no messages) |
//! | `isolate ID` / `heal [ID]` | cuts a node off from everyone (its messages are lost) / reconnects it (everyone) |
//! | `status [ID...]`, `log [ID...]`, `progress ID` | prints node state, logs, or a leader's view of its followers |
//!
//! The output lists what the step caused, in order: every message sent (`1->2 Kind fields`), a
//! status line for every node whose state changed (`n2: follower term=1 lead=1 ...`), membership
//! changes and read outcomes. While delivering, each delivered message is printed and what its
//! recipient did in answer follows it, indented; a message the network loses is marked `(lost)`.
//! Entries print as `index@term` and their payload (`noop`, `"data"`, or `conf(...)`).
//!
//! The test fails with a diff of every block whose output differs. `CONCLAVE_REWRITE=1 cargo
//! nextest run -p conclave-raft golden` writes the actual output into the files instead, so a
//! change of behaviour is reviewed as a git diff of the expected traces.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use conclave_core::{
    Entry, EntryKind, Envelope, Index, Membership, MembershipChange, NodeId, Protocol, ReadMode,
    Role,
};

use crate::memory_cluster::MemoryCluster;
use crate::message::{AppendResult, Message};
use crate::progress::{Progress, ReplicationState};
use crate::raft::Raft;

/// One step of a scenario and the output it is expected to produce.
struct Block {
    /// Comment lines and the command line, kept verbatim for rewriting.
    header: Vec<String>,
    /// The command line.
    command: String,
    /// The 1-based line number of the command, for error messages.
    line: usize,
    expected: Vec<String>,
}

/// Splits a scenario file into blocks. Panics on a malformed file: the file is the test.
fn parse(text: &str, path: &Path) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while lines.peek().is_some() {
        let mut header = Vec::new();
        let mut command = None;
        for (number, line) in lines.by_ref() {
            if line == "----" {
                break;
            }
            if line.trim().is_empty() && command.is_none() && header.is_empty() {
                continue;
            }
            assert!(
                command.is_none(),
                "{}:{}: one command per block, then `----`",
                path.display(),
                number + 1
            );
            header.push(line.to_string());
            if !line.starts_with('#') {
                command = Some((line.trim().to_string(), number + 1));
            }
        }
        let Some((command, line)) = command else {
            assert!(
                header.iter().all(|l| l.starts_with('#')),
                "{}: a block lacks its command",
                path.display()
            );
            break;
        };
        let mut expected = Vec::new();
        for (_, out) in lines.by_ref() {
            if out.trim().is_empty() {
                break;
            }
            expected.push(out.to_string());
        }
        blocks.push(Block { header, command, line, expected });
    }
    blocks
}

/// A parsed command line: name, positional arguments, and `key=value` arguments.
struct Command {
    name: String,
    positional: Vec<String>,
    named: Vec<(String, String)>,
}

impl Command {
    fn parse(line: &str) -> Command {
        let mut words = line.split_whitespace();
        let name = words.next().expect("a command name").to_string();
        let (mut positional, mut named) = (Vec::new(), Vec::new());
        for word in words {
            match word.split_once('=') {
                Some((key, value)) => named.push((key.to_string(), value.to_string())),
                None => positional.push(word.to_string()),
            }
        }
        Command { name, positional, named }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.named.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn number(&self, key: &str, default: u64) -> u64 {
        self.get(key).map_or(default, |v| v.parse().unwrap_or_else(|_| panic!("{key}={v}")))
    }

    fn flag(&self, key: &str, default: bool) -> bool {
        self.get(key).map_or(default, |v| v.parse().unwrap_or_else(|_| panic!("{key}={v}")))
    }

    fn node(&self, position: usize) -> NodeId {
        let word =
            self.positional.get(position).unwrap_or_else(|| panic!("{}: a node id", self.name));
        NodeId(word.parse().unwrap_or_else(|_| panic!("{}: bad node id {word}", self.name)))
    }

    fn node_list(&self, key: &str) -> Vec<NodeId> {
        self.get(key)
            .map(|v| {
                v.split(',').filter(|s| !s.is_empty()).map(|s| NodeId(s.parse().unwrap())).collect()
            })
            .unwrap_or_default()
    }

    fn matches(&self, envelope: &Envelope<Message>) -> bool {
        let from = self.get("from").map(|v| NodeId(v.parse().unwrap()));
        let to = self.get("to").map(|v| NodeId(v.parse().unwrap()));
        from.is_none_or(|f| f == envelope.from) && to.is_none_or(|t| t == envelope.to)
    }
}

/// What the harness shows of a node; a change of it is printed.
#[derive(PartialEq, Eq)]
struct View {
    status: String,
    membership: String,
}

/// Runs a scenario's commands against a [`MemoryCluster`], one step at a time.
#[derive(Default)]
struct Harness {
    cluster: Option<MemoryCluster>,
}

impl Harness {
    fn cluster(&mut self) -> &mut MemoryCluster {
        self.cluster.as_mut().expect("the scenario must start with `cluster`")
    }

    /// Runs one command line and returns its output.
    fn run(&mut self, line: &str) -> Vec<String> {
        let command = Command::parse(line);
        let mut out = Vec::new();
        match command.name.as_str() {
            "cluster" => self.create(&command, &mut out),
            "tick" | "campaign" | "propose" | "change" | "read" | "transfer" => {
                self.node_command(&command, &mut out)
            }
            "deliver" | "drop" | "stabilize" | "round" | "isolate" | "heal" => {
                self.network_command(&command, &mut out)
            }
            "status" | "log" | "progress" => self.inspect(&command, &mut out),
            other => panic!("unknown command `{other}`"),
        }
        if out.is_empty() {
            out.push("ok".to_string());
        }
        out
    }

    /// `cluster`: a fresh cluster, replacing any earlier one.
    fn create(&mut self, command: &Command, out: &mut Vec<String>) {
        let voters = command.number("voters", 3);
        let spares = command.number("spares", 0);
        let seed = command.number("seed", 1);
        let pre_vote = command.flag("pre-vote", true);
        let check_quorum = command.flag("check-quorum", true);
        let snapshot_every = command.number("snapshot-every", 0);
        let trailing = command.number("trailing", 0);
        let chunk_bytes = command.number("chunk-bytes", 1 << 20) as usize;
        let cluster = MemoryCluster::with_spares(voters, spares, seed, true, |c| {
            c.pre_vote = pre_vote;
            c.check_quorum = check_quorum;
            c.snapshot_entries = snapshot_every;
            c.snapshot_bytes = 0;
            c.snapshot_trailing_entries = trailing;
            c.snapshot_chunk_bytes = chunk_bytes;
        });
        self.cluster = Some(cluster);
        self.print_status(&[], out);
    }

    /// Commands that act on one node (or tick several), then handle its `Ready`.
    fn node_command(&mut self, command: &Command, out: &mut Vec<String>) {
        let error = |e: &dyn std::fmt::Display| Some(format!("error: {e}"));
        match command.name.as_str() {
            "tick" => {
                let ids = self.node_ids(&command.positional);
                for _ in 0..command.number("times", 1) {
                    for id in &ids {
                        self.act(*id, "", out, |node| {
                            node.tick();
                            None
                        });
                    }
                }
            }
            "campaign" => self.act(command.node(0), "", out, |node| {
                node.campaign();
                None
            }),
            "propose" => {
                let data = command.positional.get(1).expect("propose ID DATA").clone();
                self.act(command.node(0), "", out, |node| {
                    node.propose(Bytes::from(data)).err().and_then(|e| error(&e))
                });
            }
            "change" => {
                let change = membership_change(command);
                self.act(command.node(0), "", out, |node| {
                    node.change_membership(change).err().and_then(|e| error(&e))
                });
            }
            "read" => {
                let read_id = command.positional.get(1).expect("read ID READ-ID");
                let read_id: u64 = read_id.parse().expect("a numeric read id");
                let mode = match command.get("mode") {
                    Some("lease") => ReadMode::Lease,
                    _ => ReadMode::ReadIndex,
                };
                self.act(command.node(0), "", out, |node| {
                    node.read(read_id, mode).err().and_then(|e| error(&e))
                });
            }
            "transfer" => {
                let target = command.node(1);
                self.act(command.node(0), "", out, |node| {
                    node.transfer_leadership(target).err().and_then(|e| error(&e))
                });
            }
            other => unreachable!("{other} is not a node command"),
        }
    }

    /// Commands that move, lose or cut off messages.
    fn network_command(&mut self, command: &Command, out: &mut Vec<String>) {
        match command.name.as_str() {
            "deliver" => {
                let batch = self.cluster().take_queued(|e| command.matches(e));
                self.deliver_all(batch, out);
            }
            "drop" => {
                for envelope in self.cluster().take_queued(|e| command.matches(e)) {
                    out.push(format!("{} (dropped)", message(&envelope)));
                }
            }
            "stabilize" => self.stabilize(out),
            "round" => {
                // Many rounds of heartbeats would bury the story: only changes are shown.
                let mut trace = Vec::new();
                for _ in 0..command.number("times", 1) {
                    for id in self.node_ids(&[]) {
                        self.act(id, "", &mut trace, |node| {
                            node.tick();
                            None
                        });
                    }
                    self.stabilize(&mut trace);
                }
                let changes = trace.iter().map(|l| l.trim_start()).filter(|l| l.starts_with('n'));
                out.extend(changes.map(str::to_string));
            }
            "isolate" => {
                let id = command.node(0);
                self.cluster().isolated.insert(id);
            }
            "heal" => {
                if command.positional.is_empty() {
                    self.cluster().isolated.clear();
                } else {
                    let id = command.node(0);
                    self.cluster().isolated.remove(&id);
                }
            }
            other => unreachable!("{other} is not a network command"),
        }
    }

    /// Commands that only print.
    fn inspect(&mut self, command: &Command, out: &mut Vec<String>) {
        match command.name.as_str() {
            "status" => {
                let ids = self.node_ids(&command.positional);
                self.print_status(&ids, out);
            }
            "log" => {
                for id in self.node_ids(&command.positional) {
                    out.push(log_line(self.cluster().node(id)));
                }
            }
            "progress" => {
                let node = self.cluster().node(command.node(0));
                for (id, pr) in &node.progress {
                    out.push(format!("n{}->n{id}: {}", node.id(), progress(pr)));
                }
            }
            other => unreachable!("{other} is not an inspection"),
        }
    }

    /// Delivers until nothing is queued.
    fn stabilize(&mut self, out: &mut Vec<String>) {
        while !self.cluster().queued().is_empty() {
            let batch = self.cluster().take_queued(|_| true);
            self.deliver_all(batch, out);
        }
    }

    /// Every node with no ids given, else the ones named (`all` also means every node).
    fn node_ids(&mut self, words: &[String]) -> Vec<NodeId> {
        if words.is_empty() || words.iter().any(|w| w == "all") {
            return self.cluster().nodes.iter().map(|n| n.id()).collect();
        }
        words
            .iter()
            .map(|w| NodeId(w.parse().unwrap_or_else(|_| panic!("bad node id {w}"))))
            .collect()
    }

    fn print_status(&mut self, ids: &[NodeId], out: &mut Vec<String>) {
        let ids = if ids.is_empty() { self.node_ids(&[]) } else { ids.to_vec() };
        for id in ids {
            let view = view(self.cluster().node(id));
            out.push(view.status);
            out.push(view.membership);
        }
    }

    fn views(&self) -> Vec<View> {
        self.cluster.as_ref().expect("a cluster").nodes.iter().map(|node| view(node)).collect()
    }

    /// Runs `action` on node `id`, then handles the node's `Ready` and prints (with `indent`) what
    /// it sent and every change of state. `action` may return a line to print first (an error).
    fn act(
        &mut self,
        id: NodeId,
        indent: &str,
        out: &mut Vec<String>,
        action: impl FnOnce(&mut Raft) -> Option<String>,
    ) {
        let before = self.views();
        if let Some(line) = action(self.cluster().node(id)) {
            out.push(format!("{indent}{line}"));
        }
        self.after(id, before, indent, out);
    }

    /// Handles node `id`'s `Ready` and prints its messages and every change since `before`.
    fn after(&mut self, id: NodeId, before: Vec<View>, indent: &str, out: &mut Vec<String>) {
        let cluster = self.cluster();
        let queued_before = cluster.queued().len();
        let installed_before = cluster.snapshots_installed[id.0 as usize - 1];
        cluster.process_ready(id);
        for envelope in cluster.queued().iter().skip(queued_before) {
            out.push(format!("{indent}{}", message(envelope)));
        }
        if cluster.snapshots_installed[id.0 as usize - 1] > installed_before {
            out.push(format!("{indent}n{id}: state machine restored from the leader's snapshot"));
        }
        for read in cluster.take_reads(id) {
            let outcome = match read.outcome {
                Ok(index) => format!("at index {index}"),
                Err(e) => format!("error: {e}"),
            };
            out.push(format!("{indent}n{id}: read {} {outcome}", read.id));
        }
        for (old, new) in before.iter().zip(self.views()) {
            if old.status != new.status {
                out.push(format!("{indent}{}", new.status));
            }
            if old.membership != new.membership {
                out.push(format!("{indent}{}", new.membership));
            }
        }
    }

    /// Delivers `batch` in order, each followed by what its recipient did in answer.
    fn deliver_all(&mut self, batch: Vec<Envelope<Message>>, out: &mut Vec<String>) {
        for envelope in batch {
            let line = message(&envelope);
            let to = envelope.to;
            let before = self.views();
            if self.cluster().deliver(envelope) {
                out.push(line);
                self.after(to, before, "  ", out);
            } else {
                out.push(format!("{line} (lost)"));
            }
        }
    }
}

fn membership_change(command: &Command) -> MembershipChange {
    let id = |v: &str| NodeId(v.parse().expect("a node id"));
    if let Some(v) = command.get("add-learner") {
        MembershipChange::AddLearner(id(v))
    } else if let Some(v) = command.get("promote") {
        MembershipChange::Promote(id(v))
    } else if let Some(v) = command.get("remove") {
        MembershipChange::Remove(id(v))
    } else {
        MembershipChange::Replace {
            voters: command.node_list("voters"),
            learners: command.node_list("learners"),
        }
    }
}

fn progress(pr: &Progress) -> String {
    match pr.state {
        ReplicationState::Probe => {
            let paused = if pr.probe_sent { " paused" } else { "" };
            format!("probe match={} next={}{paused}", pr.matched, pr.next)
        }
        ReplicationState::Replicate => format!(
            "replicate match={} next={} inflight={}",
            pr.matched,
            pr.next,
            pr.inflight.len()
        ),
        ReplicationState::Snapshot => format!(
            "snapshot match={} index={} acked={} sent={}",
            pr.matched, pr.transfer.index, pr.transfer.acked, pr.transfer.sent
        ),
    }
}

fn view(node: &Raft) -> View {
    let status = node.status();
    let mut line = format!("n{}: {} term={}", status.id, role(status.role), status.term);
    let _ = write!(
        line,
        " lead={} vote={} commit={} applied={} last={}@{}",
        status.leader.map_or("-".into(), |l| l.to_string()),
        status.vote.map_or("-".into(), |v| v.to_string()),
        status.commit,
        status.applied,
        status.last_index,
        node.log().last_term(),
    );
    if let Some(snapshot) = &node.snapshot {
        let _ = write!(line, " snapshot={}@{}", snapshot.index, snapshot.term);
    }
    if node.log().first_index().0 > 1 {
        let _ = write!(line, " first={}", node.log().first_index());
    }
    if let Some(target) = node.leader_transfer_target() {
        let _ = write!(line, " transferring-to={target}");
    }
    View { status: line, membership: format!("n{}: {}", status.id, node.membership()) }
}

fn role(role: Role) -> &'static str {
    match role {
        Role::Follower => "follower",
        Role::PreCandidate => "pre-candidate",
        Role::Candidate => "candidate",
        Role::Leader => "leader",
    }
}

fn log_line(node: &Raft) -> String {
    let log = node.log();
    let entries: Vec<String> = (log.first_index().0..=log.last_index().0)
        .filter_map(|i| log.entry(Index(i)))
        .map(entry)
        .collect();
    let mut line = format!("n{} log:", node.id());
    if log.first_index().0 > 1 {
        let _ = write!(
            line,
            " (compacted to {}@{})",
            log.snapshot_index(),
            log.term(log.snapshot_index()).unwrap()
        );
    }
    let _ = write!(line, " [{}]", entries.join(", "));
    line
}

fn entry(entry: &Entry) -> String {
    let payload = match entry.kind {
        EntryKind::Noop => "noop".to_string(),
        EntryKind::Command => format!("{:?}", String::from_utf8_lossy(&entry.data)),
        EntryKind::Config => match Membership::decode(&entry.data) {
            Ok(m) => format!("conf({m})"),
            Err(e) => format!("conf(? {e})"),
        },
    };
    format!("{}@{} {payload}", entry.index, entry.term)
}

fn message(envelope: &Envelope<Message>) -> String {
    let head = format!("{}->{}", envelope.from, envelope.to);
    let body = match &envelope.msg {
        Message::RequestVote { term, last_log_index, last_log_term, pre_vote, leader_transfer } => {
            format!(
                "{} term={term} last={last_log_index}@{last_log_term}{}",
                if *pre_vote { "PreVote" } else { "RequestVote" },
                if *leader_transfer { " leader-transfer" } else { "" }
            )
        }
        Message::RequestVoteResponse { term, granted, pre_vote } => format!(
            "{} term={term} {}",
            if *pre_vote { "PreVoteResponse" } else { "RequestVoteResponse" },
            if *granted { "granted" } else { "rejected" }
        ),
        Message::AppendEntries { term, prev_index, prev_term, entries, commit } => {
            let list: Vec<String> = entries.iter().map(entry).collect();
            format!(
                "AppendEntries term={term} prev={prev_index}@{prev_term} commit={commit} [{}]",
                list.join(", ")
            )
        }
        Message::AppendEntriesResponse { term, result } => match result {
            AppendResult::Success { match_index } => {
                format!("AppendEntriesResponse term={term} ok match={match_index}")
            }
            AppendResult::Reject { prev_index, hint_index, hint_term } => format!(
                "AppendEntriesResponse term={term} reject prev={prev_index} hint={hint_index}{}",
                hint_term.map_or(String::new(), |t| format!("@{t}"))
            ),
        },
        Message::Heartbeat { term, commit, read_round } => {
            format!("Heartbeat term={term} commit={commit} round={read_round}")
        }
        Message::HeartbeatResponse { term, read_round } => {
            format!("HeartbeatResponse term={term} round={read_round}")
        }
        Message::ReadIndexRequest { term, id, mode } => {
            format!("ReadIndexRequest term={term} read={id} mode={mode}")
        }
        Message::ReadIndexResponse { term, id, index } => format!(
            "ReadIndexResponse term={term} read={id} index={}",
            index.map_or("none".to_string(), |i| i.to_string())
        ),
        Message::InstallSnapshot {
            term,
            snapshot_index,
            snapshot_term,
            membership,
            offset,
            data,
            done,
        } => format!(
            "InstallSnapshot term={term} snapshot={snapshot_index}@{snapshot_term} offset={offset} bytes={}{} ({membership})",
            data.len(),
            if *done { " done" } else { "" }
        ),
        Message::TimeoutNow { term } => format!("TimeoutNow term={term}"),
        Message::InstallSnapshotResponse { term, snapshot_index, received, done } => format!(
            "InstallSnapshotResponse term={term} snapshot={snapshot_index} received={received}{}",
            if *done { " done" } else { "" }
        ),
    };
    format!("{head} {body}")
}

/// A line diff (longest common subsequence) of expected and actual output: `-` lines are
/// expected and missing, `+` lines are new.
fn diff(expected: &[String], actual: &[String]) -> String {
    let (n, m) = (expected.len(), actual.len());
    let mut common = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            common[i][j] = if expected[i] == actual[j] {
                common[i + 1][j + 1] + 1
            } else {
                common[i + 1][j].max(common[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < n || j < m {
        if i < n && j < m && expected[i] == actual[j] {
            let _ = writeln!(out, "  {}", expected[i]);
            (i, j) = (i + 1, j + 1);
        } else if j < m && (i == n || common[i][j + 1] >= common[i + 1][j]) {
            let _ = writeln!(out, "+ {}", actual[j]);
            j += 1;
        } else {
            let _ = writeln!(out, "- {}", expected[i]);
            i += 1;
        }
    }
    out
}

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

/// Runs one scenario file; rewrites it with the actual output when `CONCLAVE_REWRITE` is set.
fn run_file(name: &str) {
    let path = testdata().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let blocks = parse(&text, &path);
    let mut harness = Harness::default();
    let mut failures = String::new();
    let mut rewritten = String::new();
    for block in &blocks {
        let actual = harness.run(&block.command);
        if actual != block.expected {
            let _ = writeln!(
                failures,
                "{}:{}: {}\n{}",
                path.display(),
                block.line,
                block.command,
                diff(&block.expected, &actual)
            );
        }
        for line in block.header.iter().chain(std::iter::once(&"----".to_string())).chain(&actual) {
            rewritten.push_str(line);
            rewritten.push('\n');
        }
        rewritten.push('\n');
    }
    // The one place the tests read the environment: the switch that rewrites expected output.
    #[allow(clippy::disallowed_methods)]
    let rewrite = std::env::var("CONCLAVE_REWRITE").is_ok_and(|v| !v.is_empty() && v != "0");
    if rewrite {
        rewritten.pop();
        std::fs::write(&path, rewritten).expect("rewrite the scenario file");
        return;
    }
    assert!(
        failures.is_empty(),
        "output differs from the expected trace (- expected, + actual; \
         CONCLAVE_REWRITE=1 regenerates the files):\n{failures}"
    );
}

macro_rules! golden {
    ($($test:ident => $file:literal,)*) => {
        $(
            #[test]
            fn $test() {
                run_file($file);
            }
        )*

        /// Every scenario file has its test: a file added without one would silently never run.
        #[test]
        fn every_scenario_file_is_run() {
            let listed = [$($file),*];
            let mut files: Vec<String> = std::fs::read_dir(testdata())
                .expect("testdata directory")
                .map(|e| e.expect("directory entry").file_name().to_string_lossy().into_owned())
                .filter(|name| name.ends_with(".txt"))
                .collect();
            files.sort();
            let mut listed: Vec<String> = listed.iter().map(|s| s.to_string()).collect();
            listed.sort();
            assert_eq!(files, listed);
        }
    };
}

golden! {
    golden_election_pre_vote_check_quorum => "election.txt",
    golden_log_conflict_fast_backtracking => "log_conflict.txt",
    golden_snapshot_install => "snapshot.txt",
    golden_membership_joint_and_learners => "membership.txt",
    golden_read_index => "read_index.txt",
    golden_leader_transfer => "leader_transfer.txt",
}

#[test]
fn the_diff_marks_missing_and_new_lines() {
    let lines = |s: &[&str]| s.iter().map(|l| l.to_string()).collect::<Vec<_>>();
    let out = diff(&lines(&["a", "b", "c"]), &lines(&["a", "x", "c"]));
    assert_eq!(out, "  a\n+ x\n- b\n  c\n");
}
