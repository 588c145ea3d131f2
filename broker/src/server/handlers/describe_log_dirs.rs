//! DescribeLogDirs: the log directory with per-partition sizes.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsResponse, ResponseKind};

use super::{sb, topic_name};
use crate::body;
use crate::broker::BrokerState;
use crate::server::dispatch::{HandlerFuture, Request};

/// Handles DescribeLogDirs.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(run(state, req))
}

async fn run(state: Arc<BrokerState>, req: Request) -> Result<Option<ResponseKind>, String> {
    let body = body!(req, DescribeLogDirs);
    let filter: Option<BTreeMap<String, Vec<i32>>> = body.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.topic.0.to_string(), t.partitions))
            .collect()
    });
    let mut by_topic: BTreeMap<String, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
    for p in state.replicas.all() {
        if let Some(f) = &filter {
            if !f
                .get(&p.tp.topic)
                .is_some_and(|ps| ps.contains(&p.tp.partition))
            {
                continue;
            }
        }
        let size = p.read_log(|l| l.size_bytes()) as i64;
        by_topic.entry(p.tp.topic.clone()).or_default().push(
            DescribeLogDirsPartition::default()
                .with_partition_index(p.tp.partition)
                .with_partition_size(size)
                .with_offset_lag(0),
        );
    }
    let topics = by_topic
        .into_iter()
        .map(|(t, mut ps)| {
            ps.sort_by_key(|p| p.partition_index);
            DescribeLogDirsTopic::default()
                .with_name(topic_name(&t))
                .with_partitions(ps)
        })
        .collect();
    let dir = state.replicas.log_dir();
    let abs = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let (total, usable) = disk_space(&abs);
    Ok(Some(ResponseKind::DescribeLogDirs(
        DescribeLogDirsResponse::default().with_results(vec![DescribeLogDirsResult::default()
            .with_log_dir(sb(&abs.to_string_lossy()))
            .with_topics(topics)
            .with_total_bytes(total)
            .with_usable_bytes(usable)]),
    )))
}

/// Total and usable bytes of the file system holding `dir` (-1 when unknown).
fn disk_space(dir: &std::path::Path) -> (i64, i64) {
    // `df` keeps this free of unsafe statvfs calls; it is cheap and rare.
    let out = std::process::Command::new("df")
        .arg("-k")
        .arg("-P")
        .arg(dir)
        .output();
    let Ok(out) = out else { return (-1, -1) };
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(line) = text.lines().nth(1) else {
        return (-1, -1);
    };
    let cols: Vec<&str> = line.split_whitespace().collect();
    let kb = |i: usize| {
        cols.get(i)
            .and_then(|v| v.parse::<i64>().ok())
            .map(|v| v * 1024)
            .unwrap_or(-1)
    };
    (kb(1), kb(3))
}
