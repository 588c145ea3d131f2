//! Pure decision of the Connect workers' rolling restart. The workers are an `OnDelete`
//! StatefulSet, so a pod-template change restarts no worker by itself: the operator
//! deletes one out-of-date worker at a time, and the next only once every worker is back
//! (ready, i.e. `GET /health` answers: it joined the group) and Connect reports every
//! connector and task assigned to a live worker and not rebalancing (no `UNASSIGNED` or
//! `RESTARTING`; `FAILED` does not hold the roll up, it is the connector's own problem).

/// One worker pod as observed.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct WorkerPod {
    /// Pod name.
    pub name: String,
    /// Pod IP (Connect's worker id is `ip:8083`).
    pub ip: Option<String>,
    /// Ready: the readiness probe (`GET /health`) passes, so the worker is in the group.
    pub ready: bool,
    /// Runs the StatefulSet's current template revision.
    pub up_to_date: bool,
    /// Being deleted.
    pub terminating: bool,
}

/// One connector or task as Connect reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    /// `connector` or `connector/task`.
    pub what: String,
    /// RUNNING, PAUSED, STOPPED, FAILED, UNASSIGNED, RESTARTING.
    pub state: String,
    /// `host:port` of the worker running it.
    pub worker_id: Option<String>,
}

/// The next step of the roll.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RollStep {
    /// Every worker runs the current template.
    Done,
    /// Not now, with why.
    Wait(String),
    /// Delete this pod (the StatefulSet recreates it with the current template).
    Restart(String),
}

/// States in which an assignment is not moving.
fn settled(state: &str) -> bool {
    matches!(state, "RUNNING" | "PAUSED" | "STOPPED" | "FAILED")
}

/// Decides the next step for `pods` (of a StatefulSet of `replicas`), given Connect's view
/// `assignments` (`None`: the REST API did not answer).
pub fn next_step(
    pods: &[WorkerPod],
    replicas: i32,
    assignments: Option<&[Assignment]>,
    rest_port: i32,
) -> RollStep {
    let mut stale: Vec<&WorkerPod> = pods
        .iter()
        .filter(|p| !p.up_to_date && !p.terminating)
        .collect();
    if stale.is_empty() {
        return RollStep::Done;
    }
    stale.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(p) = pods.iter().find(|p| p.terminating) {
        return RollStep::Wait(format!("worker {} is stopping", p.name));
    }
    // A stale worker that is not ready serves nothing: replace it first.
    if let Some(p) = stale.iter().find(|p| !p.ready) {
        return RollStep::Restart(p.name.clone());
    }
    let ready = pods.iter().filter(|p| p.ready).count();
    if (ready as i64) < i64::from(replicas) {
        return RollStep::Wait(format!(
            "{ready}/{replicas} workers ready (joined the group)"
        ));
    }
    let Some(assignments) = assignments else {
        return RollStep::Wait("the Connect REST API did not answer".into());
    };
    let live: Vec<String> = pods
        .iter()
        .filter(|p| p.ready)
        .filter_map(|p| p.ip.as_ref().map(|ip| format!("{ip}:{rest_port}")))
        .collect();
    for a in assignments {
        if !settled(&a.state) {
            return RollStep::Wait(format!("{} is {} (rebalancing)", a.what, a.state));
        }
        if a.state == "STOPPED" {
            continue;
        }
        match &a.worker_id {
            Some(w) if live.contains(w) => {}
            Some(w) => {
                return RollStep::Wait(format!(
                    "{} is still reported on {w}, not a live worker (rebalancing)",
                    a.what
                ))
            }
            None => return RollStep::Wait(format!("{} has no worker yet", a.what)),
        }
    }
    RollStep::Restart(stale[0].name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, ip: &str, ready: bool, up_to_date: bool) -> WorkerPod {
        WorkerPod {
            name: name.into(),
            ip: Some(ip.into()),
            ready,
            up_to_date,
            terminating: false,
        }
    }

    fn on(what: &str, state: &str, ip: &str) -> Assignment {
        Assignment {
            what: what.into(),
            state: state.into(),
            worker_id: Some(format!("{ip}:8083")),
        }
    }

    #[test]
    fn up_to_date_workers_need_nothing() {
        let pods = [
            pod("c-0", "10.0.0.1", true, true),
            pod("c-1", "10.0.0.2", true, true),
        ];
        assert_eq!(next_step(&pods, 2, None, 8083), RollStep::Done);
    }

    #[test]
    fn one_worker_at_a_time_once_everything_runs_on_live_workers() {
        let pods = [
            pod("c-0", "10.0.0.1", true, false),
            pod("c-1", "10.0.0.2", true, false),
        ];
        let a = [
            on("src", "RUNNING", "10.0.0.1"),
            on("src/0", "RUNNING", "10.0.0.2"),
        ];
        assert_eq!(
            next_step(&pods, 2, Some(&a), 8083),
            RollStep::Restart("c-0".into())
        );
    }

    #[test]
    fn waits_while_a_worker_stops_or_is_not_back_in_the_group() {
        let mut stopping = pod("c-0", "10.0.0.1", true, false);
        stopping.terminating = true;
        let pods = [stopping, pod("c-1", "10.0.0.2", true, false)];
        assert!(
            matches!(next_step(&pods, 2, Some(&[]), 8083), RollStep::Wait(m) if m.contains("stopping"))
        );
        // The restarted c-0 is up to date but not ready (not in the group yet): c-1 waits.
        let pods = [
            pod("c-0", "10.0.0.3", false, true),
            pod("c-1", "10.0.0.2", true, false),
        ];
        assert!(
            matches!(next_step(&pods, 2, Some(&[]), 8083), RollStep::Wait(m) if m.contains("1/2"))
        );
        // Not yet recreated at all.
        let pods = [pod("c-1", "10.0.0.2", true, false)];
        assert!(matches!(
            next_step(&pods, 2, Some(&[]), 8083),
            RollStep::Wait(_)
        ));
    }

    #[test]
    fn waits_for_tasks_to_rebalance_onto_live_workers() {
        let pods = [
            pod("c-0", "10.0.0.3", true, true),
            pod("c-1", "10.0.0.2", true, false),
        ];
        for (a, why) in [
            (on("src/0", "UNASSIGNED", "10.0.0.1"), "rebalancing"),
            (on("src/0", "RESTARTING", "10.0.0.3"), "rebalancing"),
            // Still reported on the deleted worker's address.
            (on("src/0", "RUNNING", "10.0.0.1"), "not a live worker"),
        ] {
            let step = next_step(&pods, 2, Some(std::slice::from_ref(&a)), 8083);
            assert!(
                matches!(&step, RollStep::Wait(m) if m.contains(why)),
                "{a:?}: {step:?}"
            );
        }
        assert!(matches!(next_step(&pods, 2, None, 8083), RollStep::Wait(m) if m.contains("REST")));
        // Settled: the next stale worker.
        let a = [
            on("src/0", "RUNNING", "10.0.0.3"),
            on("sink", "FAILED", "10.0.0.2"),
            Assignment {
                what: "old".into(),
                state: "STOPPED".into(),
                worker_id: None,
            },
        ];
        assert_eq!(
            next_step(&pods, 2, Some(&a), 8083),
            RollStep::Restart("c-1".into())
        );
    }

    #[test]
    fn an_unready_stale_worker_is_replaced_first() {
        let pods = [
            pod("c-0", "10.0.0.1", true, false),
            pod("c-1", "10.0.0.2", false, false),
        ];
        assert_eq!(
            next_step(&pods, 2, None, 8083),
            RollStep::Restart("c-1".into())
        );
    }
}
