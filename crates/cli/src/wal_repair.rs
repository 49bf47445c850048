//! `conclave wal repair`: rebuild a node whose storage is damaged from its peers, safely.
//!
//! A node that lost part of its log may have been one of the majority that committed an entry;
//! back as a voter with a shorter log, it could elect a leader missing that entry. So the node
//! never comes back as the voter it was. As etcd does for a damaged member, it leaves the
//! membership and returns as a new, empty learner:
//!
//! 1. The cluster, through its leader, removes the node. That change commits on a majority of
//!    the remaining voters, each of which then holds every committed entry (they hold the
//!    removal, which follows them all). Nothing is moved until this has succeeded.
//! 2. The store's files move into `DATA_DIR/damaged-STAMP/` (nothing is deleted); what stays is
//!    an empty log and the old term and vote, so the node can never vote twice in a term,
//!    which is why it may keep its id.
//! 3. The leader adds it back as a learner: it receives a snapshot and the log, and neither
//!    votes nor counts toward a commit until an operator promotes it (`conclave cluster
//!    promote`), which the leader allows only once it has caught up.
//!
//! It refuses, changing nothing, when the log is not damaged, when the hard state is damaged or
//! missing (the node's votes are unknown, so it must not return under the same id), when the
//! node still runs, when there is no leader or too few of the other voters are connected to it
//! for the removal to commit, and when the admin port wants a token it was not given.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use conclave_core::NodeId;
use serde_json::{json, Value};

use crate::cluster_cmd::{hint_if_unauthorized, post_to_leader, status_via, Admin, AdminAccess};

/// Flags of `conclave wal repair`.
#[derive(Args, Debug)]
pub struct RepairArgs {
    /// The damaged node's data directory (its `--data-dir`); the node must be stopped.
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// The damaged node's id.
    #[arg(long)]
    pub id: u64,
    /// The node's peer address, to add it back. By default the address the cluster knows; needed
    /// only when the node is no longer a member (a repair that stopped after removing it).
    #[arg(long, value_name = "HOST:PORT")]
    pub peer_addr: Option<SocketAddr>,
    /// After adding the node back, wait up to this many seconds for it to be started (by hand
    /// or by a service manager) and catch up, then promote it to voter. Without it, promote by
    /// hand with `conclave cluster promote`.
    #[arg(long, value_name = "SECONDS")]
    pub promote_within: Option<u64>,
    /// A running node's admin port, and the admin token.
    #[command(flatten)]
    pub access: AdminAccess,
}

/// What the leader's status says about the damaged node.
#[derive(Debug, PartialEq, Eq)]
struct Plan {
    /// Whether the node is still a member (voter or learner) and must be removed first.
    member: bool,
    /// The peer address to add it back with.
    peer_addr: SocketAddr,
}

/// Runs the repair; returns the exit code (errors are refusals).
pub fn run(args: &RepairArgs) -> Result<i32> {
    let corruption = damage(&args.data_dir)?;
    outln!("damaged: {corruption}");
    check_owner(&args.data_dir, args.id)?;
    // Held until the files are moved: the node cannot start in between.
    let held = conclave_storage::hold(&args.data_dir).map_err(|error| match error {
        conclave_storage::StorageError::Locked { .. } => anyhow!(
            "{} is in use: node {} is running; stop it first; nothing was changed",
            args.data_dir.display(),
            args.id
        ),
        other => anyhow!("{other}; nothing was changed"),
    })?;
    let client = args.access.client()?;
    let token = client.token.as_deref();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let (code, body) = status_via(&client, args.access.admin, false).await?;
        hint_if_unauthorized(code, token);
        if code != 200 {
            bail!(
                "the admin port at {} answered {code}: {}; nothing was changed",
                args.access.admin,
                body.trim()
            );
        }
        let status: Value = serde_json::from_str(&body).context("the node's status")?;
        let plan = plan(&status, args.id, args.peer_addr)
            .map_err(|refusal| anyhow!("{refusal}; nothing was changed"))?;
        let admin = args.access.admin;
        if plan.member {
            let remove = json!({ "action": "remove", "id": args.id }).to_string();
            let (code, reply) = post_to_leader(&client, admin, "/members", &remove).await.context(
                "the removal's outcome is unknown and nothing was changed on disk; check \
                     `conclave cluster status` and run this again (with --peer-addr if the node \
                     is no longer a member)",
            )?;
            if code != 200 {
                bail!(
                    "the cluster did not remove node {}, so nothing was changed on disk: {code} {}",
                    args.id,
                    reply.trim()
                );
            }
            outln!("removed node {} from the membership", args.id);
        }
        let stamp = utc_stamp(SystemTime::now());
        let moved = held.set_aside(&stamp, NodeId(args.id)).with_context(|| {
            format!(
                "node {} is out of the membership, but its files could not be set aside; \
                     fix the cause and run this again with --peer-addr {}",
                args.id, plan.peer_addr
            )
        })?;
        outln!("set aside in {}:", moved.folder.display());
        for file in &moved.files {
            outln!("  {file}");
        }
        let vote = moved.kept.vote.map_or_else(|| "none".to_string(), |node| node.to_string());
        outln!("kept: term {}, vote {vote} (commit reset to 0)", moved.kept.term);
        let add = json!({ "action": "add-learner", "id": args.id, "peer_addr": plan.peer_addr })
            .to_string();
        let (code, reply) = post_to_leader(&client, admin, "/members", &add).await?;
        if code != 200 {
            bail!(
                "the damaged files are set aside, but adding node {} back as a learner failed \
                 ({code} {}); retry with `conclave cluster add {} {}`",
                args.id,
                reply.trim(),
                args.id,
                plan.peer_addr
            );
        }
        outln!("added node {} back as a learner at {}", args.id, plan.peer_addr);
        let Some(seconds) = args.promote_within else {
            outln!(
                "next: start the node as before; it copies the leader's snapshot and log. Once it \
                 has caught up, make it a voter again with `conclave cluster --admin {admin} \
                 promote {}` (refused until it has caught up).",
                args.id
            );
            return Ok(0);
        };
        outln!("waiting up to {seconds} s for node {} to start and catch up...", args.id);
        promote_when_caught_up(&client, admin, args.id, Duration::from_secs(seconds)).await?;
        outln!("promoted node {} to voter", args.id);
        Ok(0)
    })
}

