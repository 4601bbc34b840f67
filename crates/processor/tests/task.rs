//! Exactly-once of a task across crashes: a pipeline run that is killed at random
//! points (between steps, in the middle of writing a step's outputs, with or without
//! losing what was not flushed) and restarted from its checkpoint must leave exactly
//! the outputs of an uninterrupted run, record for record, in every output partition.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;
use sluice_processor::PipelineSpec;
use sluice_processor::spec::StartFrom;
use sluice_processor::task::{
    CheckpointStore, InputRecord, IoError, ORIGIN_HEADER, Origin, OutputRecord, ReadBatch, Sink,
    Source, SourceError, TableRead, Task, TaskId, parse_origin,
};

/// Runs a future whose every await is ready (the in-memory traits never wait).
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("in-memory task future was not ready"),
    }
}

/// Everything that survives a crash: input, outputs (durable prefix and the rest) and
/// the checkpoint.
#[derive(Default)]
struct World {
    input: Vec<InputRecord>,
    table: Vec<(Bytes, Option<Bytes>)>,
    partitions: BTreeMap<String, i32>,
    outputs: BTreeMap<(String, i32), Vec<OutputRecord>>,
    durable: BTreeMap<(String, i32), usize>,
    checkpoint: Option<Bytes>,
    /// Records each read returns at most (varied to show batching does not matter).
    read_records: usize,
    /// Crash while writing: append only this many more records, then fail.
    write_budget: Option<usize>,
}

impl World {
    /// A power cut: outputs not flushed are gone.
    fn lose_unflushed(&mut self) {
        for (tp, records) in &mut self.outputs {
            let keep = self.durable.get(tp).copied().unwrap_or(0);
            records.truncate(keep);
        }
    }
}

#[derive(Clone)]
struct Mem(Rc<RefCell<World>>);

impl Source for Mem {
    async fn read(&mut self, from: i64, _: usize, _: Duration) -> Result<ReadBatch, SourceError> {
        let world = self.0.borrow();
        let end = i64::try_from(world.input.len()).unwrap();
        let start = usize::try_from(from).unwrap().min(world.input.len());
        let take = world.read_records.max(1);
        let records: Vec<InputRecord> = world.input[start..].iter().take(take).cloned().collect();
        let next = records.last().map_or(from, |r| r.offset + 1);
        Ok(ReadBatch {
            records,
            next_offset: next,
            end_offset: end,
        })
    }

    async fn start_offset(&mut self, from: StartFrom) -> Result<i64, IoError> {
        Ok(match from {
            StartFrom::Earliest => 0,
            StartFrom::Latest => i64::try_from(self.0.borrow().input.len()).unwrap(),
        })
    }

    async fn read_table(&mut self, _: &str, positions: &[i64]) -> Result<TableRead, IoError> {
        let world = self.0.borrow();
        let from = usize::try_from(positions.first().copied().unwrap_or(0)).unwrap();
        Ok(TableRead {
            updates: world.table[from.min(world.table.len())..].to_vec(),
            positions: vec![i64::try_from(world.table.len()).unwrap()],
        })
    }
}

impl Sink for Mem {
    async fn partitions(&mut self, topic: &str) -> Result<i32, IoError> {
        Ok(self.0.borrow().partitions.get(topic).copied().unwrap_or(1))
    }

