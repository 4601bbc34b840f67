//! `join`: enriches records with the latest value for their key from a table (a
//! compacted topic fed through [`Operator::on_table_update`]).
//!
//! The table holds at most `max_entries` rows. Inserting a new key into a full table
//! evicts the least recently updated row: every insert or update takes the next number
//! of a counter, and an index ordered by that number names the row to evict, so
//! eviction is deterministic and costs O(log n).

use std::collections::BTreeMap;

use bytes::Bytes;
use serde_json::Value;

use crate::record::Record;
use crate::spec::{JoinMissing, JoinSpec};

use super::map::{object_mut_of, object_of, set_path};
use super::snapshot;
use super::{Emit, Operator, RestoreError, StepError, key_from_value};

struct Row {
    value: Value,
    /// When it was last written (the counter's value then).
    updated: u64,
}

/// Runs one [`JoinSpec`].
pub(super) struct Join {
    spec: JoinSpec,
    rows: BTreeMap<Bytes, Row>,
    /// `updated` → key, oldest first.
    by_update: BTreeMap<u64, Bytes>,
    next_update: u64,
    dropped: u64,
}

impl Join {
    pub(super) fn new(spec: JoinSpec) -> Self {
        Self {
            spec,
            rows: BTreeMap::new(),
            by_update: BTreeMap::new(),
            next_update: 0,
            dropped: 0,
        }
    }

    fn upsert(&mut self, key: Bytes, value: Value) {
        let updated = self.next_update;
        self.next_update = self.next_update.saturating_add(1);
        if let Some(row) = self.rows.get_mut(&key) {
            self.by_update.remove(&row.updated);
            row.value = value;
            row.updated = updated;
            self.by_update.insert(updated, key);
            return;
        }
        if self.spec.max_entries == 0 {
            return;
        }
        while self.rows.len() >= self.spec.max_entries {
            let Some((_, oldest)) = self.by_update.pop_first() else {
                break;
            };
            self.rows.remove(&oldest);
        }
        self.by_update.insert(updated, key.clone());
        self.rows.insert(key, Row { value, updated });
    }

    fn delete(&mut self, key: &Bytes) {
        if let Some(row) = self.rows.remove(key) {
            self.by_update.remove(&row.updated);
        }
    }
}

impl Operator for Join {
    fn on_record(&mut self, mut record: Record, out: &mut Vec<Emit>) -> Result<(), StepError> {
        // The output has the field whenever the table has the row, so the value must be
        // an object whatever the table holds right now.
        object_of(&record.value)?;
        let lookup = match &self.spec.on {
            Some(on) => key_from_value(on.eval(&record)?),
            None => record.key.clone(),
        };
        let found = lookup
            .and_then(|key| self.rows.get(&key))
            .map(|row| row.value.clone());
        match found {
            Some(value) => {
                set_path(object_mut_of(&mut record.value)?, &self.spec.into, value)?;
                out.push(Emit::Next(record));
            }
            None => match self.spec.missing {
                JoinMissing::Keep => out.push(Emit::Next(record)),
                JoinMissing::Drop => self.dropped += 1,
            },
        }
        Ok(())
    }

    fn on_table_update(&mut self, table: &str, key: Bytes, value: Option<Value>) {
        if table != self.spec.table {
            return;
        }
        match value {
            Some(value) => self.upsert(key, value),
            None => self.delete(&key),
        }
    }

    fn snapshot(&self) -> Value {
        let mut state = snapshot::begin("join");
        state.insert("next_update".to_owned(), Value::from(self.next_update));
        let rows = self
            .rows
            .iter()
            .map(|(key, row)| {
                Value::Array(vec![
                    snapshot::bytes_to_json(Some(key)),
                    Value::from(row.updated),
                    row.value.clone(),
                ])
            })
            .collect();
        state.insert("rows".to_owned(), Value::Array(rows));
        Value::Object(state)
    }

    fn restore(&mut self, state: Value) -> Result<(), RestoreError> {
        let state = snapshot::open(&state, "join")?;
        let next_update = snapshot::uint(snapshot::member(state, "next_update")?, "next_update")?;
        let mut rows = BTreeMap::new();
        let mut by_update = BTreeMap::new();
        for entry in snapshot::list(snapshot::member(state, "rows")?, "rows")? {
            let [key, updated, value] = snapshot::list(entry, "row")? else {
                return Err(RestoreError("row is not [key, updated, value]".to_owned()));
            };
            let Some(key) = snapshot::bytes_from_json(key)? else {
                return Err(RestoreError("table row with a null key".to_owned()));
            };
            let updated = snapshot::uint(updated, "row updated")?;
            if updated >= next_update || by_update.insert(updated, key.clone()).is_some() {
                return Err(RestoreError(
                    "table row update numbers are inconsistent".to_owned(),
                ));
            }
            let row = Row {
                value: value.clone(),
                updated,
            };
            if rows.insert(key, row).is_some() {
                return Err(RestoreError("table row stored twice".to_owned()));
            }
        }
        self.rows = rows;
        self.by_update = by_update;
        self.next_update = next_update;
        Ok(())
    }

    fn state_entries(&self) -> usize {
        self.rows.len()
    }

    fn dropped(&self) -> u64 {
        self.dropped
    }
}