/// Asks the leader to promote learner `id` until it agrees (it refuses a learner that has not
/// caught up) or `within` has passed.
async fn promote_when_caught_up(
    client: &Admin,
    admin: SocketAddr,
    id: u64,
    within: Duration,
) -> Result<()> {
    let promote = json!({ "action": "promote", "id": id }).to_string();
    let deadline = Instant::now() + within;
    loop {
        let answer = post_to_leader(client, admin, "/members", &promote).await;
        let last = match answer {
            Ok((200, _)) => return Ok(()),
            Ok((code, reply)) => format!("{code} {}", reply.trim()),
            Err(error) => format!("{error:#}"),
        };
        if Instant::now() >= deadline {
            bail!(
                "node {id} is a learner but was not promoted within {within:?} (last answer: \
                 {last}); start it if it is not running, and promote it with `conclave cluster \
                 promote {id}` once it has caught up"
            );
        }
        tokio::time::sleep(PROMOTE_RETRY).await;
    }
}

/// How often a refused promotion is asked again.
const PROMOTE_RETRY: Duration = Duration::from_millis(250);

/// The corruption that makes the store in `dir` unusable; an error when there is none, or when
/// the hard state is among the damage.
fn damage(dir: &Path) -> Result<conclave_storage::CorruptionError> {
    let report = conclave_storage::inspect(dir)
        .with_context(|| format!("cannot inspect {}", dir.display()))?;
    if let Some(bad) =
        report.problems.iter().find(|p| conclave_storage::is_hard_state_file(&p.file))
    {
        bail!(
            "{bad}\nthe hard state (term and vote) is damaged: this node may have voted in a term \
             it can no longer remember, so it must not come back under the same id. {NEW_ID}; \
             keep {} for inspection",
            dir.display()
        );
    }
    let corruption = match conclave_storage::verify(dir) {
        Ok(_) => bail!(
            "the log in {} verifies: nothing to repair (a torn tail is cut when the node starts)",
            dir.display()
        ),
        Err(corruption) => corruption,
    };
    // A node that wrote a log saved a term first: no hard state beside a damaged log means it
    // was lost, not that the node never voted.
    if report.hard_state.is_none() {
        bail!(
            "{corruption}\nand {} holds no hard state (term and vote): it was lost, so this node \
             may have voted in a term it can no longer remember and must not come back under the \
             same id. {NEW_ID}",
            dir.display()
        );
    }
    Ok(corruption)
}

/// Refuses a directory that belongs to another node (its `node-id` file, written at the node's
/// start, or an earlier repair's `rebuilt-for` file says so): a wrong `--id` would take a
/// different node out of the cluster.
fn check_owner(dir: &Path, id: u64) -> Result<()> {
    match conclave_storage::rebuilt_for(dir)? {
        Some(owner) if owner != NodeId(id) => bail!(
            "{} was rebuilt for node {owner} (its {} file says so), not node {id}: check --id; \
             nothing was changed",
            dir.display(),
            conclave_storage::REBUILT_FOR_FILE
        ),
        _ => {}
    }
    match conclave_storage::owner(dir)? {
        Some(owner) if owner != NodeId(id) => bail!(
            "{} belongs to node {owner} (its {} file says so), not node {id}: check --id; \
             nothing was changed",
            dir.display(),
            conclave_storage::NODE_ID_FILE
        ),
        _ => Ok(()),
    }
}

