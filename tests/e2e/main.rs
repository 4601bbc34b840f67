//! End-to-end tests: the real `sluice` binary driven by unmodified Kafka clients
//! (rdkafka, kcat, kafka-python, confluent-kafka) and by raw malformed TCP input.
//!
//! Every test starts its own broker (see `sluice_e2e::Broker`), so the binary is hermetic.
//! Build the broker first: `cargo build -p sluice`.

mod admin;
mod admin_http;
mod cli;
mod cli_dev;
mod common;
mod compression;
mod configs;
mod consumer_protocol;
mod durability;
mod groups;
mod idempotence;
mod kcat;
mod lifecycle;
mod malformed;
mod metadata;
mod produce_consume;
mod python;
mod records;
mod runtime;
mod transform_cli;
mod transforms;
