//! A node whose log is corrupted in the middle refuses to start, naming the file and offset, and
//! `conclave wal repair` rebuilds it from its peers: removed, its files set aside, added back as
//! a learner, promoted once caught up, with every acknowledged write on it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use common::{eventually, ProcCluster, WAIT};
use redis::Commands;

const TOKEN: &str = "the repair test's admin token";
const BEFORE: usize = 300;
const WHILE_DOWN: usize = 100;

fn conclave(args: &[&str], token: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_conclave"));
    command.args(args).env_remove("CONCLAVE_ADMIN_TOKEN");
    if let Some(token) = token {
        command.env("CONCLAVE_ADMIN_TOKEN", token);
    }
    command.output().expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Flips a byte inside the record that holds `needle`, in whichever segment holds it; returns
/// the segment and its bytes after the flip.
fn corrupt_record_holding(dir: &Path, needle: &[u8]) -> (PathBuf, Vec<u8>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "seg") {
            continue;
        }
        let mut bytes = std::fs::read(&path).unwrap();
        if let Some(at) = bytes.windows(needle.len()).position(|w| w == needle) {
            bytes[at + needle.len() - 1] ^= 0x20;
            std::fs::write(&path, &bytes).unwrap();
            return (path, bytes);
        }
    }
    panic!("no segment in {} holds {:?}", dir.display(), String::from_utf8_lossy(needle));
}

/// The node's data directory's `damaged-*` folders.
fn damaged_folders(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && p.file_name().unwrap().to_str().unwrap().starts_with("damaged-"))
        .collect()
}

fn roles(cluster: &ProcCluster, node: usize) -> Vec<(u64, String)> {
    let status = cluster.status(node).expect("the leader's status");
    let members = status["members"].as_array().unwrap();
    members
        .iter()
        .map(|m| (m["id"].as_u64().unwrap(), m["role"].as_str().unwrap().into()))
        .collect()
}

