//! Carrying out the nemesis's faults, random or scripted, and writing each one down.
//!
//! The nemesis decides (`nemesis.rs`); this file acts: it starts a fault on the network, a node
//! or a disk, schedules its undo, and appends it to the run's fault schedule, which is what
//! [`Simulation::fault_schedule`] returns and what a replay follows. Both modes go through
//! [`begin_fault`](Simulation::begin_fault), so a scripted replay does, event for event, what the
//! recorded run did.

use conclave_core::{NodeId, Protocol};

use crate::nemesis::NemesisEvent;
use crate::options::Fault;
use crate::schedule::{FaultAction, ScheduledFault, FAIL_SYNC_DOWN_DEFAULT_US};
use crate::simulation::{Event, Simulation};
use crate::trace::TraceEvent;
use crate::violation::Breach;

impl<P: Protocol> Simulation<P> {
    /// The faults the nemesis has started so far in [`run`](Simulation::run), in order, each with
    /// its start time and duration: the random nemesis's choices written down, or the part of a
    /// given schedule that was carried out (faults due after the op phase ended never start).
    /// Put into [`Options::fault_schedule`](crate::Options::fault_schedule) with the same seed,
    /// it replays the run.
    pub fn fault_schedule(&self) -> &[ScheduledFault] {
        self.workload.as_ref().map_or(&[], |workload| workload.schedule.as_slice())
    }

    /// A nemesis event fired: start a fault (and schedule its undo), or undo one.
    pub(crate) fn on_nemesis(&mut self, event: NemesisEvent) -> Result<(), Breach> {
        if matches!(event, NemesisEvent::Step | NemesisEvent::Scripted { .. }) {
            // Counted even once the nemesis stopped: the step already queued then still fires.
            self.counters.nemesis_steps += 1;
        }
        let Some(workload) = self.workload.as_mut() else { return Ok(()) };
        if workload.nemesis.is_idle() {
            return Ok(()); // Stopped: the end of the op phase already undid everything.
        }
        match event {
            NemesisEvent::Step => {
                let live: Vec<bool> = self.world.nodes.iter().map(|slot| slot.is_up()).collect();
                let writing: Vec<bool> =
                    self.world.nodes.iter().map(|slot| slot.disk.is_writing()).collect();
                let leader = self.leader();
                let membership =
                    leader.and_then(|l| self.node(l)).and_then(|p| p.membership()).cloned();
                let workload = self.workload.as_mut().expect("workload started");
                let plan = workload.nemesis.plan(&live, &writing, leader, membership.as_ref());
                let next_us = self.world.now_us + workload.nemesis.step_delay_us();
                self.world.queue.push(next_us, Event::Nemesis(NemesisEvent::Step));
                if let Some(plan) = plan {
                    self.begin_fault(plan.action, plan.duration_us)?;
                }
            }
            NemesisEvent::Scripted { index } => {
                if let Some((at_us, next)) =
                    workload.nemesis.scripted_after(Some(index), self.world.now_us)
                {
                    self.world.queue.push(at_us, Event::Nemesis(next));
                }
                let fault = workload.nemesis.scripted_fault(index).clone();
                self.begin_fault(fault.action, fault.duration_us)?;
            }
            NemesisEvent::Heal { episode } => {
                if workload.nemesis.take_heal(episode) {
                    self.heal();
                }
            }
            NemesisEvent::Restart { node } => {
                self.restart_node(node)?;
            }
            NemesisEvent::Calm { fault, episode } => {
                if workload.nemesis.take_calm(fault, episode) {
                    self.calm(fault);
                }
            }
            NemesisEvent::Disarm { node, episode } => {
                if workload.nemesis.take_disarm(node, episode) {
                    self.fail_next_sync(node, false);
                }
            }
        }
        Ok(())
    }

    /// Starts `action` now: records it in the schedule, schedules its undo after `duration_us`,
    /// and carries it out.
    fn begin_fault(&mut self, action: FaultAction, duration_us: Option<u64>) -> Result<(), Breach> {
        let now_us = self.world.now_us;
        let workload = self.workload.as_mut().expect("workload started");
        let episode = workload.schedule.len() as u64;
        let undo = workload.nemesis.begin(&action, episode);
        workload.schedule.push(ScheduledFault {
            at_us: now_us,
            action: action.clone(),
            duration_us,
        });
        if let (Some(undo), Some(duration_us)) = (undo, duration_us) {
            self.world.queue.push(now_us + duration_us, Event::Nemesis(undo));
        }
        self.start_fault(action)
    }

    /// Ends a weather episode of `fault`: the network (or the disks) back to normal.
    fn calm(&mut self, fault: Fault) {
        match fault {
            Fault::Drop => self.set_drop_probability(self.options.drop_probability),
            Fault::Duplicate => self.set_duplicate_probability(self.options.duplicate_probability),
            Fault::Delay => self.set_delay_spike(false),
            Fault::Reorder => self.set_reorder(false),
            Fault::SlowDisk => self.set_slow_disks(&[]),
            Fault::Partition
            | Fault::Crash
            | Fault::TornWrite
            | Fault::FsyncError
            | Fault::Membership
            | Fault::Transfer => unreachable!("not weather"),
        }
    }

