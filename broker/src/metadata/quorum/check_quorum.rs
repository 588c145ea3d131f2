//! Check-quorum (KIP-595): a leader cut off from a majority of the voters
//! stops acting as the active controller.
//!
//! Kafka's leader resigns once no majority has fetched from it for 1.5 ×
//! `controller.quorum.fetch.timeout.ms`. openraft 0.9 has no step-down: a
//! leader stays leader in its own eyes until it hears a higher term. So the
//! quorum watches how long ago a majority last acknowledged the leader
//! (openraft's `millis_since_quorum_ack`) and, past the timeout, reports no
//! leader: the local controller stops serving (NOT_CONTROLLER, so brokers
//! look for the real one) and the controller's timers stop, until a
//! majority answers again. The raft itself is unchanged: an isolated leader
//! could never commit anyway, and it follows a newer leader as soon as it
//! hears from it.

use std::time::{Duration, Instant};

/// What the leader knows of its contact with the voters, at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Contact {
    /// This node leads the raft.
    pub leading: bool,
    /// The number of voters.
    pub voters: usize,
    /// How long ago a majority of voters last acknowledged this leader
    /// (`None`: never, since it became leader).
    pub since_quorum_ack: Option<Duration>,
}

/// The check's state across observations.
#[derive(Debug)]
pub struct CheckQuorum {
    timeout: Duration,
    leading_since: Option<Instant>,
    resigned: bool,
}

/// A change of the check's verdict, to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No change.
    Same,
    /// The leader lost its majority: it stops acting as controller.
    Resigned,
    /// A majority answers again.
    Regained,
}

impl CheckQuorum {
    /// A check with this timeout.
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            leading_since: None,
            resigned: false,
        }
    }

    /// Whether the leader has resigned (see the module).
    pub fn resigned(&self) -> bool {
        self.resigned
    }

    /// Takes one observation at `now`.
    pub fn observe(&mut self, c: Contact, now: Instant) -> Verdict {
        let was = self.resigned;
        if !c.leading {
            self.leading_since = None;
            self.resigned = false;
        } else {
            let since = *self.leading_since.get_or_insert(now);
            // A lone voter is its own majority.
            self.resigned = c.voters > 1
                && match c.since_quorum_ack {
                    Some(ago) => ago > self.timeout,
                    None => now.duration_since(since) > self.timeout,
                };
        }
        match (was, self.resigned) {
            (false, true) => Verdict::Resigned,
            (true, false) if c.leading => Verdict::Regained,
            _ => Verdict::Same,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(3);

    fn leading(voters: usize, ago: Option<u64>) -> Contact {
        Contact {
            leading: true,
            voters,
            since_quorum_ack: ago.map(Duration::from_millis),
        }
    }

    #[test]
    fn a_leader_that_hears_from_no_majority_resigns_and_comes_back() {
        let mut c = CheckQuorum::new(T);
        let t0 = Instant::now();
        assert_eq!(c.observe(leading(3, Some(100)), t0), Verdict::Same);
        assert!(!c.resigned());
        assert_eq!(c.observe(leading(3, Some(2_900)), t0), Verdict::Same);
        assert_eq!(c.observe(leading(3, Some(3_100)), t0), Verdict::Resigned);
        assert!(c.resigned());
        assert_eq!(c.observe(leading(3, Some(9_000)), t0), Verdict::Same);
        assert_eq!(c.observe(leading(3, Some(20)), t0), Verdict::Regained);
        assert!(!c.resigned());
    }

    #[test]
    fn a_lone_voter_never_resigns() {
        let mut c = CheckQuorum::new(T);
        let t0 = Instant::now();
        c.observe(leading(1, None), t0);
        assert_eq!(
            c.observe(leading(1, Some(60_000)), t0 + Duration::from_secs(60)),
            Verdict::Same
        );
        assert!(!c.resigned());
    }

    #[test]
    fn a_leader_never_acknowledged_resigns_after_the_timeout_from_its_election() {
        let mut c = CheckQuorum::new(T);
        let t0 = Instant::now();
        c.observe(leading(3, None), t0);
        assert!(!c.resigned());
        c.observe(leading(3, None), t0 + Duration::from_secs(2));
        assert!(!c.resigned());
        c.observe(leading(3, None), t0 + Duration::from_secs(4));
        assert!(c.resigned());
    }

    #[test]
    fn losing_the_leadership_clears_the_resignation() {
        let mut c = CheckQuorum::new(T);
        let t0 = Instant::now();
        c.observe(leading(3, Some(5_000)), t0);
        assert!(c.resigned());
        let follower = Contact {
            leading: false,
            voters: 3,
            since_quorum_ack: None,
        };
        assert_eq!(c.observe(follower, t0), Verdict::Same);
        assert!(!c.resigned());
        // A new term's leadership starts its own clock.
        c.observe(leading(3, None), t0 + Duration::from_secs(10));
        assert!(!c.resigned());
    }
}
