//! The same basic produce/consume on other runtime configurations.

use sluice_e2e::{Broker, BrokerOptions};

use crate::common::basic_roundtrip;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_options_roundtrip() {
    let broker = Broker::start_default();
    basic_roundtrip(&broker.bootstrap(), 4, 4_000).await;
}

/// Several partitions on two shards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smp_2_roundtrip() {
    let broker = Broker::start(BrokerOptions::smp(2));
    basic_roundtrip(&broker.bootstrap(), 6, 6_000).await;
    // A second topic, so partitions of several topics share the shards.
    basic_roundtrip(&broker.bootstrap(), 3, 3_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn io_backend_tokio_roundtrip() {
    let broker = Broker::start(BrokerOptions::io_backend("tokio"));
    basic_roundtrip(&broker.bootstrap(), 3, 3_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smp_2_io_backend_tokio_roundtrip() {
    let broker = Broker::start(BrokerOptions {
        smp: Some(2),
        io_backend: Some("tokio".to_owned()),
        ..BrokerOptions::default()
    });
    basic_roundtrip(&broker.bootstrap(), 4, 4_000).await;
}

/// Many partitions of several topics spread over two shards; each partition keeps its own
/// order and offsets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smp_2_many_partitions() {
    let broker = Broker::start(BrokerOptions::smp(2));
    basic_roundtrip(&broker.bootstrap(), 32, 6_400).await;
}
