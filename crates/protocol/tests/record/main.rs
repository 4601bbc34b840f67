//! Integration and property tests for the RecordBatch v2 layer of `sluice-protocol`:
//! builder → validate → decode round trips for every codec, varints, decoders that must
//! accept what real Kafka clients write, and inputs that must be rejected without a panic.
//!
//! Property tests use proptest: a failure prints the minimal input and is saved under
//! `proptest-regressions/` (commit those files). Replay a run with
//! `PROPTEST_RNG_SEED=<seed> cargo test -p sluice-protocol --test record`; raise the
//! number of cases with `PROPTEST_CASES`.

mod client_formats;
mod never_panics;
mod round_trip;
mod support;
mod timestamps;
mod varints;
