//! Real-time tests of the runtime: Raft groups on loopback TCP with on-disk storage, in one
//! process. They wait on outcomes (leaders, applied indexes) with deadlines, never on sleeps.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use conclave_core::{Index, MembershipChange, NodeId, SeededRng};
use conclave_raft::{Config, Raft};
use conclave_storage::{FaultInjector, Options};
use conclave_transport::{GroupId, Transport, TransportConfig};
use tempfile::TempDir;
use tokio::net::TcpListener;

use crate::*;

/// A state machine that records every command; a command's output is how many it has applied.
/// Its images are built from a copy on the snapshot thread, held at `gate` if there is one.
#[derive(Default)]
struct Recorder {
    commands: Vec<Bytes>,
    gate: Option<Arc<Gate>>,
}

/// Holds snapshot builds until the test opens it, counting the builds that reached it.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
    reached: AtomicU64,
}

impl Gate {
    /// Waits until the gate opens, or gives up after twice [`WAIT`] so that a loop that waits on
    /// the build itself fails the test instead of hanging it.
    fn pass(&self) {
        self.reached.fetch_add(1, Ordering::SeqCst);
        let open = self.open.lock().unwrap();
        drop(self.opened.wait_timeout_while(open, 2 * WAIT, |open| !*open).unwrap());
    }

    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

fn encode(commands: &[Bytes]) -> Bytes {
    let mut out = BytesMut::new();
    for command in commands {
        out.put_u32(command.len() as u32);
        out.put_slice(command);
    }
    out.freeze()
}

impl StateMachine for Recorder {
    type Output = usize;

    fn apply(&mut self, _index: Index, command: &[u8]) -> usize {
        self.commands.push(Bytes::copy_from_slice(command));
        self.commands.len()
    }

    fn snapshot(&self) -> Bytes {
        encode(&self.commands)
    }

    fn begin_snapshot(&self) -> SnapshotJob {
        let (commands, gate) = (self.commands.clone(), self.gate.clone());
        Box::new(move || {
            if let Some(gate) = gate {
                gate.pass();
            }
            encode(&commands)
        })
    }

    fn restore(&mut self, mut image: &[u8]) -> Result<(), BoxError> {
        self.commands.clear();
        while image.has_remaining() {
            if image.remaining() < 4 {
                return Err("truncated".into());
            }
            let len = image.get_u32() as usize;
            if image.remaining() < len {
                return Err("truncated".into());
            }
            self.commands.push(Bytes::copy_from_slice(&image[..len]));
            image.advance(len);
        }
        Ok(())
    }
}

const GROUP: GroupId = GroupId(1);
const WAIT: Duration = Duration::from_secs(10);

struct TestNode {
    runtime: Runtime,
    handle: GroupHandle<Recorder>,
}

struct Cluster {
    dirs: Vec<TempDir>,
    addrs: Vec<SocketAddr>,
    voters: Vec<NodeId>,
    nodes: Vec<Option<TestNode>>,
    snapshot_entries: u64,
    faults: Option<Arc<FaultInjector>>,
    backlog_max: Option<u64>,
    /// One per node: where that node's snapshot builds wait, if set.
    gates: Option<Vec<Arc<Gate>>>,
}

impl Cluster {
    async fn new(size: usize, voters: usize) -> Cluster {
        let mut addrs = Vec::new();
        for _ in 0..size {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            addrs.push(listener.local_addr().unwrap());
        }
        Cluster {
            dirs: (0..size).map(|_| tempfile::tempdir().unwrap()).collect(),
            addrs,
            voters: (1..=voters as u64).map(NodeId).collect(),
            nodes: (0..size).map(|_| None).collect(),
            snapshot_entries: 10_000,
            faults: None,
            backlog_max: None,
            gates: None,
        }
    }

