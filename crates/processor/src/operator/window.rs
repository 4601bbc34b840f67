//! `window` + `aggregate`: per-key tumbling, hopping and session windows on event time.
//!
//! **Windows.** Keys are the record key bytes (the null key is a group of its own).
//! Tumbling windows are `[n*size, (n+1)*size)` aligned to the epoch (negative times
//! floor, so -1 is in `[-size, 0)`); hopping windows of `size` start every `advance`
//! and a record counts in every one containing it; a session is `[first, last + gap)`
//! of records less than `gap` apart, and a record that bridges two sessions merges
//! them.
//!
//! **Closing.** A window `[start, end)` closes when the watermark (the value last given
//! to [`Operator::on_watermark`]) reaches `end + lateness_ms`; its result is emitted
//! then, with key = the group key, value = `{"window_start", "window_end", <aggregate
//! name>: result, …}` and timestamp and event time `end - 1`. Windows close in order of
//! (end, start, key bytes). A record all of whose windows are closed is late: it is
//! dropped and counted. Records for an open window count even when out of order.
//! With `emit = "update"` the current result is also emitted after every record that
//! changes a window.
//!
//! **State.** Open windows live in one map ordered by (end, start, key), the order they
//! close in, so a watermark costs O(log n) per window it closes. Sessions also keep, per
//! key, start → end of each open session, to find the ones a record touches.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::record::{Payload, Record};
use crate::spec::{Aggregate, EmitPolicy, WindowKind, WindowSpec};

use super::aggregate::{Acc, Stamp, check_argument};
use super::snapshot;
use super::{Emit, Operator, RestoreError, StepError};

/// A group key: the record key (`None`: null).
type Key = Option<Bytes>;

/// One open window; fields in the order windows close.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct WindowId {
    end: i64,
    start: i64,
    key: Key,
}

/// Runs one [`WindowSpec`].
pub(super) struct Window {
    kind: WindowKind,
    lateness_ms: i64,
    emit: EmitPolicy,
    aggregates: Vec<Aggregate>,
    /// Open windows, in closing order, with one state per aggregate.
    windows: BTreeMap<WindowId, Vec<Acc>>,
    /// Sessions only: per key, start → end of each open session (disjoint).
    sessions: BTreeMap<Key, BTreeMap<i64, i64>>,
    /// The last watermark seen (`None` before the first).
    watermark: Option<i64>,
    /// Records taken so far: orders first/last between records of equal event time.
    arrivals: u64,
    dropped: u64,
}

impl Window {
    pub(super) fn new(spec: WindowSpec) -> Self {
        Self {
            kind: spec.kind,
            lateness_ms: spec.lateness_ms,
            emit: spec.emit,
            aggregates: spec.aggregates,
            windows: BTreeMap::new(),
            sessions: BTreeMap::new(),
            watermark: None,
            arrivals: 0,
            dropped: 0,
        }
    }

    /// Whether a window ending at `end` has closed.
    fn is_closed(&self, end: i64) -> bool {
        self.watermark
            .is_some_and(|watermark| end.saturating_add(self.lateness_ms) <= watermark)
    }

    /// Each aggregate's argument for `record` (`None`: it takes none), checked.
    fn arguments(&self, record: &Record) -> Result<Vec<Option<Value>>, StepError> {
        self.aggregates
            .iter()
            .map(|aggregate| {
                let Some(argument) = &aggregate.argument else {
                    return Ok(None);
                };
                let value = argument.eval(record)?;
                check_argument(aggregate, &value)?;
                Ok(Some(value))
            })
            .collect()
    }

    /// Takes the next arrival number.
    fn arrive(&mut self, time: i64) -> Stamp {
        let stamp = Stamp {
            time,
            arrival: self.arrivals,
        };
        self.arrivals = self.arrivals.saturating_add(1);
        stamp
    }

    /// Tumbling and hopping windows: adds the record to each open window containing it.
    fn add_fixed(
        &mut self,
        record: &Record,
        size_ms: i64,
        advance_ms: i64,
        out: &mut Vec<Emit>,
    ) -> Result<(), StepError> {
        if size_ms <= 0 || advance_ms <= 0 {
            return Err(StepError::Invalid(
                "window size and advance must be positive".to_owned(),
            ));
        }
        let time = record.event_time;
        // The latest window start at or before `time`, then earlier ones while the
        // window still reaches `time`.
        let mut start = time
            .div_euclid(advance_ms)
            .checked_mul(advance_ms)
            .ok_or_else(out_of_range)?;
        let mut open = Vec::new();
        loop {
            let end = start.checked_add(size_ms).ok_or_else(out_of_range)?;
            if end <= time {
                break;
            }
            if !self.is_closed(end) {
                open.push(WindowId {
                    end,
                    start,
                    key: record.key.clone(),
                });
            }
            start = match start.checked_sub(advance_ms) {
                Some(earlier) => earlier,
                None => break,
            };
        }
        if open.is_empty() {
            // Late, or (hopping with gaps between windows) in no window at all.
            self.dropped += 1;
            return Ok(());
        }
        let arguments = self.arguments(record)?;
        let stamp = self.arrive(time);
        // Earliest window first: the order updates are emitted in.
        open.reverse();
        for id in open {
            let (state, created) = match self.windows.entry(id.clone()) {
                Entry::Occupied(entry) => (entry.into_mut(), false),
                Entry::Vacant(entry) => (entry.insert(fresh_state(&self.aggregates)), true),
            };
            let changed = add_all(state, &arguments, stamp) || created;
            if changed && self.emit == EmitPolicy::Update {
                out.push(Emit::Next(result(&self.aggregates, &id, state)));
            }
        }
        Ok(())
    }

