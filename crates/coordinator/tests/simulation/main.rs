//! Random event sequences against one coordinator, with the invariants checked after
//! every step: generations only increase and each has one leader (within one load of a
//! group); a Stable group's members hold the leader's assignment; every request is
//! answered exactly once and every response encodes at its request's version; the
//! durable state in memory equals a replay of the durable log; acknowledged commits are
//! in the log; a reload rebuilds what the log says.
//!
//! Failing cases print their seed and minimal op list; `PROPTEST_CASES` sets the count.

mod driver;
mod ops;

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        max_shrink_iters: 4_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn invariants_hold_over_random_histories(ops in proptest::collection::vec(ops::op(), 1..120)) {
        let mut sim = driver::Simulation::new();
        for op in &ops {
            sim.apply(op);
            sim.check();
        }
        sim.quiesce();
    }
}
