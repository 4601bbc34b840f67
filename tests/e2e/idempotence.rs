//! Idempotent produce on a raw connection: the broker must recognise a retried batch
//! (same producer id, epoch and base sequence) and not append it twice, and reject a
//! sequence gap with OUT_OF_ORDER_SEQUENCE_NUMBER, as Kafka does.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use sluice_e2e::{Broker, unique_topic};

use crate::common::{consumer, create_topic, wait_topic_ready, watermarks};

fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        let b = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// A RecordBatch v2 with `n` records and the given producer fields.
fn batch(pid: i64, epoch: i16, base_seq: i32, n: i32, tag: &str) -> Vec<u8> {
    let ts: i64 = 1_700_000_000_000;
    let mut records = Vec::new();
    for i in 0..n {
        let value = format!("{tag}-{i}");
        let mut r = vec![0u8]; // attributes
        put_varint(&mut r, 0); // timestamp delta
        put_varint(&mut r, i64::from(i)); // offset delta
        put_varint(&mut r, -1); // null key
        put_varint(&mut r, value.len() as i64);
        r.extend_from_slice(value.as_bytes());
        put_varint(&mut r, 0); // no headers
        put_varint(&mut records, r.len() as i64);
        records.extend_from_slice(&r);
    }
    // From attributes to the end: covered by the CRC.
    let mut tail = Vec::new();
    tail.extend_from_slice(&0i16.to_be_bytes()); // attributes
    tail.extend_from_slice(&(n - 1).to_be_bytes()); // last offset delta
    tail.extend_from_slice(&ts.to_be_bytes());
    tail.extend_from_slice(&ts.to_be_bytes());
    tail.extend_from_slice(&pid.to_be_bytes());
    tail.extend_from_slice(&epoch.to_be_bytes());
    tail.extend_from_slice(&base_seq.to_be_bytes());
    tail.extend_from_slice(&n.to_be_bytes());
    tail.extend_from_slice(&records);
    let crc = crc32c::crc32c(&tail);
    let mut b = Vec::new();
    b.extend_from_slice(&0i64.to_be_bytes()); // base offset
    let batch_len = 4 + 1 + 4 + tail.len(); // leader epoch + magic + crc + tail
    b.extend_from_slice(&(batch_len as i32).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
    b.push(2); // magic
    b.extend_from_slice(&crc.to_be_bytes());
    b.extend_from_slice(&tail);
    b
}

/// A Produce v3 body: one batch to partition 0 of `topic`.
fn produce_body(topic: &str, batch: &[u8], acks: i16) -> Vec<u8> {
    let mut body = (-1i16).to_be_bytes().to_vec(); // no transactional id
    body.extend_from_slice(&acks.to_be_bytes());
    body.extend_from_slice(&30_000i32.to_be_bytes());
    body.extend_from_slice(&1i32.to_be_bytes());
    body.extend_from_slice(&(topic.len() as i16).to_be_bytes());
    body.extend_from_slice(topic.as_bytes());
    body.extend_from_slice(&1i32.to_be_bytes());
    body.extend_from_slice(&0i32.to_be_bytes());
    body.extend_from_slice(&(batch.len() as i32).to_be_bytes());
    body.extend_from_slice(batch);
    body
}

struct Conn {
    s: TcpStream,
    corr: i32,
}

impl Conn {
    fn new(broker: &Broker) -> Conn {
        let s = TcpStream::connect(broker.kafka_addr()).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        Conn { s, corr: 0 }
    }

    /// Sends a request with a v1 header and returns the response body after the
    /// correlation id.
    fn call(&mut self, api_key: i16, version: i16, body: &[u8]) -> Vec<u8> {
        self.corr += 1;
        let mut h = Vec::new();
        h.extend_from_slice(&api_key.to_be_bytes());
        h.extend_from_slice(&version.to_be_bytes());
        h.extend_from_slice(&self.corr.to_be_bytes());
        h.extend_from_slice(&3i16.to_be_bytes());
        h.extend_from_slice(b"e2e");
        h.extend_from_slice(body);
        let mut f = (h.len() as i32).to_be_bytes().to_vec();
        f.extend_from_slice(&h);
        self.s.write_all(&f).expect("write request");
        let mut len = [0u8; 4];
        self.s.read_exact(&mut len).expect("response length");
        let mut resp = vec![0u8; i32::from_be_bytes(len) as usize];
        self.s.read_exact(&mut resp).expect("response body");
        assert_eq!(
            i32::from_be_bytes([resp[0], resp[1], resp[2], resp[3]]),
            self.corr,
            "correlation id"
        );
        resp.split_off(4)
    }

    /// InitProducerId v0 without a transactional id: (producer id, epoch).
    fn init_producer_id(&mut self) -> (i64, i16) {
        let mut body = (-1i16).to_be_bytes().to_vec();
        body.extend_from_slice(&60_000i32.to_be_bytes());
        let r = self.call(22, 0, &body);
        let err = i16::from_be_bytes([r[4], r[5]]);
        assert_eq!(err, 0, "InitProducerId error");
        let pid = i64::from_be_bytes(r[6..14].try_into().expect("8 bytes"));
        let epoch = i16::from_be_bytes([r[14], r[15]]);
        (pid, epoch)
    }

    /// Produce v3 of one batch to partition 0: (error code, base offset).
    fn produce(&mut self, topic: &str, batch: &[u8]) -> (i16, i64) {
        let r = self.call(0, 3, &produce_body(topic, batch, -1));
        // responses: [name, [index, error, base_offset, log_append_time]], throttle
        let name_len = i16::from_be_bytes([r[4], r[5]]) as usize;
        let at = 6 + name_len + 4; // skip name and partition count
        let err = i16::from_be_bytes([r[at + 4], r[at + 5]]);
        let base = i64::from_be_bytes(r[at + 6..at + 14].try_into().expect("8 bytes"));
        (err, base)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_idempotent_batch_is_not_appended_twice() {
    let broker = Broker::start_default();
    let b = broker.bootstrap();
    let topic = unique_topic("dedup");
    create_topic(&b, &topic, 1).await;
    wait_topic_ready(&b, &topic, 1);

    let mut conn = Conn::new(&broker);
    let (pid, epoch) = conn.init_producer_id();
    assert!(pid >= 0, "producer id {pid}");

    let first = batch(pid, epoch, 0, 3, "a");
    assert_eq!(conn.produce(&topic, &first), (0, 0), "first batch");
    // The same batch again, as a client retries after a lost response.
    let (err, base) = conn.produce(&topic, &first);
    assert!(
        (err == 0 && base == 0) || err == 46,
        "duplicate batch: expected NONE with the original offset 0 (or \
         DUPLICATE_SEQUENCE_NUMBER 46), got error {err} base offset {base}"
    );
    let c = consumer(&b);
    assert_eq!(
        watermarks(&c, &topic, 0),
        (0, 3),
        "the retried batch must not be appended again"
    );

    // The next sequence is accepted.
    assert_eq!(
        conn.produce(&topic, &batch(pid, epoch, 3, 2, "b")),
        (0, 3),
        "next batch"
    );
    // A gap in sequence numbers is refused.
    let (err, _) = conn.produce(&topic, &batch(pid, epoch, 10, 1, "gap"));
    assert_eq!(err, 45, "OUT_OF_ORDER_SEQUENCE_NUMBER for a sequence gap");
    assert_eq!(watermarks(&c, &topic, 0), (0, 5));
}

/// Kafka closes the connection when an acks=0 produce fails: the client has no response
/// to read the error from, and reconnecting makes it refresh metadata.
#[test]
fn failed_acks_0_produce_closes_the_connection() {
    let broker = Broker::start_default();
    let mut conn = Conn::new(&broker);
    let topic = unique_topic("missing-acks0");
    let body = produce_body(&topic, &batch(-1, -1, -1, 1, "x"), 0);
    let mut h = Vec::new();
    h.extend_from_slice(&0i16.to_be_bytes());
    h.extend_from_slice(&3i16.to_be_bytes());
    h.extend_from_slice(&1i32.to_be_bytes());
    h.extend_from_slice(&(-1i16).to_be_bytes()); // null client id
    h.extend_from_slice(&body);
    let mut frame = (h.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&h);
    conn.s.write_all(&frame).expect("write produce");
    let mut buf = [0u8; 16];
    let n = conn
        .s
        .read(&mut buf)
        .expect("read after failed acks=0 produce");
    assert_eq!(
        n, 0,
        "the broker closes the connection instead of answering"
    );
}