    /// Session windows: merges the record with the sessions of its key it touches.
    fn add_session(
        &mut self,
        record: &Record,
        gap_ms: i64,
        out: &mut Vec<Emit>,
    ) -> Result<(), StepError> {
        if gap_ms <= 0 {
            return Err(StepError::Invalid(
                "session gap must be positive".to_owned(),
            ));
        }
        let time = record.event_time;
        let own_end = time.checked_add(gap_ms).ok_or_else(out_of_range)?;
        // Sessions are disjoint, so ordered by start they are ordered by end too: the
        // ones overlapping [time, own_end) are the last few starting before own_end.
        // All of them are open (closed ones leave state), so a record touching one is
        // never late.
        let mut touched: Vec<(i64, i64)> = self
            .sessions
            .get(&record.key)
            .map(|sessions| {
                sessions
                    .range(..own_end)
                    .rev()
                    .take_while(|(_, end)| **end > time)
                    .map(|(start, end)| (*start, *end))
                    .collect()
            })
            .unwrap_or_default();
        if touched.is_empty() && self.is_closed(own_end) {
            self.dropped += 1;
            return Ok(());
        }
        let arguments = self.arguments(record)?;
        let stamp = self.arrive(time);
        touched.reverse();

        // Merge the touched sessions, earliest first, into one.
        let key = record.key.clone();
        let mut start = time;
        let mut end = own_end;
        let mut state: Option<Vec<Acc>> = None;
        let sessions = self.sessions.entry(key.clone()).or_default();
        for (touched_start, touched_end) in &touched {
            start = start.min(*touched_start);
            end = end.max(*touched_end);
            sessions.remove(touched_start);
            let id = WindowId {
                end: *touched_end,
                start: *touched_start,
                key: key.clone(),
            };
            let taken = self
                .windows
                .remove(&id)
                .unwrap_or_else(|| fresh_state(&self.aggregates));
            state = Some(match state {
                None => taken,
                Some(mut merged) => {
                    for (into, from) in merged.iter_mut().zip(taken) {
                        into.merge(from);
                    }
                    merged
                }
            });
        }
        sessions.insert(start, end);

        let reshaped = match touched.as_slice() {
            [(only_start, only_end)] => *only_start != start || *only_end != end,
            _ => true,
        };
        let mut state = state.unwrap_or_else(|| fresh_state(&self.aggregates));
        let changed = add_all(&mut state, &arguments, stamp) || reshaped;
        let id = WindowId { end, start, key };
        if changed && self.emit == EmitPolicy::Update {
            out.push(Emit::Next(result(&self.aggregates, &id, &state)));
        }
        self.windows.insert(id, state);
        Ok(())
    }

    fn kind_name(&self) -> &'static str {
        match self.kind {
            WindowKind::Tumbling { .. } => "tumbling",
            WindowKind::Hopping { .. } => "hopping",
            WindowKind::Session { .. } => "session",
        }
    }
}

impl Operator for Window {
    fn on_record(&mut self, record: Record, out: &mut Vec<Emit>) -> Result<(), StepError> {
        match self.kind {
            WindowKind::Tumbling { size_ms } => self.add_fixed(&record, size_ms, size_ms, out),
            WindowKind::Hopping {
                size_ms,
                advance_ms,
            } => self.add_fixed(&record, size_ms, advance_ms, out),
            WindowKind::Session { gap_ms } => self.add_session(&record, gap_ms, out),
        }
    }

    fn on_watermark(&mut self, watermark: i64, out: &mut Vec<Emit>) {
        // Watermarks never go back; should one, the windows stay closed.
        let watermark = self.watermark.map_or(watermark, |last| last.max(watermark));
        self.watermark = Some(watermark);
        while let Some(entry) = self.windows.first_entry()
            && entry.key().end.saturating_add(self.lateness_ms) <= watermark
        {
            let (id, state) = entry.remove_entry();
            if let Some(sessions) = self.sessions.get_mut(&id.key) {
                sessions.remove(&id.start);
                if sessions.is_empty() {
                    self.sessions.remove(&id.key);
                }
            }
            out.push(Emit::Next(result(&self.aggregates, &id, &state)));
        }
    }