    async fn write(&mut self, records: Vec<OutputRecord>) -> Result<(), IoError> {
        let mut world = self.0.borrow_mut();
        for record in records {
            if let Some(budget) = &mut world.write_budget {
                if *budget == 0 {
                    return Err(IoError("crash while writing".to_owned()));
                }
                *budget -= 1;
            }
            world
                .outputs
                .entry((record.topic.to_string(), record.partition))
                .or_default()
                .push(record);
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), IoError> {
        let mut world = self.0.borrow_mut();
        let lens: Vec<_> = world
            .outputs
            .iter()
            .map(|(tp, r)| (tp.clone(), r.len()))
            .collect();
        world.durable.extend(lens);
        Ok(())
    }

    async fn end_offsets(&mut self, topic: &str) -> Result<Vec<i64>, IoError> {
        let world = self.0.borrow();
        let count = world.partitions.get(topic).copied().unwrap_or(1);
        Ok((0..count)
            .map(|p| {
                world
                    .outputs
                    .get(&(topic.to_owned(), p))
                    .map_or(0, |r| i64::try_from(r.len()).unwrap())
            })
            .collect())
    }

    async fn last_origin(
        &mut self,
        topic: &str,
        partition: i32,
        from: i64,
        task: &str,
    ) -> Result<Option<Origin>, IoError> {
        let world = self.0.borrow();
        let records = world
            .outputs
            .get(&(topic.to_owned(), partition))
            .cloned()
            .unwrap_or_default();
        Ok(records
            .iter()
            .skip(usize::try_from(from).unwrap())
            .filter_map(|r| {
                r.headers
                    .iter()
                    .find(|(k, _)| k == ORIGIN_HEADER)
                    .and_then(|(_, v)| v.as_deref())
                    .and_then(|v| parse_origin(v, task))
            })
            .max())
    }
}

impl CheckpointStore for Mem {
    async fn load(&mut self) -> Result<Option<Bytes>, IoError> {
        Ok(self.0.borrow().checkpoint.clone())
    }