    async fn start(&mut self, i: usize) {
        let id = NodeId(i as u64 + 1);
        let listener = TcpListener::bind(self.addrs[i]).await.unwrap();
        let transport = Transport::start(TransportConfig::new(id, 42), listener).unwrap();
        let runtime = Runtime::new(id, transport);
        let mut options = GroupOptions {
            tick: Duration::from_millis(10),
            request_timeout: WAIT,
            ..GroupOptions::default()
        };
        for (j, addr) in self.addrs.iter().enumerate() {
            options.initial_peers.insert(NodeId(j as u64 + 1), *addr);
        }
        options.storage = Options { fault_injector: self.faults.clone(), ..Options::default() };
        if let Some(max) = self.backlog_max {
            options.storage_backlog_bytes_max = max;
        }
        let mut config = Config::new(id, self.voters.clone());
        config.snapshot_entries = self.snapshot_entries;
        config.snapshot_trailing_entries = 10;
        let seed = 1000 + i as u64;
        let handle = runtime
            .start_group(
                GROUP,
                self.dirs[i].path(),
                move |durable| Raft::new(config, durable, Box::new(SeededRng::new(seed))),
                Recorder { gate: self.gates.as_ref().map(|g| g[i].clone()), ..Recorder::default() },
                options,
            )
            .unwrap();
        self.nodes[i] = Some(TestNode { runtime, handle });
    }

    async fn start_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.start(i).await;
        }
    }

    async fn stop(&mut self, i: usize) {
        if let Some(node) = self.nodes[i].take() {
            node.runtime.shutdown().await;
        }
    }

    fn handle(&self, i: usize) -> &GroupHandle<Recorder> {
        &self.nodes[i].as_ref().expect("node running").handle
    }

    /// The index of the node every running node agrees leads.
    async fn leader(&self) -> usize {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let leaders: Vec<usize> = (0..self.nodes.len())
                .filter(|&i| self.nodes[i].as_ref().is_some_and(|n| n.handle.is_leader()))
                .collect();
            if let [leader] = leaders[..] {
                return leader;
            }
            assert!(tokio::time::Instant::now() < deadline, "no single leader within {WAIT:?}");
            let any = self.nodes.iter().flatten().next().unwrap();
            let _ = any.handle.leader(Duration::from_millis(50)).await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until node `i` has applied `index`.
    async fn applied(&self, i: usize, index: Index) {
        let mut status = self.handle(i).status.clone();
        tokio::time::timeout(WAIT, async {
            while status.borrow_and_update().applied < index {
                status.changed().await.unwrap();
            }
        })
        .await
        .unwrap_or_else(|_| panic!("node {} did not apply {index}", i + 1));
    }

    fn commands(&self, i: usize) -> Vec<Bytes> {
        self.handle(i).with_state(|s| s.commands.clone())
    }
}

