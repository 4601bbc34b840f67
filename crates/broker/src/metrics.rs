//! Metrics: the counters and histograms the hot path updates, and their rendering as
//! Prometheus text (`GET /metrics` on the admin address).
//!
//! Owns: one [`ShardMetrics`] per shard (plain atomics, written with `Relaxed` by that
//! shard's thread only, so an update is an uncontended add with no lock and no shared
//! cache line), fixed-bucket [`Histogram`]s, and the scrape that sums the shards and
//! reads per-partition and per-group state.
//! Must not know: HTTP (the admin server calls [`scrape::render`]).
//!
//! ```text
//!  connection / produce / fetch / flush ──▶ local() ──▶ this shard's ShardMetrics
//!                                                          │ (atomics, Relaxed)
//!  GET /metrics ──▶ scrape: Σ shards + catalog + on each shard (log sizes, offsets)
//!                      └──▶ exposition (text format 0.0.4)
//! ```
//!
//! Per-topic byte counters live on each partition's [`crate::catalog::PartitionShared`],
//! next to the high watermark, so the hot path needs no map lookup.

pub(crate) mod exposition;
pub(crate) mod scrape;

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Highest Kafka API key counted separately (Kafka 4.1 stops at 92); a higher key is
/// counted in the last slot.
pub(crate) const API_SLOTS: usize = 96;

/// Upper bounds of the latency buckets, in seconds (100 µs to 10 s).
pub(crate) const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Upper bounds of the batch size buckets, in bytes (128 B to 16 MiB, powers of 4).
pub(crate) const SIZE_BUCKETS: &[f64] = &[
    128.0,
    512.0,
    2048.0,
    8192.0,
    32768.0,
    131_072.0,
    524_288.0,
    2_097_152.0,
    8_388_608.0,
    16_777_216.0,
];

/// A histogram with fixed bucket bounds. Observations are integers in a base unit
/// scaled by `scale` (nanoseconds for seconds, bytes for bytes), so the sum stays an
/// exact atomic integer.
#[derive(Debug)]
pub(crate) struct Histogram {
    /// Upper bounds in the exposed unit.
    bounds: &'static [f64],
    /// Upper bounds in the integer unit.
    int_bounds: Vec<u64>,
    /// Per-bucket (not cumulative) counts; the last slot is `+Inf`.
    counts: Vec<AtomicU64>,
    sum: AtomicU64,
    /// Integer units per exposed unit.
    scale: f64,
}

/// A histogram's values at one moment, cumulative as Prometheus wants them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HistogramSnapshot {
    /// `(le, cumulative count)`, ending with `+Inf`.
    pub(crate) buckets: Vec<(f64, u64)>,
    /// Sum of the observations in the exposed unit.
    pub(crate) sum: f64,
    /// Number of observations.
    pub(crate) count: u64,
}

impl HistogramSnapshot {
    /// Adds `other` (a histogram with the same buckets) into this one.
    pub(crate) fn merge(&mut self, other: &Self) {
        for ((_, total), (_, count)) in self.buckets.iter_mut().zip(&other.buckets) {
            *total = total.saturating_add(*count);
        }
        self.sum += other.sum;
        self.count = self.count.saturating_add(other.count);
    }
}

impl Histogram {
    pub(crate) fn new(bounds: &'static [f64], scale: f64) -> Self {
        Self {
            bounds,
            // Bounds are small positive constants: the cast is exact enough.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            int_bounds: bounds.iter().map(|b| (b * scale).round() as u64).collect(),
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            scale,
        }
    }

    /// A histogram of durations, exposed in seconds.
    pub(crate) fn seconds() -> Self {
        Self::new(LATENCY_BUCKETS, 1e9)
    }

    /// A histogram of sizes, exposed in bytes.
    pub(crate) fn bytes() -> Self {
        Self::new(SIZE_BUCKETS, 1.0)
    }

