//! Pure decision of the automatic restart of a failed connector or task
//! (`spec.autoRestart`): Strimzi's back-off, `n*n + n` units after the n-th restart, at most
//! 60 units, the first restart at once; the count goes back to 0 once the connector ran
//! without failing for the back-off of its last restart. Times are Unix seconds.

use runnel_crds::connector::AutoRestart;

/// The most back-off units between two restarts.
pub const MAX_UNITS: i64 = 60;

/// The automatic restarts made so far (from the status).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct History {
    /// Restarts since the connector last ran without failing.
    pub count: i32,
    /// When the last one was made.
    pub last: Option<i64>,
}

/// What to do in this pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Automatic restarts are off (no `spec.autoRestart`, or `enabled: false`).
    Off,
    /// Nothing failed; `history` is what the status keeps (count reset to 0 once the
    /// connector ran through the last back-off without failing).
    Healthy {
        /// The history to record.
        history: History,
    },
    /// Restart the failed connector and tasks now; `history` counts this restart.
    RestartNow {
        /// The history to record, this restart included.
        history: History,
        /// When the next restart is due if this one does not help.
        next: Option<i64>,
    },
    /// Something failed but the back-off has not passed: the next restart is at `at`.
    Wait {
        /// Due time.
        at: i64,
    },
    /// `maxRestarts` restarts were made and it failed again: left FAILED.
    GaveUp {
        /// Restarts made.
        count: i32,
    },
}

/// The back-off after the `count`-th restart, in units: 0, 2, 6, 12, 20, 30, 42, 56, 60, 60...
pub fn backoff_units(count: i32) -> i64 {
    let n = i64::from(count.max(0));
    (n * n + n).min(MAX_UNITS)
}

/// Decides for a connector whose connector or tasks are FAILED (`failed`), at `now`, with a
/// back-off unit of `unit` seconds. `running`: the spec asks for a running connector (a
/// paused or stopped one is never restarted automatically).
pub fn decide(
    cfg: Option<&AutoRestart>,
    running: bool,
    failed: bool,
    history: History,
    now: i64,
    unit: i64,
) -> Decision {
    let Some(cfg) = cfg.filter(|c| c.enabled) else {
        return Decision::Off;
    };
    let due = history
        .last
        .map(|t| t + backoff_units(history.count) * unit)
        .unwrap_or(now);
    if !failed || !running {
        // Ran without failing through the whole back-off: start counting afresh.
        let history = if history.count > 0 && now >= due {
            History::default()
        } else {
            history
        };
        return Decision::Healthy { history };
    }
    if cfg.max_restarts.is_some_and(|m| history.count >= m) {
        return Decision::GaveUp {
            count: history.count,
        };
    }
    if now < due {
        return Decision::Wait { at: due };
    }
    let count = history.count.saturating_add(1);
    let next = if cfg.max_restarts.is_some_and(|m| count >= m) {
        None
    } else {
        Some(now + backoff_units(count) * unit)
    };
    Decision::RestartNow {
        history: History {
            count,
            last: Some(now),
        },
        next,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(max: Option<i32>) -> AutoRestart {
        AutoRestart {
            enabled: true,
            max_restarts: max,
        }
    }

    #[test]
    fn backoff_is_strimzis_n_squared_plus_n_capped_at_60() {
        let units: Vec<i64> = (0..10).map(backoff_units).collect();
        assert_eq!(units, [0, 2, 6, 12, 20, 30, 42, 56, 60, 60]);
    }

    #[test]
    fn off_without_the_block_or_when_disabled() {
        let h = History::default();
        assert_eq!(decide(None, true, true, h, 100, 60), Decision::Off);
        let off = AutoRestart {
            enabled: false,
            max_restarts: None,
        };
        assert_eq!(decide(Some(&off), true, true, h, 100, 60), Decision::Off);
    }

    #[test]
    fn first_restart_at_once_then_after_the_backoff() {
        let c = on(None);
        let d = decide(Some(&c), true, true, History::default(), 1000, 60);
        assert_eq!(
            d,
            Decision::RestartNow {
                history: History {
                    count: 1,
                    last: Some(1000)
                },
                next: Some(1000 + 2 * 60),
            }
        );
        let h = History {
            count: 1,
            last: Some(1000),
        };
        // Still failed a minute later: wait for 2 units.
        assert_eq!(
            decide(Some(&c), true, true, h, 1060, 60),
            Decision::Wait { at: 1120 }
        );
        // Due: the second restart, the next after 6 units.
        assert_eq!(
            decide(Some(&c), true, true, h, 1120, 60),
            Decision::RestartNow {
                history: History {
                    count: 2,
                    last: Some(1120)
                },
                next: Some(1120 + 6 * 60),
            }
        );
    }

    #[test]
    fn max_restarts_gives_up_and_names_no_next_time() {
        let c = on(Some(2));
        let h = History {
            count: 1,
            last: Some(0),
        };
        assert_eq!(
            decide(Some(&c), true, true, h, 120, 60),
            Decision::RestartNow {
                history: History {
                    count: 2,
                    last: Some(120)
                },
                next: None,
            }
        );
        let h = History {
            count: 2,
            last: Some(120),
        };
        assert_eq!(
            decide(Some(&c), true, true, h, 10_000, 60),
            Decision::GaveUp { count: 2 }
        );
        // maxRestarts 0: never restarted.
        assert_eq!(
            decide(Some(&on(Some(0))), true, true, History::default(), 5, 60),
            Decision::GaveUp { count: 0 }
        );
    }

    #[test]
    fn the_count_resets_only_after_a_whole_backoff_without_failure() {
        let c = on(None);
        let h = History {
            count: 3,
            last: Some(1000),
        };
        // Running again, but within the 12-unit window: kept (a flapping task keeps backing off).
        assert_eq!(
            decide(Some(&c), true, false, h, 1000 + 11 * 60, 60),
            Decision::Healthy { history: h }
        );
        assert_eq!(
            decide(Some(&c), true, false, h, 1000 + 12 * 60, 60),
            Decision::Healthy {
                history: History::default()
            }
        );
    }

    #[test]
    fn a_paused_or_stopped_connector_is_not_restarted() {
        let c = on(None);
        assert!(matches!(
            decide(Some(&c), false, true, History::default(), 5, 60),
            Decision::Healthy { .. }
        ));
    }
}
