//! The processor stage: stream operators that run inside the broker, next to the log.
//!
//! **Owns:** pipeline specs (TOML, checked at deploy with line numbers), the expression
//! language of predicates and computed fields, the operators (filter, map/project,
//! key_by, tumbling/hopping/session windows with aggregates, dedupe, route, join with a
//! table), the chain that runs them, and the task that runs one pipeline on one input
//! partition exactly once: it reads through a [`task::Source`], writes through a
//! [`task::Sink`], checkpoints its state with its input position through a
//! [`task::CheckpointStore`], and on restart replays from the checkpoint, skipping the
//! outputs it already wrote.
//!
//! **Must not know:** sockets, files, the storage crate, Raft, shards, or how bytes reach
//! it. The broker implements the traits on its local log and produce path.
//!
//! ```text
//!  Source::read ─▶ Task: event time, watermark ─▶ Chain: step → step → … ─▶ outputs
//!       ▲                                            │ side outputs, routes, dead letters
//!       │ position                                   ▼
//!  CheckpointStore ◀── every interval: outputs durable, then (position, state) saved
//! ```

pub mod chain;
pub mod expr;
pub mod operator;
pub mod record;
pub mod spec;
pub mod task;

pub use chain::Chain;
pub use expr::Expr;
pub use record::{Payload, Record};
pub use spec::{PipelineSpec, SpecError};