    fn snapshot(&self) -> Value {
        let mut state = snapshot::begin("window");
        state.insert("kind".to_owned(), Value::from(self.kind_name()));
        state.insert(
            "watermark".to_owned(),
            self.watermark.map_or(Value::Null, Value::from),
        );
        state.insert("arrivals".to_owned(), Value::from(self.arrivals));
        let windows = self
            .windows
            .iter()
            .map(|(id, accs)| {
                let mut window = Map::new();
                window.insert("key".to_owned(), snapshot::bytes_to_json(id.key.as_ref()));
                window.insert("start".to_owned(), Value::from(id.start));
                window.insert("end".to_owned(), Value::from(id.end));
                window.insert(
                    "aggregates".to_owned(),
                    Value::Array(accs.iter().map(Acc::to_json).collect()),
                );
                Value::Object(window)
            })
            .collect();
        state.insert("windows".to_owned(), Value::Array(windows));
        Value::Object(state)
    }

    fn restore(&mut self, state: Value) -> Result<(), RestoreError> {
        let state = snapshot::open(&state, "window")?;
        let kind = snapshot::text(snapshot::member(state, "kind")?, "kind")?;
        if kind != self.kind_name() {
            return Err(RestoreError(format!(
                "state of {kind} windows given to {} windows",
                self.kind_name()
            )));
        }
        let watermark = match snapshot::member(state, "watermark")? {
            Value::Null => None,
            watermark => Some(snapshot::int(watermark, "watermark")?),
        };
        let arrivals = snapshot::uint(snapshot::member(state, "arrivals")?, "arrivals")?;
        let mut windows = BTreeMap::new();
        let mut sessions: BTreeMap<Key, BTreeMap<i64, i64>> = BTreeMap::new();
        for window in snapshot::list(snapshot::member(state, "windows")?, "windows")? {
            let window = snapshot::object(window, "window")?;
            let id = WindowId {
                end: snapshot::int(snapshot::member(window, "end")?, "window end")?,
                start: snapshot::int(snapshot::member(window, "start")?, "window start")?,
                key: snapshot::bytes_from_json(snapshot::member(window, "key")?)?,
            };
            let accs = snapshot::list(snapshot::member(window, "aggregates")?, "aggregates")?;
            if accs.len() != self.aggregates.len() {
                return Err(RestoreError(format!(
                    "state of {} aggregates for a window of {}",
                    accs.len(),
                    self.aggregates.len()
                )));
            }
            let accs = self
                .aggregates
                .iter()
                .zip(accs)
                .map(|(aggregate, acc)| Acc::from_json(aggregate.function, acc))
                .collect::<Result<Vec<_>, _>>()?;
            if matches!(self.kind, WindowKind::Session { .. }) {
                sessions
                    .entry(id.key.clone())
                    .or_default()
                    .insert(id.start, id.end);
            }
            if windows.insert(id, accs).is_some() {
                return Err(RestoreError("window stored twice".to_owned()));
            }
        }
        self.windows = windows;
        self.sessions = sessions;
        self.watermark = watermark;
        self.arrivals = arrivals;
        Ok(())
    }

    fn state_entries(&self) -> usize {
        self.windows.len()
    }

    fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// A new window's states.
fn fresh_state(aggregates: &[Aggregate]) -> Vec<Acc> {
    aggregates
        .iter()
        .map(|aggregate| Acc::new(aggregate.function))
        .collect()
}

/// Adds one record's arguments to a window's states; returns whether any changed.
fn add_all(state: &mut [Acc], arguments: &[Option<Value>], stamp: Stamp) -> bool {
    let mut changed = false;
    for (acc, argument) in state.iter_mut().zip(arguments) {
        changed |= acc.add(argument.as_ref(), stamp);
    }
    changed
}

/// The output record of a window.
fn result(aggregates: &[Aggregate], id: &WindowId, state: &[Acc]) -> Record {
    let mut value = Map::new();
    for (aggregate, acc) in aggregates.iter().zip(state) {
        value.insert(aggregate.name.clone(), acc.result());
    }
    value.insert("window_start".to_owned(), Value::from(id.start));
    value.insert("window_end".to_owned(), Value::from(id.end));
    let time = id.end.saturating_sub(1);
    Record {
        key: id.key.clone(),
        value: Payload::Json(Value::Object(value)),
        headers: Vec::new(),
        timestamp: time,
        event_time: time,
    }
}

fn out_of_range() -> StepError {
    StepError::Invalid("event time out of range for the window".to_owned())
}