#[test]
fn a_corrupted_follower_refuses_to_start_and_is_rebuilt_from_its_peers() {
    let mut cluster = ProcCluster::new(3, 3);
    cluster.admin_token = Some(TOKEN.into());
    cluster.start_all();
    let leader = cluster.wait_leader();
    let mut writer = cluster.redis(leader);
    for i in 0..BEFORE {
        let _: () = writer.set(format!("repair-key-{i:05}"), format!("value-{i}")).unwrap();
    }
    let follower = (leader + 1) % 3;
    let id = (follower + 1).to_string();
    cluster.kill(follower);
    // Acknowledged by the other two alone: the rebuilt node must get these from its peers too.
    for i in 0..WHILE_DOWN {
        let _: () = writer.set(format!("while-down-{i:05}"), format!("later-{i}")).unwrap();
    }

    // A flipped byte mid-log: corruption, not a torn tail. The node refuses to start.
    let data_dir = cluster.data_dir(follower);
    let (segment, damaged_bytes) = corrupt_record_holding(&data_dir, b"repair-key-00150");
    cluster.start(follower);
    let deadline = Instant::now() + WAIT;
    let status = loop {
        let child = cluster.children[follower].as_mut().unwrap();
        if let Some(status) = child.try_wait().unwrap() {
            cluster.children[follower] = None;
            break status;
        }
        assert!(Instant::now() < deadline, "the corrupted node kept running");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(!status.success());
    let log = std::fs::read_to_string(cluster.dir.path().join(format!("node-{id}.log"))).unwrap();
    let name = segment.file_name().unwrap().to_str().unwrap();
    assert!(log.contains(name) && log.contains("at byte offset"), "{log}");
    assert!(log.contains("conclave wal repair --data-dir"), "{log}");

    // Without the admin token the repair is refused, and nothing moves.
    let leader_admin = cluster.ports[leader].admin.to_string();
    let dir = data_dir.to_str().unwrap();
    let repair = ["wal", "repair", "--data-dir", dir, "--id", &id, "--admin", &leader_admin];
    let out = conclave(&repair, None);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("requires a token"), "{}", text(&out.stderr));
    assert!(segment.exists() && damaged_folders(&data_dir).is_empty());
    assert!(roles(&cluster, leader).contains(&(id.parse().unwrap(), "voter".into())));

    let out = conclave(&repair, Some(TOKEN));
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}\n{}", text(&out.stderr), cluster.logs());
    assert!(stdout.contains("set aside in") && stdout.contains(name), "{stdout}");
    // Set aside, byte for byte, not deleted.
    let folders = damaged_folders(&data_dir);
    assert_eq!(folders.len(), 1, "{folders:?}");
    assert_eq!(std::fs::read(folders[0].join(name)).unwrap(), damaged_bytes);
    assert!(!segment.exists());
    assert!(roles(&cluster, leader).contains(&(id.parse().unwrap(), "learner".into())));

    // Started as before, it catches up as a learner and is promoted once it has.
    cluster.start(follower);
    let promote = ["cluster", "--admin", &leader_admin, "promote", &id];
    eventually("the promotion of the rebuilt node", || {
        conclave(&promote, Some(TOKEN)).status.success().then_some(())
    });
    let voters = roles(&cluster, leader).iter().filter(|(_, role)| role == "voter").count();
    assert_eq!(voters, 3, "{:?}", roles(&cluster, leader));

    // A linearizable read on the rebuilt node sees the last acknowledged write; after it, its
    // own state (stale reads: this node's applied state) holds every acknowledged write.
    let mut rebuilt = cluster.redis(follower);
    let last: String = rebuilt.get(format!("while-down-{:05}", WHILE_DOWN - 1)).unwrap();
    assert_eq!(last, format!("later-{}", WHILE_DOWN - 1));
    let () = redis::cmd("READMODE").arg("stale").query(&mut rebuilt).unwrap();
    for i in 0..BEFORE {
        let value: Option<String> = rebuilt.get(format!("repair-key-{i:05}")).unwrap();
        assert_eq!(value, Some(format!("value-{i}")), "key {i}");
    }
    for i in 0..WHILE_DOWN {
        let value: Option<String> = rebuilt.get(format!("while-down-{i:05}")).unwrap();
        assert_eq!(value, Some(format!("later-{i}")), "key {i}");
    }
    let keys = |node| cluster.status(node).unwrap()["keys"].as_u64().unwrap();
    assert_eq!(keys(follower), (BEFORE + WHILE_DOWN) as u64);
    assert_eq!(keys(follower), keys(leader));
    // And it takes writes again as a voter.
    let _: () = rebuilt.set("after-repair", "1").unwrap();
}

/// Refusals decided from the directory alone, before any cluster is asked: a healthy log has
/// nothing to repair, and a damaged hard state means the node's votes are unknown.
#[test]
fn repair_refuses_a_healthy_log_and_a_damaged_hard_state() {
    use bytes::Bytes;
    use conclave_core::{Entry, HardState, Index, NodeId, Term};
    use conclave_storage::{FileStore, LogStore, Options};

    let dir = tempfile::tempdir().unwrap();
    let mut store = FileStore::open(dir.path(), &Options::default()).unwrap();
    store.append(&[Entry::command(Index(1), Term(2), Bytes::from_static(b"x"))]).unwrap();
    store.sync().unwrap();
    let hard_state = HardState { term: Term(2), vote: Some(NodeId(1)), commit: Index(1) };
    store.save_hard_state(&hard_state).unwrap();
    drop(store);
    let path = dir.path().to_str().unwrap();
    // Port 9 on loopback: nothing listens there, and nothing must be asked anyway.
    let repair = ["wal", "repair", "--data-dir", path, "--id", "1", "--admin", "127.0.0.1:9"];
    let out = conclave(&repair, None);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("nothing to repair"), "{}", text(&out.stderr));

    let hard = dir.path().join("hard-state");
    let mut bytes = std::fs::read(&hard).unwrap();
    bytes[8] ^= 0x01;
    std::fs::write(&hard, bytes).unwrap();
    let out = conclave(&repair, None);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("hard state (term and vote) is damaged") && err.contains("never used before"),
        "{err}"
    );
    assert!(damaged_folders(dir.path()).is_empty());
}