    async fn save(&mut self, checkpoint: Bytes) -> Result<(), IoError> {
        self.0.borrow_mut().checkpoint = Some(checkpoint);
        Ok(())
    }
}

const SPEC: &str = r#"
name = "iot"
inputs = ["readings"]
time = "ts"
start = "earliest"
dead_letter = "dlq"
checkpoint_interval = "1h"

[[step]]
filter = "exists(device) && temperature > -50 && temperature < 150"

[[step]]
route = [{ when = "temperature > 80", to = "alerts", keep = true }]

[[step]]
key_by = "device"

[[step]]
window = { type = "tumbling", size = "10s", lateness = "2s" }
aggregate = { avg = "avg(temperature)", n = "count()" }
to = "avg"

[[step]]
window = { type = "hopping", size = "30s", advance = "10s" }
aggregate = { max = "max(temperature)" }
to = "max"

[[step]]
dedupe = { within = "5s" }
to = "dedup"
"#;

fn task_of(world: &Rc<RefCell<World>>, spec: &Arc<PipelineSpec>) -> Task<Mem, Mem, Mem> {
    let mem = Mem(world.clone());
    Task::new(
        TaskId {
            pipeline: Arc::from("iot#1"),
            topic: Arc::from("readings"),
            partition: 0,
        },
        spec.clone(),
        mem.clone(),
        mem.clone(),
        mem,
    )
}

/// Sensor readings: mostly in order, some out of order, some late, some malformed.
fn readings(seeds: &[(u8, u8, i16, u8)]) -> Vec<InputRecord> {
    let mut ts: i64 = 1_700_000_000_000;
    seeds
        .iter()
        .enumerate()
        .map(|(i, &(device, jump, temperature, kind))| {
            ts += i64::from(jump) * 100;
            let at = match kind % 10 {
                0 => ts - 15_000, // late or out of order
                1 => ts - 3_000,
                _ => ts,
            };
            let value = match kind % 23 {
                0 => "not json".to_owned(),
                1 => format!(r#"{{"device":"d{device}","temperature":{temperature}}}"#), // no ts
                _ => format!(
                    r#"{{"device":"d{}","temperature":{},"ts":{at}}}"#,
                    device % 5,
                    temperature / 2
                ),
            };
            InputRecord {
                offset: i64::try_from(i).unwrap(),
                key: Some(Bytes::from(format!("d{}", device % 5))),
                value: Some(Bytes::from(value)),
                headers: Vec::new(),
                timestamp: ts,
            }
        })
        .collect()
}

fn world(input: Vec<InputRecord>, read_records: usize) -> Rc<RefCell<World>> {
    let partitions = [
        ("alerts", 2),
        ("avg", 3),
        ("max", 1),
        ("dedup", 2),
        ("dlq", 1),
    ]
    .into_iter()
    .map(|(t, n)| (t.to_owned(), n))
    .collect();
    Rc::new(RefCell::new(World {
        input,
        partitions,
        read_records,
        ..World::default()
    }))
}

/// Steps until every input record is processed.
fn run_to_end(task: &mut Task<Mem, Mem, Mem>, world: &Rc<RefCell<World>>) -> Result<(), String> {
    let end = i64::try_from(world.borrow().input.len()).unwrap();
    loop {
        ready(task.step()).map_err(|e| e.to_string())?;
        if task.stats().position >= end {
            return Ok(());
        }
    }
}

fn outputs(world: &Rc<RefCell<World>>) -> BTreeMap<(String, i32), Vec<OutputRecord>> {
    world.borrow().outputs.clone()
}

#[derive(Debug, Clone)]
enum Event {
    /// Run this many steps.
    Steps(u8),
    /// Take a checkpoint now.
    Checkpoint,
    /// Crash after writing this many more output records, optionally losing what was
    /// not flushed.
    CrashWriting(u8, bool),
    /// Crash between steps, optionally losing what was not flushed.
    Crash(bool),
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        4 => (1u8..6).prop_map(Event::Steps),
        2 => Just(Event::Checkpoint),
        1 => (0u8..20, any::<bool>()).prop_map(|(n, lose)| Event::CrashWriting(n, lose)),
        1 => any::<bool>().prop_map(Event::Crash),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn crashes_and_restarts_leave_exactly_the_uninterrupted_output(
        seeds in prop::collection::vec((0u8..8, 0u8..40, -120i16..320, any::<u8>()), 1..300),
        events in prop::collection::vec(event(), 1..40),
        read_records in 1usize..50,
    ) {
        let spec = Arc::new(PipelineSpec::parse(SPEC).expect("spec parses"));
        let input = readings(&seeds);

        let reference = world(input.clone(), 64);
        let mut task = task_of(&reference, &spec);
        run_to_end(&mut task, &reference).unwrap();
        let expected = outputs(&reference);

        let crashing = world(input, read_records);
        let mut task = task_of(&crashing, &spec);
        for event in events {
            match event {
                Event::Steps(n) => {
                    for _ in 0..n {
                        if ready(task.step()).is_err() {
                            task = task_of(&crashing, &spec);
                        }
                    }
                }
                Event::Checkpoint => {
                    if ready(task.checkpoint()).is_err() {
                        task = task_of(&crashing, &spec);
                    }
                }
                Event::CrashWriting(n, lose) => {
                    crashing.borrow_mut().write_budget = Some(usize::from(n));
                    for _ in 0..4 {
                        if ready(task.step()).is_err() {
                            break;
                        }
                    }
                    let mut w = crashing.borrow_mut();
                    w.write_budget = None;
                    if lose {
                        w.lose_unflushed();
                    }
                    drop(w);
                    task = task_of(&crashing, &spec);
                }
                Event::Crash(lose) => {
                    if lose {
                        crashing.borrow_mut().lose_unflushed();
                    }
                    task = task_of(&crashing, &spec);
                }
            }
        }
        run_to_end(&mut task, &crashing).unwrap();
        let got = outputs(&crashing);
        prop_assert_eq!(got.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>());
        for (tp, records) in &expected {
            let got = &got[tp];
            prop_assert_eq!(got.len(), records.len(), "record count of {:?}", tp);
            prop_assert_eq!(got, records, "records of {:?}", tp);
        }
    }
}

#[test]
fn outputs_carry_origins_and_dead_letters_say_why() {
    let spec = Arc::new(PipelineSpec::parse(SPEC).expect("spec parses"));
    let input = readings(&[(1, 1, 20, 23), (2, 1, 30, 48), (3, 1, 40, 2)]);
    let w = world(input, 10);
    let mut task = task_of(&w, &spec);
    run_to_end(&mut task, &w).unwrap();
    let out = outputs(&w);
    let dead = &out[&("dlq".to_owned(), 0)];
    assert_eq!(dead.len(), 1, "the non-JSON reading is a dead letter");
    let error = dead[0]
        .headers
        .iter()
        .find(|(k, _)| k == "sluice.error")
        .and_then(|(_, v)| v.clone())
        .unwrap();
    assert!(String::from_utf8_lossy(&error).contains("not JSON"));
    for records in out.values() {
        for r in records {
            let origin = r.headers.iter().find(|(k, _)| k == ORIGIN_HEADER).unwrap();
            assert!(parse_origin(origin.1.as_deref().unwrap(), "iot#1/readings/0").is_some());
        }
    }
    let stats = task.stats();
    assert_eq!(stats.records_in, 3);
    assert_eq!(stats.dead_letters, 1);
}

/// A sink that never finishes a write once stalled: the output is slower than the input.
struct Stalling {
    inner: Mem,
    stalled: Rc<RefCell<bool>>,
}

impl Sink for Stalling {
    async fn partitions(&mut self, topic: &str) -> Result<i32, IoError> {
        self.inner.partitions(topic).await
    }

    async fn write(&mut self, records: Vec<OutputRecord>) -> Result<(), IoError> {
        if *self.stalled.borrow() {
            std::future::pending::<()>().await;
        }
        self.inner.write(records).await
    }

    async fn flush(&mut self) -> Result<(), IoError> {
        self.inner.flush().await
    }

    async fn end_offsets(&mut self, topic: &str) -> Result<Vec<i64>, IoError> {
        self.inner.end_offsets(topic).await
    }

    async fn last_origin(
        &mut self,
        topic: &str,
        partition: i32,
        from: i64,
        task: &str,
    ) -> Result<Option<Origin>, IoError> {
        self.inner.last_origin(topic, partition, from, task).await
    }
}

/// A source that counts its reads.
struct Counting {
    inner: Mem,
    reads: Rc<RefCell<usize>>,
}

impl Source for Counting {
    async fn read(
        &mut self,
        from: i64,
        max: usize,
        wait: Duration,
    ) -> Result<ReadBatch, SourceError> {
        *self.reads.borrow_mut() += 1;
        self.inner.read(from, max, wait).await
    }

    async fn start_offset(&mut self, from: StartFrom) -> Result<i64, IoError> {
        self.inner.start_offset(from).await
    }

    async fn read_table(&mut self, topic: &str, positions: &[i64]) -> Result<TableRead, IoError> {
        self.inner.read_table(topic, positions).await
    }
}

#[test]
fn a_stalled_output_stops_the_reading() {
    let spec = Arc::new(PipelineSpec::parse(SPEC).expect("spec parses"));
    let seeds: Vec<(u8, u8, i16, u8)> = (0..1000).map(|i| (i as u8 % 8, 3, 40, 2)).collect();
    let w = world(readings(&seeds), 10);
    let stalled = Rc::new(RefCell::new(true));
    let reads = Rc::new(RefCell::new(0));
    let mut task = Task::new(
        TaskId {
            pipeline: Arc::from("iot#1"),
            topic: Arc::from("readings"),
            partition: 0,
        },
        spec,
        Counting {
            inner: Mem(w.clone()),
            reads: reads.clone(),
        },
        Stalling {
            inner: Mem(w.clone()),
            stalled: stalled.clone(),
        },
        Mem(w.clone()),
    );
    let mut cx = Context::from_waker(Waker::noop());
    {
        let mut step = pin!(task.step());
        for _ in 0..100 {
            assert!(step.as_mut().poll(&mut cx).is_pending());
        }
    }
    // One read of 10 records, then nothing more while its outputs cannot be written.
    assert_eq!(*reads.borrow(), 1);
    assert_eq!(task.stats().position, 10);
    assert_eq!(
        task.stats().lag(),
        990,
        "the lag shows how far behind it is"
    );
    // A cancelled step leaves the task unusable (as after a crash): start it again, and
    // it resumes from its checkpoint.
    drop(task);
    *stalled.borrow_mut() = false;
    let mut task = task_of(
        &w,
        &Arc::new(PipelineSpec::parse(SPEC).expect("spec parses")),
    );
    run_to_end(&mut task, &w).unwrap();
    assert_eq!(task.stats().lag(), 0);
}