    fn start_fault(&mut self, action: FaultAction) -> Result<(), Breach> {
        match action {
            FaultAction::Partition { groups } => {
                let groups: Vec<&[NodeId]> = groups.iter().map(Vec::as_slice).collect();
                self.partition(&groups);
            }
            FaultAction::Cut { links } => self.cut_links(&links),
            FaultAction::Crash { node } | FaultAction::CrashPoint { node, .. } => {
                self.crash(node);
            }
            FaultAction::Drop { probability } => self.set_drop_probability(probability),
            FaultAction::Duplicate { probability } => self.set_duplicate_probability(probability),
            FaultAction::Delay => self.set_delay_spike(true),
            FaultAction::Reorder => self.set_reorder(true),
            FaultAction::PowerCut { node } => {
                self.power_cut(node);
            }
            FaultAction::FailSync { node, .. } => self.fail_next_sync(node, true),
            FaultAction::SlowDisk { nodes } => self.set_slow_disks(&nodes),
            FaultAction::ChangeMembership { change } => {
                // Asked of the leader of the moment: the one the random nemesis planned with, and
                // in a shrunk replay whoever leads then (none: nothing to ask).
                let Some(leader) = self.leader() else { return Ok(()) };
                let request = format!("{change:?}");
                let result =
                    self.slot_mut(leader).protocol.as_mut().map(|p| p.change_membership(change));
                self.admin_done(
                    leader,
                    request,
                    result.map(|r| r.map(|_| ()).map_err(|e| e.to_string())),
                );
                return self.after_call(leader);
            }
            FaultAction::TransferLeader { target } => {
                let Some(leader) = self.leader() else { return Ok(()) };
                let request = format!("TransferLeader({target})");
                let result =
                    self.slot_mut(leader).protocol.as_mut().map(|p| p.transfer_leadership(target));
                self.admin_done(leader, request, result.map(|r| r.map_err(|e| e.to_string())));
                return self.after_call(leader);
            }
        }
        Ok(())
    }

    /// Traces and counts an administrative request of the nemesis (`None`: the node was down).
    fn admin_done(&mut self, node: NodeId, request: String, result: Option<Result<(), String>>) {
        let outcome = match result {
            None => return,
            Some(Ok(())) => "ok".to_string(),
            Some(Err(error)) => error,
        };
        let workload = self.workload_mut();
        workload.admin_requests.0 += 1;
        if outcome == "ok" {
            workload.admin_requests.1 += 1;
        }
        self.trace.record(self.world.now_us, TraceEvent::Admin { node, request, outcome });
    }

    /// Lets the nemesis crash `id` at this crash point (it just sent promises); records the crash
    /// and schedules its restart. True if it crashed.
    pub(crate) fn maybe_crash_at_point(&mut self, id: NodeId) -> bool {
        let now_us = self.world.now_us;
        let live: Vec<bool> = self.world.nodes.iter().map(|slot| slot.is_up()).collect();
        let Some(workload) = self.workload.as_mut() else { return false };
        let seen = &mut workload.crash_points_seen[(id.0 - 1) as usize];
        *seen = if seen.0 == now_us { (now_us, seen.1 + 1) } else { (now_us, 0) };
        let ordinal = seen.1;
        let Some(down_us) = workload.nemesis.crash_point(id, &live, now_us, ordinal) else {
            return false;
        };
        let action = FaultAction::CrashPoint { node: id, ordinal };
        workload.schedule.push(ScheduledFault {
            at_us: now_us,
            action,
            duration_us: Some(down_us),
        });
        self.crash(id);
        self.world.queue.push(now_us + down_us, Event::Nemesis(NemesisEvent::Restart { node: id }));
        true
    }

    /// How long `id`, stopped by a failed sync, stays down: drawn by the random nemesis and
    /// written into the fault that armed the failure, or read from it when following a schedule.
    /// `None` outside a random run (with the manual API the node stays down).
    pub(crate) fn sync_failure_down_us(&mut self, id: NodeId) -> Option<u64> {
        let workload = self.workload.as_mut()?;
        let armed = workload.nemesis.sync_failure_armed(id);
        let fault = armed.and_then(|episode| workload.schedule.get_mut(episode as usize));
        let down_us = match fault {
            Some(ScheduledFault { action: FaultAction::FailSync { down_us, .. }, .. }) => down_us,
            _ if workload.nemesis.is_scripted() => return Some(FAIL_SYNC_DOWN_DEFAULT_US),
            _ => return Some(workload.nemesis.restart_delay_us()),
        };
        if workload.nemesis.is_scripted() {
            return Some(down_us.unwrap_or(FAIL_SYNC_DOWN_DEFAULT_US));
        }
        let drawn = workload.nemesis.restart_delay_us();
        *down_us = Some(drawn);
        Some(drawn)
    }
}
