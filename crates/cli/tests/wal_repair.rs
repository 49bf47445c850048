//! A node whose log is corrupted in the middle refuses to start, naming the file and offset, and
//! `conclave wal repair` rebuilds it from its peers: removed, its files set aside, added back as
//! a learner, promoted once caught up, with every acknowledged write on it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use common::{eventually, http_with_headers, ProcCluster, WAIT};
use redis::Commands;

const TOKEN: &str = "the repair test's admin token";
/// Writes acknowledged before the follower is stopped, by default.
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

/// A 3-node cluster (admin token on, `extra` flags) with `before` acknowledged writes; then a
/// follower is killed, `WHILE_DOWN` more writes are acknowledged by the other two, and a byte of
/// the follower's record holding `key` is flipped. Returns the cluster, the leader, the
/// follower, and the damaged segment with its bytes.
fn cluster_with_a_corrupted_follower(
    extra: &[&str],
    before: usize,
    key: usize,
) -> (ProcCluster, usize, usize, PathBuf, Vec<u8>) {
    let mut cluster = ProcCluster::new(3, 3);
    cluster.admin_token = Some(TOKEN.into());
    cluster.extra.extend(extra.iter().map(|flag| flag.to_string()));
    cluster.start_all();
    let leader = cluster.wait_leader();
    let mut writer = cluster.redis(leader);
    for i in 0..before {
        let _: () = writer.set(format!("repair-key-{i:05}"), format!("value-{i}")).unwrap();
    }
    let follower = (leader + 1) % 3;
    cluster.kill(follower);
    // Acknowledged by the other two alone: the rebuilt node must get these from its peers too.
    for i in 0..WHILE_DOWN {
        let _: () = writer.set(format!("while-down-{i:05}"), format!("later-{i}")).unwrap();
    }
    // A flipped byte mid-log, with valid records after it: corruption, not a torn tail.
    // The node recorded its id in its directory at first start.
    let owner = std::fs::read_to_string(cluster.data_dir(follower).join("node-id")).unwrap();
    assert_eq!(owner, format!("{}\n", follower + 1));
    let needle = format!("repair-key-{key:05}");
    let (segment, bytes) = corrupt_record_holding(&cluster.data_dir(follower), needle.as_bytes());
    (cluster, leader, follower, segment, bytes)
}