    /// Records one value in the integer unit.
    pub(crate) fn observe(&self, value: u64) {
        let slot = self
            .int_bounds
            .iter()
            .position(|&b| value <= b)
            .unwrap_or(self.int_bounds.len());
        if let Some(count) = self.counts.get(slot) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// Records a duration (for histograms made with [`Histogram::seconds`]).
    pub(crate) fn observe_duration(&self, elapsed: Duration) {
        self.observe(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Cumulative buckets of this histogram plus `others` (the other shards).
    pub(crate) fn snapshot<'a>(
        &'a self,
        others: impl IntoIterator<Item = &'a Self>,
    ) -> HistogramSnapshot {
        let mut counts: Vec<u64> = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let mut sum = self.sum.load(Ordering::Relaxed);
        for other in others {
            for (total, c) in counts.iter_mut().zip(&other.counts) {
                *total = total.saturating_add(c.load(Ordering::Relaxed));
            }
            sum = sum.saturating_add(other.sum.load(Ordering::Relaxed));
        }
        let mut running = 0u64;
        let mut buckets = Vec::with_capacity(counts.len());
        for (i, count) in counts.iter().enumerate() {
            running = running.saturating_add(*count);
            let le = self.bounds.get(i).copied().unwrap_or(f64::INFINITY);
            buckets.push((le, running));
        }
        // Precision loss on a sum past 2^53 units is acceptable for a metric.
        #[allow(clippy::cast_precision_loss)]
        let sum = sum as f64 / self.scale;
        HistogramSnapshot {
            buckets,
            sum,
            count: running,
        }
    }
}

/// Counters of one Kafka API on one shard.
#[derive(Debug)]
pub(crate) struct ApiMetrics {
    pub(crate) requests: AtomicU64,
    /// Requests that closed the connection instead of answering (undecodable, refused,
    /// unencodable response): errors the client cannot see in an error code.
    pub(crate) errors: AtomicU64,
    pub(crate) latency: Histogram,
}

/// Everything one shard counts. Written only by that shard's thread.
#[derive(Debug)]
pub(crate) struct ShardMetrics {
    pub(crate) apis: Vec<ApiMetrics>,
    pub(crate) produce_batch_size: Histogram,
    pub(crate) fetch_wait: Histogram,
    pub(crate) fsync: Histogram,
    pub(crate) connections_accepted: AtomicU64,
    pub(crate) connections_active: AtomicU64,
}

impl ShardMetrics {
    pub(crate) fn new() -> Self {
        Self {
            apis: (0..API_SLOTS)
                .map(|_| ApiMetrics {
                    requests: AtomicU64::new(0),
                    errors: AtomicU64::new(0),
                    latency: Histogram::seconds(),
                })
                .collect(),
            produce_batch_size: Histogram::bytes(),
            fetch_wait: Histogram::seconds(),
            fsync: Histogram::seconds(),
            connections_accepted: AtomicU64::new(0),
            connections_active: AtomicU64::new(0),
        }
    }

    /// The counters of API `api_key` (out-of-range keys share the last slot).
    pub(crate) fn api(&self, api_key: i16) -> Option<&ApiMetrics> {
        let slot = usize::try_from(api_key).map_or(API_SLOTS - 1, |k| k.min(API_SLOTS - 1));
        self.apis.get(slot)
    }

    /// Counts one finished request of `api_key`.
    pub(crate) fn request_done(&self, api_key: i16, elapsed: Duration, failed: bool) {
        if let Some(api) = self.api(api_key) {
            api.requests.fetch_add(1, Ordering::Relaxed);
            if failed {
                api.errors.fetch_add(1, Ordering::Relaxed);
            }
            api.latency.observe_duration(elapsed);
        }
    }
}

/// The metrics of every shard of a node, indexed by shard id.
#[derive(Debug)]
pub(crate) struct NodeMetrics {
    pub(crate) shards: Vec<Arc<ShardMetrics>>,
}

impl NodeMetrics {
    pub(crate) fn new(shards: usize) -> Self {
        Self {
            shards: (0..shards.max(1))
                .map(|_| Arc::new(ShardMetrics::new()))
                .collect(),
        }
    }
}

thread_local! {
    /// This shard thread's metrics; unset on other threads (unit tests), where
    /// updates are dropped.
    static LOCAL: RefCell<Option<Arc<ShardMetrics>>> = const { RefCell::new(None) };
}

/// Makes `metrics` the current thread's (once, when a shard starts).
pub(crate) fn set_local(metrics: Arc<ShardMetrics>) {
    LOCAL.with(|local| *local.borrow_mut() = Some(metrics));
}

/// Runs `update` on this shard's metrics, if this thread is a shard.
pub(crate) fn local(update: impl FnOnce(&ShardMetrics)) {
    LOCAL.with(|local| {
        if let Some(metrics) = local.borrow().as_ref() {
            update(metrics);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_end_at_inf() {
        let a = Histogram::bytes();
        let b = Histogram::bytes();
        a.observe(100); // le 128
        a.observe(600); // le 2048
        b.observe(100);
        b.observe(1 << 30); // +Inf
        let snap = a.snapshot([&b]);
        assert_eq!(snap.count, 4);
        assert_eq!(snap.sum, (100 + 600 + 100 + (1u64 << 30)) as f64);
        assert_eq!(snap.buckets.first(), Some(&(128.0, 2)));
        assert_eq!(snap.buckets.get(1), Some(&(512.0, 2)));
        assert_eq!(snap.buckets.get(2), Some(&(2048.0, 3)));
        let last = snap.buckets.last().unwrap();
        assert!(last.0.is_infinite());
        assert_eq!(last.1, 4);
        assert!(snap.buckets.windows(2).all(|w| w[0].1 <= w[1].1));
    }

    #[test]
    fn durations_are_exposed_in_seconds() {
        let h = Histogram::seconds();
        h.observe_duration(Duration::from_millis(3));
        let snap = h.snapshot([]);
        assert!((snap.sum - 0.003).abs() < 1e-12);
        // 3 ms falls in the 5 ms bucket, not the 2.5 ms one.
        let le = |bound: f64| snap.buckets.iter().find(|b| b.0 == bound).unwrap().1;
        assert_eq!(le(0.0025), 0);
        assert_eq!(le(0.005), 1);
    }

    #[test]
    fn unknown_api_keys_share_the_last_slot() {
        let m = ShardMetrics::new();
        m.request_done(500, Duration::ZERO, true);
        m.request_done(-3, Duration::ZERO, false);
        let last = m.apis.last().unwrap();
        assert_eq!(last.requests.load(Ordering::Relaxed), 2);
        assert_eq!(last.errors.load(Ordering::Relaxed), 1);
        assert_eq!(m.apis[0].requests.load(Ordering::Relaxed), 0);
    }
}
