//! The partition lock is never held across an append's I/O: a read
//! (consumer or follower) is served while an append writes its batches or
//! waits in its `flush.messages` fsync.

use std::cell::RefCell;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::records::Compression;
use uuid::Uuid;

use super::Partition;
use crate::config::LogConfig;
use crate::log::{Log, TopicPartition};
use crate::metadata::PartitionImage;
use crate::protocol::batch::tests::encode;

thread_local! {
    /// On the thread that set it: at the named stage of an append, tells
    /// the test it got there, then waits for its go-ahead.
    static GATE: RefCell<Option<Gate>> = const { RefCell::new(None) };
}

type Gate = (&'static str, mpsc::Sender<()>, mpsc::Receiver<()>);

/// Called by `Partition::run_flush` just before the fsync, without the lock.
pub(super) fn flush_hook() {
    hook("fsync");
}

/// Called by an append at `stage` ("write": just before its batches are
/// written), without the partition lock.
pub(super) fn hook(stage: &'static str) {
    GATE.with(|g| {
        if let Some((at, entered, go)) = g.borrow().as_ref() {
            if *at == stage {
                let _ = entered.send(());
                let _ = go.recv_timeout(Duration::from_secs(30));
            }
        }
    });
}

fn leader(dir: &std::path::Path, cfg: LogConfig) -> Arc<Partition> {
    let tp = TopicPartition {
        topic: "t".into(),
        partition: 0,
    };
    let log = Log::open(&dir.join("t-0"), cfg, None, None).expect("log");
    let p = Partition::new(tp, Uuid::new_v4(), 1, log, None).expect("partition");
    p.apply_metadata(&PartitionImage {
        replicas: vec![1],
        isr: vec![1],
        leader: 1,
        leader_epoch: 0,
        partition_epoch: 0,
        ..PartitionImage::default()
    });
    Arc::new(p)
}

#[test]
fn a_read_is_served_while_an_append_waits_in_fsync() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = LogConfig {
        flush_messages: 1,
        ..LogConfig::default()
    };
    let p = leader(dir.path(), cfg);
    // Something to read: the first append flushes (ungated) and is visible.
    p.append(&mut encode(3, Compression::None))
        .expect("first append");
    assert_eq!(p.high_watermark(), 3);

    let (entered_tx, entered_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel();
    let appender = {
        let p = p.clone();
        std::thread::spawn(move || {
            GATE.with(|g| *g.borrow_mut() = Some(("fsync", entered_tx, go_rx)));
            p.append(&mut encode(2, Compression::None))
        })
    };
    // The second append's records are written; it now waits before its fsync.
    entered_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the append reached its flush");

    // Meanwhile reads, from another thread, complete: they do not wait for it.
    let (read_tx, read_rx) = mpsc::channel();
    {
        let p = p.clone();
        std::thread::spawn(move || {
            let r = p.read(0, 1 << 20, true).expect("read");
            let bytes = r.slice.expect("data").read().expect("bytes");
            let local = p.read_local(0, 1 << 20).expect("read_local");
            let _ = read_tx.send((bytes.len(), local.slice.is_some(), p.high_watermark()));
        });
    }
    let (len, local, hw) = read_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("a read completed while the append was in its fsync");
    assert!(len > 0 && local);
    // The append is not acknowledged, nor its records exposed to consumers,
    // before its fsync: the high watermark still ends at the first batch.
    assert_eq!(hw, 3);
    assert!(!appender.is_finished());

    go_tx.send(()).expect("go");
    let info = appender.join().expect("join").expect("second append");
    assert_eq!((info.base_offset, info.last_offset), (3, 4));
    assert_eq!(p.high_watermark(), 5);
    assert_eq!(p.with_log(|l| l.recovery_point), 5);
}

#[test]
fn a_read_is_served_while_an_append_writes() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = leader(dir.path(), LogConfig::default());
    p.append(&mut encode(3, Compression::None))
        .expect("first append");
    let first = p
        .read(0, 1 << 20, true)
        .expect("read")
        .slice
        .expect("data")
        .read()
        .expect("bytes")
        .len();

    let (entered_tx, entered_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel();
    let appender = {
        let p = p.clone();
        std::thread::spawn(move || {
            GATE.with(|g| *g.borrow_mut() = Some(("write", entered_tx, go_rx)));
            p.append(&mut encode(2, Compression::None))
        })
    };
    entered_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the append reached its write");

    // Reads and state queries from another thread complete meanwhile, and
    // see nothing of the batch being written.
    let (tx, rx) = mpsc::channel();
    {
        let p = p.clone();
        std::thread::spawn(move || {
            let local = p.read_local(0, 1 << 20).expect("read_local");
            let bytes = local.slice.expect("data").read().expect("bytes");
            let end = p.read_log(|l| l.end_offset());
            let pos = p.fetch_position().fetch_offset;
            let _ = tx.send((bytes.len(), end, pos, p.high_watermark()));
        });
    }
    let (len, end, pos, hw) = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("reads completed while the append was writing");
    assert_eq!((len, end, pos, hw), (first, 3, 3, 3));
    assert!(!appender.is_finished());

    go_tx.send(()).expect("go");
    let info = appender.join().expect("join").expect("second append");
    assert_eq!((info.base_offset, info.last_offset), (3, 4));
    assert_eq!(p.read_log(|l| l.end_offset()), 5);
    assert_eq!(p.high_watermark(), 5);
}

#[test]
fn an_ineligible_follower_is_not_proposed_for_the_isr_and_never_holds_the_hw() {
    let dir = tempfile::tempdir().expect("tmp");
    let tp = TopicPartition {
        topic: "t".into(),
        partition: 0,
    };
    let log = Log::open(&dir.path().join("t-0"), LogConfig::default(), None, None).expect("log");
    let p = Partition::new(tp, Uuid::new_v4(), 1, log, None).expect("partition");
    // Replicas 1 (this leader) and 2; replica 2 (in controlled shutdown)
    // was dropped from the ISR.
    p.apply_metadata(&PartitionImage {
        replicas: vec![1, 2],
        isr: vec![1],
        leader: 1,
        leader_epoch: 1,
        partition_epoch: 1,
        ..PartitionImage::default()
    });
    let at = |offset| super::FetchPosition {
        fetch_offset: offset,
        last_fetched_epoch: -1,
        leader_epoch: 1,
        log_start_offset: 0,
    };
    p.append(&mut encode(3, Compression::None)).expect("append");
    assert_eq!(p.high_watermark(), 3);
    // Caught up, but the metadata shows it shutting down: no expansion.
    let r = p.read_for_follower(2, at(3), 1 << 20, false).expect("read");
    assert!(r.expand_isr.is_none());
    // So a new record is committed without it.
    p.append(&mut encode(2, Compression::None)).expect("append");
    assert_eq!(p.high_watermark(), 5);
    // The same fetch from an eligible replica is proposed for the ISR.
    let r = p.read_for_follower(2, at(5), 1 << 20, true).expect("read");
    assert_eq!(r.expand_isr, Some(vec![1, 2]));
}