/// Starts node `i` and waits for it to exit; returns whether it succeeded.
fn start_and_wait_for_exit(cluster: &mut ProcCluster, i: usize) -> bool {
    cluster.start(i);
    let deadline = Instant::now() + WAIT;
    loop {
        let child = cluster.children[i].as_mut().unwrap();
        if let Some(status) = child.try_wait().unwrap() {
            cluster.children[i] = None;
            return status.success();
        }
        assert!(Instant::now() < deadline, "the corrupted node kept running");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_corrupted_follower_refuses_to_start_and_is_rebuilt_from_the_leader_s_log() {
    let _ = rebuild(&[], BEFORE, 150, false);
}

/// With a compacted log on the leader, the rebuilt node starts from the leader's snapshot. The
/// leader keeps 1,000 entries behind each snapshot for slow followers, so more are written. The
/// repair itself waits for the node and promotes it.
#[test]
fn a_corrupted_follower_is_rebuilt_from_the_leader_s_snapshot() {
    let before = 1_300;
    let (cluster, follower) = rebuild(&["--snapshot-entries=64"], before, before - 10, true);
    let authorization = format!("Bearer {TOKEN}");
    let headers = [("Authorization", authorization.as_str())];
    let admin = cluster.ports[follower].admin;
    let (code, metrics) = http_with_headers(admin, "GET", "/metrics", &headers, "").unwrap();
    assert_eq!(code, 200, "{metrics}");
    let installed = metrics
        .lines()
        .find_map(|line| line.strip_prefix("conclave_snapshots_installed_total"))
        .and_then(|rest| rest.split_whitespace().last()?.parse::<f64>().ok());
    assert!(installed.is_some_and(|n| n >= 1.0), "{metrics}");
}

/// The whole procedure, promoting by hand or with `--promote-within`; returns the cluster and
/// the rebuilt node, still running.
fn rebuild(
    extra: &[&str],
    before: usize,
    key: usize,
    promote_within: bool,
) -> (ProcCluster, usize) {
    let (mut cluster, leader, follower, segment, damaged_bytes) =
        cluster_with_a_corrupted_follower(extra, before, key);
    let id = (follower + 1).to_string();
    let data_dir = cluster.data_dir(follower);
    assert!(!start_and_wait_for_exit(&mut cluster, follower));
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

    let id_number: u64 = id.parse().unwrap();
    let stdout = if promote_within {
        // The repair waits for the node to be started and catch up, then promotes it itself.
        let mut repair: Vec<&str> = repair.to_vec();
        repair.extend(["--promote-within", "60"]);
        let child = Command::new(env!("CARGO_BIN_EXE_conclave"))
            .args(&repair)
            .env("CONCLAVE_ADMIN_TOKEN", TOKEN)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary runs");
        eventually("the node back as a learner", || {
            roles(&cluster, leader).contains(&(id_number, "learner".into())).then_some(())
        });
        assert!(!segment.exists());
        cluster.start(follower);
        let out = child.wait_with_output().unwrap();
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{stdout}{}\n{}", text(&out.stderr), cluster.logs());
        assert!(stdout.contains("promoted node"), "{stdout}");
        stdout
    } else {
        let out = conclave(&repair, Some(TOKEN));
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{stdout}{}\n{}", text(&out.stderr), cluster.logs());
        assert!(stdout.contains("conclave cluster --admin"), "{stdout}");
        assert!(roles(&cluster, leader).contains(&(id_number, "learner".into())));
        assert!(!segment.exists());
        // Started as before, it catches up as a learner and is promoted once it has.
        cluster.start(follower);
        let promote = ["cluster", "--admin", &leader_admin, "promote", &id];
        eventually("the promotion of the rebuilt node", || {
            conclave(&promote, Some(TOKEN)).status.success().then_some(())
        });
        stdout
    };
    assert!(stdout.contains("set aside in") && stdout.contains(name), "{stdout}");
    // Set aside, byte for byte, not deleted.
    let folders = damaged_folders(&data_dir);
    assert_eq!(folders.len(), 1, "{folders:?}");
    assert_eq!(std::fs::read(folders[0].join(name)).unwrap(), damaged_bytes);
    let voters = roles(&cluster, leader).iter().filter(|(_, role)| role == "voter").count();
    assert_eq!(voters, 3, "{:?}", roles(&cluster, leader));

    // A linearizable read on the rebuilt node sees the last acknowledged write; after it, its
    // own state (stale reads: this node's applied state) holds every acknowledged write.
    let mut rebuilt = cluster.redis(follower);
    let last: String = rebuilt.get(format!("while-down-{:05}", WHILE_DOWN - 1)).unwrap();
    assert_eq!(last, format!("later-{}", WHILE_DOWN - 1));
    let () = redis::cmd("READMODE").arg("stale").query(&mut rebuilt).unwrap();
    for i in 0..before {
        let value: Option<String> = rebuilt.get(format!("repair-key-{i:05}")).unwrap();
        assert_eq!(value, Some(format!("value-{i}")), "key {i}");
    }
    for i in 0..WHILE_DOWN {
        let value: Option<String> = rebuilt.get(format!("while-down-{i:05}")).unwrap();
        assert_eq!(value, Some(format!("later-{i}")), "key {i}");
    }
    let keys = |node| cluster.status(node).unwrap()["keys"].as_u64().unwrap();
    assert_eq!(keys(follower), (before + WHILE_DOWN) as u64);
    assert_eq!(keys(follower), keys(leader));
    // And it takes writes again as a voter.
    let _: () = rebuilt.set("after-repair", "1").unwrap();
    (cluster, follower)
}

/// With one of the two other voters down too, removing the damaged node could not commit: the
/// repair refuses and changes nothing, neither the membership nor the files.
#[test]
fn repair_refuses_without_a_majority_of_the_other_voters() {
    let (mut cluster, leader, follower, segment, damaged_bytes) =
        cluster_with_a_corrupted_follower(&[], BEFORE, 150);
    let id = (follower + 1).to_string();
    let other = (leader + 2) % 3;
    cluster.kill(other);
    let leader_admin = cluster.ports[leader].admin.to_string();
    let data_dir = cluster.data_dir(follower);
    let dir = data_dir.to_str().unwrap();
    let repair = ["wal", "repair", "--data-dir", dir, "--id", &id, "--admin", &leader_admin];
    // The leader notices the lost link within its election timeout; until then it may still
    // count the killed node as connected, so the refusal is polled for with a deadline.
    let err = eventually("the refusal", || {
        let out = conclave(&repair, Some(TOKEN));
        assert!(!out.status.success(), "{}", text(&out.stdout));
        let err = text(&out.stderr);
        (err.contains("other voters are connected") || err.contains("no leader")).then_some(err)
    });
    assert!(err.contains("nothing was changed"), "{err}");
    assert_eq!(std::fs::read(&segment).unwrap(), damaged_bytes);
    assert!(damaged_folders(&data_dir).is_empty());
    cluster.start(other);
    let leader = cluster.wait_leader();
    assert!(roles(&cluster, leader).contains(&(id.parse().unwrap(), "voter".into())));
}

/// A healthy store of three entries at term 2 (node 1's vote) in a new temporary directory.
fn small_store() -> tempfile::TempDir {
    use bytes::Bytes;
    use conclave_core::{Entry, HardState, Index, NodeId, Term};
    use conclave_storage::{FileStore, LogStore, Options};

    let dir = tempfile::tempdir().unwrap();
    let mut store = FileStore::open(dir.path(), &Options::default()).unwrap();
    let entries: Vec<Entry> = (1..=3)
        .map(|i| Entry::command(Index(i), Term(2), Bytes::from(format!("value-{i}"))))
        .collect();
    store.append(&entries).unwrap();
    store.sync().unwrap();
    let hard_state = HardState { term: Term(2), vote: Some(NodeId(1)), commit: Index(3) };
    store.save_hard_state(&hard_state).unwrap();
    dir
}

/// Refusals decided from the directory alone, before any cluster is asked: a healthy log has
/// nothing to repair, and a damaged or missing hard state means the node's votes are unknown.
#[test]
fn repair_refuses_a_healthy_log_and_a_damaged_or_missing_hard_state() {
    let dir = small_store();
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

    // A damaged log with no hard state at all: the votes were lost just the same.
    std::fs::remove_file(&hard).unwrap();
    let segment = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "seg"))
        .unwrap();
    let mut bytes = std::fs::read(&segment).unwrap();
    // Inside the first record, with valid ones after it: corruption, not a torn tail.
    bytes[12] ^= 0x01;
    std::fs::write(&segment, &bytes).unwrap();
    let out = conclave(&repair, None);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("holds no hard state") && err.contains("never used before"), "{err}");
    assert_eq!(std::fs::read(&segment).unwrap(), bytes);
}

