//! `dedupe`: drops a record whose identity was seen within `within_ms` of event time.
//!
//! The identity is the `by` expression's value (as canonical JSON text) or the record
//! key (null keys are one identity). Per identity the latest event time seen is
//! remembered; a record whose event time is within `within_ms` of it (either side, so a
//! duplicate that arrives after a newer record is still caught) is a duplicate. Every
//! record, duplicate or not, moves the remembered time forward, so a steady stream of
//! repeats stays suppressed until it pauses for longer than `within_ms`.
//!
//! An identity is forgotten once the watermark passes its remembered time plus
//! `within_ms`; an index ordered by that time makes expiry cost only what expires.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use serde_json::Value;

use crate::expr::Expr;
use crate::record::Record;
use crate::spec::DedupeSpec;

use super::snapshot;
use super::{Emit, Operator, RestoreError, StepError, canonical_json};

/// What makes two records duplicates (`None`: the null key).
type Identity = Option<Bytes>;

/// Runs one [`DedupeSpec`].
pub(super) struct Dedupe {
    by: Option<Expr>,
    within_ms: i64,
    /// Identity → latest event time seen.
    seen: BTreeMap<Identity, i64>,
    /// (latest event time, identity), for expiry in time order.
    expiry: BTreeSet<(i64, Identity)>,
    dropped: u64,
}

impl Dedupe {
    pub(super) fn new(spec: DedupeSpec) -> Self {
        Self {
            by: spec.by,
            within_ms: spec.within_ms,
            seen: BTreeMap::new(),
            expiry: BTreeSet::new(),
            dropped: 0,
        }
    }

    fn within(&self, a: i64, b: i64) -> bool {
        u64::try_from(self.within_ms).is_ok_and(|within| a.abs_diff(b) <= within)
    }

    /// Remembers `time` for `identity` (keeping the latest).
    fn remember(&mut self, identity: Identity, time: i64) {
        match self.seen.get_mut(&identity) {
            Some(latest) if *latest >= time => {}
            Some(latest) => {
                self.expiry.remove(&(*latest, identity.clone()));
                *latest = time;
                self.expiry.insert((time, identity));
            }
            None => {
                self.seen.insert(identity.clone(), time);
                self.expiry.insert((time, identity));
            }
        }
    }
}

impl Operator for Dedupe {
    fn on_record(&mut self, record: Record, out: &mut Vec<Emit>) -> Result<(), StepError> {
        let identity = match &self.by {
            Some(by) => Some(Bytes::from(canonical_json(&by.eval(&record)?))),
            None => record.key.clone(),
        };
        let time = record.event_time;
        let duplicate = self
            .seen
            .get(&identity)
            .is_some_and(|&latest| self.within(latest, time));
        self.remember(identity, time);
        if duplicate {
            self.dropped += 1;
        } else {
            out.push(Emit::Next(record));
        }
        Ok(())
    }

    fn on_watermark(&mut self, watermark: i64, _out: &mut Vec<Emit>) {
        while let Some((time, _)) = self.expiry.first()
            && time.saturating_add(self.within_ms) < watermark
        {
            if let Some((_, identity)) = self.expiry.pop_first() {
                self.seen.remove(&identity);
            }
        }
    }

    fn snapshot(&self) -> Value {
        let mut state = snapshot::begin("dedupe");
        let seen = self
            .seen
            .iter()
            .map(|(identity, time)| {
                Value::Array(vec![
                    snapshot::bytes_to_json(identity.as_ref()),
                    Value::from(*time),
                ])
            })
            .collect();
        state.insert("seen".to_owned(), Value::Array(seen));
        Value::Object(state)
    }

    fn restore(&mut self, state: Value) -> Result<(), RestoreError> {
        let state = snapshot::open(&state, "dedupe")?;
        let mut seen = BTreeMap::new();
        let mut expiry = BTreeSet::new();
        for entry in snapshot::list(snapshot::member(state, "seen")?, "seen")? {
            let [identity, time] = snapshot::list(entry, "seen entry")? else {
                return Err(RestoreError(
                    "seen entry is not [identity, time]".to_owned(),
                ));
            };
            let identity = snapshot::bytes_from_json(identity)?;
            let time = snapshot::int(time, "seen time")?;
            if seen.insert(identity.clone(), time).is_some() {
                return Err(RestoreError("identity remembered twice".to_owned()));
            }
            expiry.insert((time, identity));
        }
        self.seen = seen;
        self.expiry = expiry;
        Ok(())
    }

    fn state_entries(&self) -> usize {
        self.seen.len()
    }

    fn dropped(&self) -> u64 {
        self.dropped
    }
}