/// What to do when a node's votes are unknown.
const NEW_ID: &str =
    "Remove it (`conclave cluster remove ID`), then add an empty node under an id \
                      never used before (`conclave serve --join`, `conclave cluster add`)";

/// Decides from the leader's status whether the repair is safe, and how to add the node back.
fn plan(status: &Value, id: u64, peer_addr: Option<SocketAddr>) -> Result<Plan> {
    if status["role"] != "leader" {
        bail!(
            "no leader is elected among the running nodes: a majority of the other voters must \
             be up and connected before a node can be rebuilt from them"
        );
    }
    if status["id"] == id {
        bail!("node {id} is the leader, so it is running: stop it before repairing its storage");
    }
    if status["joint"] == true {
        bail!("a membership change is in progress; retry once it has finished");
    }
    let members = status["members"].as_array().map(Vec::as_slice).unwrap_or_default();
    let node = members.iter().find(|m| m["id"] == id);
    let Some(node) = node else {
        let Some(peer_addr) = peer_addr else {
            bail!("node {id} is not a member; give its --peer-addr to add it back");
        };
        return Ok(Plan { member: false, peer_addr });
    };
    if node["connected"] == true {
        bail!("node {id} is connected to the leader, so it is running: stop it first");
    }
    let others: Vec<&Value> =
        members.iter().filter(|m| m["role"] == "voter" && m["id"] != id).collect();
    let connected = others.iter().filter(|m| m["connected"] == true).count();
    if others.is_empty() || connected * 2 <= others.len() {
        bail!(
            "only {connected} of the {} other voters are connected to the leader: removing node \
             {id} could not commit; bring the others back first",
            others.len()
        );
    }
    let known = node["peer_addr"].as_str().and_then(|a| a.parse().ok());
    let Some(peer_addr) = peer_addr.or(known) else {
        bail!("the cluster does not know node {id}'s peer address; give it with --peer-addr");
    };
    Ok(Plan { member: true, peer_addr })
}

/// `time` as `YYYYMMDDTHHMMSSZ` in UTC, for the name of the folder damaged files go to.
fn utc_stamp(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (the proleptic Gregorian calendar, in 400-year eras).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z", rest / 3600, rest / 60 % 60, rest % 60)
}

#[cfg(test)]
mod tests {

    use super::*;

    fn status(members: Value) -> Value {
        json!({ "id": 1, "role": "leader", "joint": false, "members": members })
    }

    fn member(id: u64, role: &str, connected: bool) -> Value {
        let peer_addr = format!("127.0.0.1:{}", 7100 + id);
        json!({ "id": id, "role": role, "connected": connected, "peer_addr": peer_addr })
    }

    #[test]
    fn stamps_are_utc_calendar_times() {
        assert_eq!(utc_stamp(UNIX_EPOCH), "19700101T000000Z");
        let leap_day = UNIX_EPOCH + Duration::from_secs(1_709_210_096);
        assert_eq!(utc_stamp(leap_day), "20240229T123456Z");
    }

    #[test]
    fn a_stopped_voter_with_a_connected_majority_of_the_others_is_removed_then_re_added() {
        let members =
            json!([member(1, "voter", true), member(2, "voter", true), member(3, "voter", false)]);
        let plan = plan(&status(members), 3, None).unwrap();
        assert_eq!(plan, Plan { member: true, peer_addr: "127.0.0.1:7103".parse().unwrap() });
    }

    #[test]
    fn refuses_when_the_removal_could_not_commit() {
        let members =
            json!([member(1, "voter", true), member(2, "voter", false), member(3, "voter", false)]);
        let error = plan(&status(members), 3, None).unwrap_err().to_string();
        assert!(error.contains("only 1 of the 2 other voters"), "{error}");
        let alone = json!([member(1, "voter", true)]);
        assert!(plan(&status(alone), 1, None).is_err());
    }

    #[test]
    fn refuses_a_running_node_a_follower_s_answer_and_a_joint_configuration() {
        let members =
            json!([member(1, "voter", true), member(2, "voter", true), member(3, "voter", true)]);
        let error = plan(&status(members.clone()), 3, None).unwrap_err().to_string();
        assert!(error.contains("running"), "{error}");
        let mut follower = status(members.clone());
        follower["role"] = json!("follower");
        assert!(plan(&follower, 3, None).unwrap_err().to_string().contains("no leader"));
        let mut joint = status(members);
        joint["joint"] = json!(true);
        assert!(plan(&joint, 2, None).unwrap_err().to_string().contains("in progress"));
    }

    #[test]
    fn a_node_already_removed_needs_its_address() {
        let members = json!([member(1, "voter", true), member(2, "voter", true)]);
        assert!(plan(&status(members.clone()), 3, None).is_err());
        let addr: SocketAddr = "127.0.0.1:7999".parse().unwrap();
        let plan = plan(&status(members), 3, Some(addr)).unwrap();
        assert_eq!(plan, Plan { member: false, peer_addr: addr });
    }
}