fn numbered(n: usize) -> Bytes {
    Bytes::from(format!("cmd-{n}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_replicate_and_serve_linearizable_reads_anywhere() {
    let mut cluster = Cluster::new(3, 3).await;
    cluster.start_all().await;
    let leader = cluster.leader().await;
    for n in 1..=50 {
        assert_eq!(cluster.handle(leader).propose(&numbered(n)).await, Ok(n));
    }
    let commit = cluster.handle(leader).status().applied;
    for i in 0..3 {
        // A follower's linearizable read confirms with the leader and waits for its apply.
        cluster.handle(i).read_barrier(ReadConsistency::Linearizable).await.unwrap();
        assert!(cluster.handle(i).status().applied >= commit);
        assert_eq!(cluster.commands(i), (1..=50).map(numbered).collect::<Vec<_>>());
    }
    cluster.handle(leader).read_barrier(ReadConsistency::Lease).await.unwrap();
    let follower = (leader + 1) % 3;
    assert_eq!(
        cluster.handle(follower).propose(b"x").await,
        Err(ClientError::NotLeader { leader: Some(NodeId(leader as u64 + 1)) })
    );
    for i in 0..3 {
        cluster.stop(i).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_leader_loss_and_full_restart() {
    let mut cluster = Cluster::new(3, 3).await;
    cluster.start_all().await;
    let old = cluster.leader().await;
    for n in 1..=20 {
        cluster.handle(old).propose(&numbered(n)).await.unwrap();
    }
    cluster.stop(old).await;
    let new = cluster.leader().await;
    assert_ne!(new, old);
    for n in 21..=40 {
        cluster.handle(new).propose(&numbered(n)).await.unwrap();
    }
    cluster.start(old).await;
    let applied = cluster.handle(new).status().applied;
    cluster.applied(old, applied).await;
    assert_eq!(cluster.commands(old), (1..=40).map(numbered).collect::<Vec<_>>());

    for i in 0..3 {
        cluster.stop(i).await;
    }
    cluster.start_all().await;
    let leader = cluster.leader().await;
    cluster.handle(leader).read_barrier(ReadConsistency::Linearizable).await.unwrap();
    assert_eq!(cluster.commands(leader), (1..=40).map(numbered).collect::<Vec<_>>());
    for i in 0..3 {
        cluster.stop(i).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_node_catches_up_from_a_snapshot_and_restarts_from_it() {
    let mut cluster = Cluster::new(3, 3).await;
    cluster.snapshot_entries = 30;
    cluster.start_all().await;
    let leader = cluster.leader().await;
    let lagging = (leader + 1) % 3;
    cluster.stop(lagging).await;
    for n in 1..=200 {
        cluster.handle(leader).propose(&numbered(n)).await.unwrap();
    }
    assert!(
        cluster.handle(leader).metrics().snapshots_taken.load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
    cluster.start(lagging).await;
    let applied = cluster.handle(leader).status().applied;
    cluster.applied(lagging, applied).await;
    assert_eq!(cluster.commands(lagging), (1..=200).map(numbered).collect::<Vec<_>>());
    assert!(
        cluster
            .handle(lagging)
            .metrics()
            .snapshots_installed
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0,
        "the leader compacted its log, so catching up needs its snapshot"
    );
    // Restarted, the node rebuilds its state from its own snapshot plus the log.
    cluster.stop(lagging).await;
    cluster.start(lagging).await;
    cluster.applied(lagging, applied).await;
    assert_eq!(cluster.commands(lagging).len(), 200);
    for i in 0..3 {
        cluster.stop(i).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_added_at_run_time_learns_the_log_and_becomes_a_voter() {
    let mut cluster = Cluster::new(4, 3).await;
    for i in 0..3 {
        cluster.start(i).await;
    }
    let leader = cluster.leader().await;
    for n in 1..=10 {
        cluster.handle(leader).propose(&numbered(n)).await.unwrap();
    }
    cluster.start(3).await;
    let addr = cluster.addrs[3];
    cluster.handle(leader).add_learner(NodeId(4), addr).await.unwrap();
    let applied = cluster.handle(leader).status().applied;
    cluster.applied(3, applied).await;
    // The leader promotes only a learner it has heard acknowledge the log: retry until its
    // acknowledgement has arrived (what an operator's retry does).
    let deadline = tokio::time::Instant::now() + WAIT;
    while let Err(error) =
        cluster.handle(leader).change_membership(MembershipChange::Promote(NodeId(4))).await
    {
        assert!(matches!(error, ClientError::MembershipRefused(_)), "{error}");
        assert!(tokio::time::Instant::now() < deadline, "never promoted: {error}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let membership = cluster.handle(leader).status().membership.unwrap();
    assert!(membership.voters.contains(&NodeId(4)));
    assert_eq!(cluster.handle(3).addresses().get(&NodeId(4)), Some(&addr));
    // Leadership can move to the new voter.
    cluster.handle(leader).transfer_leadership(NodeId(4)).await.unwrap();
    let mut status = cluster.handle(3).status.clone();
    tokio::time::timeout(WAIT, async {
        while status.borrow_and_update().core.role != conclave_core::Role::Leader {
            status.changed().await.unwrap();
        }
    })
    .await
    .expect("node 4 took over");
    assert_eq!(cluster.handle(3).propose(b"after").await, Ok(11));
    for i in 0..4 {
        cluster.stop(i).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fsync_stops_the_node_without_acknowledging() {
    let mut cluster = Cluster::new(1, 1).await;
    let faults = FaultInjector::new();
    cluster.faults = Some(faults.clone());
    cluster.start(0).await;
    cluster.leader().await;
    assert_eq!(cluster.handle(0).propose(b"before").await, Ok(1));
    faults.fail_syncs_after(0);
    assert!(matches!(cluster.handle(0).propose(b"lost").await, Err(ClientError::Stopped)));
    let reason = tokio::time::timeout(WAIT, cluster.nodes[0].as_ref().unwrap().runtime.failed())
        .await
        .unwrap();
    assert_eq!(reason.group, GROUP);
    assert!(matches!(reason.reason, FailureReason::Storage(_)), "{reason}");
    assert!(cluster.handle(0).status().stopped);
    cluster.stop(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_share_a_transport_and_stay_independent() {
    // Two groups on the same two... rather three nodes: each has its own log and leader.
    let mut addrs = Vec::new();
    let mut listeners = Vec::new();
    for _ in 0..3 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        addrs.push(listener.local_addr().unwrap());
        listeners.push(listener);
    }
    let dirs: Vec<TempDir> = (0..6).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut runtimes = Vec::new();
    let mut handles = Vec::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let id = NodeId(i as u64 + 1);
        let transport = Transport::start(TransportConfig::new(id, 42), listener).unwrap();
        let runtime = Runtime::new(id, transport);
        for g in 0..2u64 {
            let mut options =
                GroupOptions { tick: Duration::from_millis(10), ..GroupOptions::default() };
            for (j, addr) in addrs.iter().enumerate() {
                options.initial_peers.insert(NodeId(j as u64 + 1), *addr);
            }
            let config = Config::new(id, vec![NodeId(1), NodeId(2), NodeId(3)]);
            let seed = i as u64 * 10 + g;
            let dir: &Path = dirs[i * 2 + g as usize].path();
            handles.push(
                runtime
                    .start_group(
                        GroupId(g + 1),
                        dir,
                        move |d| Raft::new(config, d, Box::new(SeededRng::new(seed))),
                        Recorder::default(),
                        options,
                    )
                    .unwrap(),
            );
        }
        runtimes.push(runtime);
    }
    for g in 0..2usize {
        let group: Vec<&GroupHandle<Recorder>> = handles.iter().skip(g).step_by(2).collect();
        let leader = group[0].leader(WAIT).await.unwrap();
        let handle = group[leader.0 as usize - 1];
        for n in 0..(10 + g * 5) {
            handle.propose(&numbered(n)).await.unwrap();
        }
    }
    for (k, handle) in handles.iter().enumerate() {
        handle.read_barrier(ReadConsistency::Linearizable).await.unwrap();
        let expected = if k % 2 == 0 { 10 } else { 15 };
        assert_eq!(handle.with_state(|s| s.commands.len()), expected);
    }
    assert!(runtimes[0]
        .start_group(
            GroupId(1),
            dirs[0].path(),
            |_| Err::<Raft, _>("unused".to_string()),
            Recorder::default(),
            GroupOptions::default()
        )
        .is_err());
    for runtime in &runtimes {
        runtime.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_storage_backlog_holds_proposals_back_without_losing_them() {
    let mut cluster = Cluster::new(3, 3).await;
    // One byte: every batch of proposals waits for the previous one to be durable.
    cluster.backlog_max = Some(1);
    cluster.start_all().await;
    let leader = cluster.leader().await;
    let handle = cluster.handle(leader);
    let mut pending = Vec::new();
    for n in 1..=300 {
        pending.push(handle.submit(&numbered(n)).await.unwrap());
    }
    for (n, pending) in pending.into_iter().enumerate() {
        let output = pending.wait().await;
        assert!(output.is_ok(), "command {} failed: {output:?}", n + 1);
    }
    assert_eq!(cluster.commands(leader), (1..=300).map(numbered).collect::<Vec<_>>());
    let held = handle.metrics().storage_backpressure.load(std::sync::atomic::Ordering::Relaxed);
    assert!(held > 0, "the backlog bound never held proposals back");
    for i in 0..3 {
        cluster.stop(i).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_submitted_for_an_old_term_is_refused() {
    let mut cluster = Cluster::new(3, 3).await;
    cluster.start_all().await;
    let leader = cluster.leader().await;
    let handle = cluster.handle(leader);
    let term = handle.term();
    let stale = conclave_core::Term(term.0.saturating_sub(1));
    let refused = handle.submit_in_term(b"stale", Some(stale)).await.unwrap().wait().await;
    assert!(matches!(refused, Err(ClientError::NotLeader { .. })), "{refused:?}");
    let accepted = handle.submit_in_term(b"current", Some(term)).await.unwrap().wait().await;
    assert_eq!(accepted, Ok(1));
    assert_eq!(cluster.commands(leader), vec![Bytes::from_static(b"current")]);
    for i in 0..3 {
        cluster.stop(i).await;
    }
}

/// Polls `condition` until it holds, failing the test after [`WAIT`].
async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "{what} within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loop_keeps_heartbeating_and_committing_while_a_snapshot_is_built() {
    let mut cluster = Cluster::new(3, 3).await;
    cluster.snapshot_entries = 20;
    let gates: Vec<Arc<Gate>> = (0..3).map(|_| Arc::new(Gate::default())).collect();
    cluster.gates = Some(gates.clone());
    cluster.start_all().await;
    let leader = cluster.leader().await;
    for n in 1..=25 {
        assert_eq!(cluster.handle(leader).propose(&numbered(n)).await, Ok(n));
    }
    let gate = &gates[leader];
    eventually("the leader starts building a snapshot", || gate.reached.load(Ordering::SeqCst) > 0)
        .await;

    // The build is held at the gate; everything else must go on.
    let metrics = cluster.handle(leader).metrics();
    let heartbeats = metrics.sent_count("Heartbeat");
    for n in 26..=75 {
        assert_eq!(cluster.handle(leader).propose(&numbered(n)).await, Ok(n));
    }
    eventually("the leader sends heartbeats", || {
        metrics.sent_count("Heartbeat") >= heartbeats + 20
    })
    .await;
    cluster.handle(leader).read_barrier(ReadConsistency::Linearizable).await.unwrap();
    assert_eq!(metrics.snapshots_taken.load(Ordering::Relaxed), 0, "the build was still held");
    assert_eq!(cluster.handle(leader).status().core.snapshot_index, Index(0));

    // Released, the image arrives and the log is compacted behind it: the image holds the
    // commands applied when it was asked for, not the ones applied while it was built.
    for gate in &gates {
        gate.open();
    }
    let handle = cluster.handle(leader);
    eventually("the snapshot is taken", || handle.status().core.snapshot_index > Index(0)).await;
    let index = handle.status().core.snapshot_index;
    assert!(index >= Index(20) && index < Index(75), "snapshot at {index}");
    assert!(metrics.snapshots_taken.load(Ordering::Relaxed) >= 1);
    let lagging = (leader + 1) % 3;
    cluster.stop(lagging).await;
    cluster.start(lagging).await;
    let applied = cluster.handle(leader).status().applied;
    cluster.applied(lagging, applied).await;
    assert_eq!(cluster.commands(lagging), (1..=75).map(numbered).collect::<Vec<_>>());
    for i in 0..3 {
        cluster.stop(i).await;
    }
}
