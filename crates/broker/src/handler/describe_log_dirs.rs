//! DescribeLogDirs: the one data directory of this node, with each partition's size on
//! disk and the file system's total and usable bytes.

use std::collections::BTreeMap;
use std::path::Path;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use sluice_protocol::kafka_protocol;

use super::{RequestContext, str_bytes};

/// (total, usable) bytes of the file system holding `path`, or -1s when unknown.
#[allow(unsafe_code)]
fn file_system_bytes(path: &Path) -> (i64, i64) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return (-1, -1);
    };
    let mut stats = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c_path` is a valid NUL-terminated string and `stats` points to memory
    // large enough for a `statvfs`, which the call fills when it returns 0.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), stats.as_mut_ptr()) };
    if rc != 0 {
        return (-1, -1);
    }
    // SAFETY: statvfs returned 0, so it initialised `stats`.
    let stats = unsafe { stats.assume_init() };
    let block = u128::from(stats.f_frsize);
    let to_i64 = |blocks: u128| i64::try_from(blocks.saturating_mul(block)).unwrap_or(i64::MAX);
    (
        to_i64(u128::from(stats.f_blocks)),
        to_i64(u128::from(stats.f_bavail)),
    )
}

pub(super) async fn handle(
    ctx: &RequestContext,
    req: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    let node = ctx.node().clone();
    // Which partitions: all, or the requested ones that exist.
    let mut wanted: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    match &req.topics {
        None => {
            for topic in node.catalog().topics() {
                let count = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
                wanted.insert(topic.name.to_string(), (0..count).collect());
            }
        }
        Some(topics) => {
            for t in topics {
                if let Some(topic) = node.topic(t.topic.0.as_str()) {
                    let present: Vec<i32> = t
                        .partitions
                        .iter()
                        .copied()
                        .filter(|p| topic.partition(*p).is_some())
                        .collect();
                    wanted
                        .entry(topic.name.to_string())
                        .or_default()
                        .extend(present);
                }
            }
        }
    }
    let mut topics = Vec::with_capacity(wanted.len());
    for (name, partitions) in wanted {
        let Some(topic) = node.topic(&name) else {
            continue;
        };
        let mut entries = Vec::with_capacity(partitions.len());
        for index in partitions {
            let Some(shared) = topic.partition(index) else {
                continue;
            };
            let topic_name = topic.name.clone();
            let size = node
                .on_shard(&ctx.shard, shared.shard, move |s| async move {
                    s.partition(&topic_name, index)
                        .map(|p| i64::try_from(p.borrow().log().size_bytes()).unwrap_or(i64::MAX))
                })
                .await
                .ok()
                .flatten();
            if let Some(size) = size {
                entries.push(
                    DescribeLogDirsPartition::default()
                        .with_partition_index(index)
                        .with_partition_size(size)
                        .with_offset_lag(0),
                );
            }
        }
        topics.push(
            DescribeLogDirsTopic::default()
                .with_name(TopicName(str_bytes(name)))
                .with_partitions(entries),
        );
    }
    let dir = std::fs::canonicalize(&node.config.data_dir)
        .unwrap_or_else(|_| node.config.data_dir.clone());
    let (total_bytes, usable_bytes) = file_system_bytes(&dir);
    DescribeLogDirsResponse::default().with_results(vec![
        DescribeLogDirsResult::default()
            .with_log_dir(str_bytes(dir.display().to_string()))
            .with_topics(topics)
            .with_total_bytes(total_bytes)
            .with_usable_bytes(usable_bytes),
    ])
}
