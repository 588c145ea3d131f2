//! Which `__consumer_offsets` (and, for the transaction coordinator,
//! `__transaction_state`) partitions this broker coordinates, driven by
//! the committed metadata (Kafka's `CoordinatorRuntime` states, reduced to
//! what a partition needs: loading or active, tagged with the leader epoch
//! the state belongs to). Pure: the caller starts loads and unloads.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;

/// The coordinator state of one `__consumer_offsets` partition this broker
/// leads. A partition it does not lead has no entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionState {
    /// Replaying the partition's log for leader epoch `epoch`; its groups
    /// answer COORDINATOR_LOAD_IN_PROGRESS.
    Loading {
        /// The leader epoch the load is for.
        epoch: i32,
    },
    /// Loaded for leader epoch `epoch`: its groups are served.
    Active {
        /// The leader epoch the loaded state belongs to.
        epoch: i32,
    },
}

impl PartitionState {
    /// The leader epoch this state belongs to.
    pub fn epoch(self) -> i32 {
        match self {
            Self::Loading { epoch } | Self::Active { epoch } => epoch,
        }
    }
}

/// What the caller must do after a metadata change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Drop every group of `partition` (timers and members included).
    Unload {
        /// The `__consumer_offsets` partition.
        partition: i32,
    },
    /// Replay `partition`'s log for leader epoch `epoch`, then call
    /// [`CoordinatorPartitions::loaded`].
    Load {
        /// The `__consumer_offsets` partition.
        partition: i32,
        /// The leader epoch of the new leadership.
        epoch: i32,
    },
}

/// The coordinator state of every `__consumer_offsets` partition.
#[derive(Debug, Default)]
pub struct CoordinatorPartitions {
    states: BTreeMap<i32, PartitionState>,
}

impl CoordinatorPartitions {
    /// Applies the leaders of `__consumer_offsets` (partition, leader,
    /// leader epoch) from a committed image, as Kafka's `onElection` and
    /// `onResignation`: a partition this node leads in a new epoch is
    /// (re)loaded; one it no longer leads, or leads in another epoch, is
    /// unloaded first. An image without the topic unloads everything.
    pub fn apply(
        &mut self,
        node_id: i32,
        leaders: impl IntoIterator<Item = (i32, i32, i32)>,
    ) -> Vec<Transition> {
        let mut out = Vec::new();
        let mut led = BTreeMap::new();
        for (partition, leader, epoch) in leaders {
            if leader == node_id {
                led.insert(partition, epoch);
            }
        }
        let held: Vec<(i32, PartitionState)> = self.states.iter().map(|(p, s)| (*p, *s)).collect();
        for (partition, s) in held {
            if led.get(&partition) != Some(&s.epoch()) {
                self.states.remove(&partition);
                out.push(Transition::Unload { partition });
            }
        }
        for (partition, epoch) in led {
            if let std::collections::btree_map::Entry::Vacant(e) = self.states.entry(partition) {
                e.insert(PartitionState::Loading { epoch });
                out.push(Transition::Load { partition, epoch });
            }
        }
        out
    }

    /// A load for `epoch` finished: the partition becomes active. False
    /// when the load is stale (the partition moved on meanwhile); its
    /// result must then be discarded.
    pub fn loaded(&mut self, partition: i32, epoch: i32) -> bool {
        match self.states.get_mut(&partition) {
            Some(s) if *s == PartitionState::Loading { epoch } => {
                *s = PartitionState::Active { epoch };
                true
            }
            _ => false,
        }
    }

    /// The state of a partition (`None`: not led here).
    pub fn state(&self, partition: i32) -> Option<PartitionState> {
        self.states.get(&partition).copied()
    }

    /// The leader epoch of an active partition; otherwise the error its
    /// groups answer (NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS).
    pub fn active_epoch(&self, partition: i32) -> Result<i32, i16> {
        match self.states.get(&partition) {
            Some(PartitionState::Active { epoch }) => Ok(*epoch),
            Some(PartitionState::Loading { .. }) => {
                Err(ResponseError::CoordinatorLoadInProgress.code())
            }
            None => Err(ResponseError::NotCoordinator.code()),
        }
    }