/// A directory emptied for one node does not start under another id: it would be a voter with an
/// empty log, where the cluster expects a learner.
#[test]
fn a_directory_rebuilt_for_one_node_refuses_another_id() {
    use conclave_core::NodeId;

    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("node");
    std::fs::create_dir(&data_dir).unwrap();
    conclave_storage::set_aside(&data_dir, "20260101T000000Z", NodeId(2)).unwrap();
    let err = refused_start_as_node_1(&data_dir);
    assert!(err.contains("for node 2, but this node is 1"), "{err}");
}

/// A directory an earlier repair rebuilt for one node is not repaired under another id: the
/// wrong node would be taken out of the cluster.
#[test]
fn repair_refuses_a_directory_rebuilt_for_another_node() {
    repair_is_refused_when(conclave_storage::REBUILT_FOR_FILE, "was rebuilt for node 2");
}

/// A directory whose node-id file names another node is not repaired under this id, even when
/// it was never repaired before: the wrong node would be taken out of the cluster.
#[test]
fn repair_refuses_a_directory_that_belongs_to_another_node() {
    repair_is_refused_when(conclave_storage::NODE_ID_FILE, "belongs to node 2");
}

/// Runs a repair under id 1 on a damaged store whose `file` names node 2, and checks that it is
/// refused with `says`, changing nothing.
fn repair_is_refused_when(file: &str, says: &str) {
    let dir = small_store();
    let (segment, bytes) = corrupt_record_holding(dir.path(), b"value-1");
    std::fs::write(dir.path().join(file), "2\n").unwrap();
    let path = dir.path().to_str().unwrap();
    // Port 9 on loopback: nothing listens there, and nothing must be asked anyway.
    let repair = ["wal", "repair", "--data-dir", path, "--id", "1", "--admin", "127.0.0.1:9"];
    let out = conclave(&repair, None);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains(says) && err.contains("nothing was changed"), "{err}");
    assert_eq!(std::fs::read(&segment).unwrap(), bytes);
    assert!(damaged_folders(dir.path()).is_empty());
}

/// A data directory does not start under another node's id, and a refused start leaves the
/// recorded id as it was.
#[test]
fn a_directory_of_one_node_refuses_another_id() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("node");
    std::fs::create_dir(&data_dir).unwrap();
    std::fs::write(data_dir.join(conclave_storage::NODE_ID_FILE), "2\n").unwrap();
    let err = refused_start_as_node_1(&data_dir);
    assert!(err.contains("belongs to node 2") && err.contains("not node 1"), "{err}");
    assert_eq!(std::fs::read_to_string(data_dir.join("node-id")).unwrap(), "2\n");
}

/// A store that a running node holds is refused before the cluster is asked anything.
#[test]
fn repair_refuses_a_store_in_use() {
    let dir = small_store();
    let (segment, bytes) = corrupt_record_holding(dir.path(), b"value-1");
    // Standing in for the running node: the same lock a node's open store holds.
    let held = conclave_storage::hold(dir.path()).unwrap();
    let path = dir.path().to_str().unwrap();
    let repair = ["wal", "repair", "--data-dir", path, "--id", "1", "--admin", "127.0.0.1:9"];
    let out = conclave(&repair, None);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("is in use") && err.contains("nothing was changed"), "{err}");
    drop(held);
    assert_eq!(std::fs::read(&segment).unwrap(), bytes);
    assert!(damaged_folders(dir.path()).is_empty());
}

/// Starts `conclave serve --id=1` on `data_dir`, expects it to refuse, and returns its stderr.
fn refused_start_as_node_1(data_dir: &std::path::Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_conclave"))
        .arg("serve")
        .arg("--id=1")
        .arg(format!("--data-dir={}", data_dir.display()))
        .args(["--peer-addr=127.0.0.1:0", "--client-addr=127.0.0.1:0", "--admin-addr=127.0.0.1:0"])
        .output()
        .expect("the binary runs");
    assert!(!out.status.success(), "the node started on a directory made for another");
    text(&out.stderr)
}