    /// Whether any partition is still loading.
    pub fn any_loading(&self) -> bool {
        self.states
            .values()
            .any(|s| matches!(s, PartitionState::Loading { .. }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: i32 = 1;

    fn nc() -> i16 {
        ResponseError::NotCoordinator.code()
    }

    fn lip() -> i16 {
        ResponseError::CoordinatorLoadInProgress.code()
    }

    #[test]
    fn becoming_leader_loads_and_answers_load_in_progress_until_loaded() {
        let mut c = CoordinatorPartitions::default();
        assert_eq!(c.active_epoch(0), Err(nc()));
        let t = c.apply(ME, [(0, ME, 5), (1, 2, 3)]);
        assert_eq!(
            t,
            vec![Transition::Load {
                partition: 0,
                epoch: 5
            }]
        );
        assert_eq!(c.active_epoch(0), Err(lip()));
        assert_eq!(c.active_epoch(1), Err(nc()));
        assert!(c.any_loading());
        assert!(c.loaded(0, 5));
        assert_eq!(c.active_epoch(0), Ok(5));
        assert!(!c.any_loading());
        // The same image again changes nothing.
        assert!(c.apply(ME, [(0, ME, 5), (1, 2, 3)]).is_empty());
        assert_eq!(c.active_epoch(0), Ok(5));
    }

    #[test]
    fn losing_leadership_unloads_and_answers_not_coordinator() {
        let mut c = CoordinatorPartitions::default();
        c.apply(ME, [(0, ME, 5)]);
        assert!(c.loaded(0, 5));
        let t = c.apply(ME, [(0, 2, 6)]);
        assert_eq!(t, vec![Transition::Unload { partition: 0 }]);
        assert_eq!(c.active_epoch(0), Err(nc()));
        assert_eq!(c.state(0), None);
    }

    #[test]
    fn a_new_leader_epoch_unloads_then_reloads() {
        let mut c = CoordinatorPartitions::default();
        c.apply(ME, [(0, ME, 5)]);
        assert!(c.loaded(0, 5));
        let t = c.apply(ME, [(0, ME, 7)]);
        assert_eq!(
            t,
            vec![
                Transition::Unload { partition: 0 },
                Transition::Load {
                    partition: 0,
                    epoch: 7
                }
            ]
        );
        assert_eq!(c.active_epoch(0), Err(lip()));
        assert!(c.loaded(0, 7));
        assert_eq!(c.active_epoch(0), Ok(7));
    }

    #[test]
    fn a_stale_load_finishing_late_is_discarded() {
        let mut c = CoordinatorPartitions::default();
        c.apply(ME, [(0, ME, 5)]);
        // Leadership moves away and back before the first load finished.
        c.apply(ME, [(0, 2, 6)]);
        c.apply(ME, [(0, ME, 7)]);
        assert!(!c.loaded(0, 5), "the epoch-5 load is stale");
        assert_eq!(c.active_epoch(0), Err(lip()));
        assert!(c.loaded(0, 7));
        // A duplicate completion changes nothing.
        assert!(!c.loaded(0, 7));
        assert_eq!(c.active_epoch(0), Ok(7));
        // A load for a partition not led at all is discarded.
        assert!(!c.loaded(3, 1));
        assert_eq!(c.state(3), None);
    }

    #[test]
    fn a_load_in_progress_is_cancelled_by_losing_leadership() {
        let mut c = CoordinatorPartitions::default();
        c.apply(ME, [(0, ME, 5), (1, ME, 5)]);
        let t = c.apply(ME, [(0, -1, 6), (1, ME, 5)]);
        assert_eq!(t, vec![Transition::Unload { partition: 0 }]);
        assert!(!c.loaded(0, 5));
        assert_eq!(c.active_epoch(0), Err(nc()));
        assert!(c.loaded(1, 5));
    }

    #[test]
    fn an_image_without_the_topic_unloads_everything() {
        let mut c = CoordinatorPartitions::default();
        c.apply(ME, [(0, ME, 1), (1, ME, 1)]);
        c.loaded(0, 1);
        let t = c.apply(ME, []);
        assert_eq!(
            t,
            vec![
                Transition::Unload { partition: 0 },
                Transition::Unload { partition: 1 }
            ]
        );
        assert!(!c.any_loading());
    }
}
