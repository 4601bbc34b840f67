//! Malformed input on raw TCP connections: the bad connection is closed, the broker
//! survives, and well-behaved clients on other connections keep working.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use sluice_e2e::{Broker, unique_topic};

use crate::common::{Rec, basic_roundtrip, create_topic, produce_ok, producer, wait_topic_ready};

const CLOSE_TIMEOUT: Duration = Duration::from_secs(15);

fn connect(broker: &Broker) -> TcpStream {
    let s = TcpStream::connect(broker.kafka_addr()).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("read timeout");
    s
}

/// Writes, ignoring errors from a broker that already closed the socket.
fn send(s: &mut TcpStream, bytes: &[u8]) {
    let _ = s.write_all(bytes);
    let _ = s.flush();
}

/// Asserts the broker closes the connection (EOF or reset) within the timeout.
/// Any bytes it sends first are ignored.
fn expect_closed(mut s: TcpStream, what: &str) {
    let deadline = Instant::now() + CLOSE_TIMEOUT;
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset
                        | ErrorKind::ConnectionAborted
                        | ErrorKind::BrokenPipe
                ) =>
            {
                return;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("{what}: unexpected read error {e}"),
        }
        assert!(
            Instant::now() < deadline,
            "{what}: broker did not close the connection within {CLOSE_TIMEOUT:?}"
        );
    }
}

/// Reads one response frame (length-prefixed) with a deadline.
fn read_frame(s: &mut TcpStream, what: &str) -> Vec<u8> {
    s.set_read_timeout(Some(CLOSE_TIMEOUT)).expect("timeout");
    let mut len = [0u8; 4];
    s.read_exact(&mut len)
        .unwrap_or_else(|e| panic!("{what}: no response length: {e}"));
    let len = i32::from_be_bytes(len);
    assert!(
        (0..=16 * 1024 * 1024).contains(&len),
        "{what}: bad response length {len}"
    );
    let mut body = vec![0u8; len as usize];
    s.read_exact(&mut body)
        .unwrap_or_else(|e| panic!("{what}: short response: {e}"));
    body
}

/// A request frame with a v1 header (or v2 with empty tagged fields when `flexible`).
fn request(api_key: i16, version: i16, corr: i32, flexible: bool, body: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&api_key.to_be_bytes());
    h.extend_from_slice(&version.to_be_bytes());
    h.extend_from_slice(&corr.to_be_bytes());
    let client_id = b"sluice-e2e";
    h.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    h.extend_from_slice(client_id);
    if flexible {
        h.push(0); // no tagged fields
    }
    h.extend_from_slice(body);
    let mut f = (h.len() as i32).to_be_bytes().to_vec();
    f.extend_from_slice(&h);
    f
}

/// ApiVersions v3+ body: client software name and version (compact strings), no tags.
fn api_versions_v3_body() -> Vec<u8> {
    let mut b = Vec::new();
    for s in [&b"sluice-e2e"[..], &b"0.1"[..]] {
        b.push(s.len() as u8 + 1);
        b.extend_from_slice(s);
    }
    b.push(0);
    b
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Parses an ApiVersions v0 response body (after the length): `(correlation id, error,
/// [(api key, min, max)])`.
fn parse_api_versions_v0(b: &[u8]) -> (i32, i16, Vec<(i16, i16, i16)>) {
    let corr = be_i32(b, 0);
    let err = be_i16(b, 4);
    let mut keys = Vec::new();
    if b.len() >= 10 {
        let n = be_i32(b, 6);
        for i in 0..n.max(0) as usize {
            let at = 10 + i * 6;
            if at + 6 > b.len() {
                break;
            }
            keys.push((be_i16(b, at), be_i16(b, at + 2), be_i16(b, at + 4)));
        }
    }
    (corr, err, keys)
}

fn xorshift(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

/// A raw ApiVersions v3 request works, which validates the framing used by the other cases.
#[test]
fn raw_api_versions_v3_is_answered() {
    let broker = Broker::start_default();
    let mut s = connect(&broker);
    send(&mut s, &request(18, 3, 4242, true, &api_versions_v3_body()));
    let b = read_frame(&mut s, "ApiVersions v3");
    // Response header v0 (ApiVersions never uses the flexible response header).
    assert_eq!(be_i32(&b, 0), 4242, "correlation id");
    assert_eq!(be_i16(&b, 4), 0, "error code");
}

#[test]
fn api_versions_v99_gets_unsupported_version_and_version_list() {
    let broker = Broker::start_default();
    let mut s = connect(&broker);
    send(&mut s, &request(18, 99, 77, true, &api_versions_v3_body()));
    let b = read_frame(&mut s, "ApiVersions v99");
    let (corr, err, keys) = parse_api_versions_v0(&b);
    assert_eq!(corr, 77, "correlation id");
    assert_eq!(err, 35, "UNSUPPORTED_VERSION");
    let av = keys.iter().find(|(k, _, _)| *k == 18);
    assert!(
        matches!(av, Some((18, 0, max)) if *max >= 3),
        "version list advertises ApiVersions 0..=3+: {keys:?}"
    );
    assert!(
        keys.iter().any(|(k, _, _)| *k == 0),
        "Produce listed: {keys:?}"
    );
    assert!(
        keys.iter().any(|(k, _, _)| *k == 1),
        "Fetch listed: {keys:?}"
    );

    // The client then retries with v0 on the same connection, as librdkafka does.
    send(&mut s, &request(18, 0, 78, false, &[]));
    let b = read_frame(&mut s, "ApiVersions v0 after v99");
    let (corr, err, keys) = parse_api_versions_v0(&b);
    assert_eq!((corr, err), (78, 0));
    assert!(!keys.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_connections_are_closed_and_broker_survives() {
    let seed: u64 = std::env::var("SLUICE_E2E_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x00C0_FFEE);
    eprintln!("malformed: seed {seed} (set SLUICE_E2E_SEED to replay)");

    let mut broker = Broker::start_default();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("survive");
    create_topic(&bootstrap, &topic, 1).await;
    wait_topic_ready(&bootstrap, &topic, 1);
    // A producer with an established connection before the attack.
    let good = producer(&bootstrap, &[]);
    let one = |tag: &str| {
        vec![Rec {
            value: Some(tag.as_bytes().to_vec()),
            ..Rec::default()
        }]
    };
    produce_ok(&good, &topic, &one("before")).await;

    let mut cases: Vec<(String, TcpStream)> = Vec::new();

    // Random garbage, then half-close.
    let mut rng = seed | 1;
    for i in 0..8 {
        let mut s = connect(&broker);
        let len = 1 + (xorshift(&mut rng) % 4096) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| xorshift(&mut rng) as u8).collect();
        send(&mut s, &bytes);
        let _ = s.shutdown(Shutdown::Write);
        cases.push((format!("garbage #{i} ({len} bytes, half-closed)"), s));
    }
    // An HTTP request: the "length" is ~1.1 GiB.
    let mut s = connect(&broker);
    send(&mut s, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    cases.push(("HTTP request".to_owned(), s));
    // Length prefixes of 2 GiB - 1, -2^31 (0x80000000) and 0.
    for len in [0x7FFF_FFFFu32, 0x8000_0000, 0xFFFF_FFFF, 0] {
        let mut s = connect(&broker);
        send(&mut s, &len.to_be_bytes());
        send(&mut s, &[0u8; 64]);
        cases.push((format!("length prefix {len:#x}"), s));
    }
    // Unknown API key.
    let mut s = connect(&broker);
    send(&mut s, &request(12_345, 0, 1, false, &[]));
    cases.push(("unknown api key 12345".to_owned(), s));
    let mut s = connect(&broker);
    send(&mut s, &request(-1, 0, 1, false, &[]));
    cases.push(("api key -1".to_owned(), s));
    // A known API at an unknown version (only ApiVersions gets an answer for that).
    let mut s = connect(&broker);
    send(&mut s, &request(3, 99, 1, true, &[0, 0]));
    cases.push(("Metadata v99".to_owned(), s));
    // Metadata v1 whose body claims 5 topics but holds a truncated string.
    let mut s = connect(&broker);
    let mut body = 5i32.to_be_bytes().to_vec();
    body.extend_from_slice(&100i16.to_be_bytes());
    body.extend_from_slice(b"abc");
    send(&mut s, &request(3, 1, 1, false, &body));
    cases.push(("truncated Metadata body".to_owned(), s));
    // Produce v3 with a body cut short inside the frame.
    let mut s = connect(&broker);
    let mut body = vec![0xFF, 0xFF]; // null transactional id
    body.extend_from_slice(&(-1i16).to_be_bytes()); // acks
    body.extend_from_slice(&30_000i32.to_be_bytes()); // timeout
    body.extend_from_slice(&1i32.to_be_bytes()); // 1 topic
    body.extend_from_slice(&(topic.len() as i16).to_be_bytes());
    body.extend_from_slice(topic.as_bytes());
    body.extend_from_slice(&1i32.to_be_bytes()); // 1 partition
    body.extend_from_slice(&0i32.to_be_bytes()); // partition 0
    body.extend_from_slice(&1000i32.to_be_bytes()); // records: 1000 bytes...
    body.extend_from_slice(&[0u8; 20]); // ...but only 20 present
    send(&mut s, &request(0, 3, 1, false, &body));
    cases.push(("truncated Produce body".to_owned(), s));
    // A frame cut short, then half-close.
    let mut s = connect(&broker);
    let full = request(3, 1, 1, false, &(-1i32).to_be_bytes());
    let mut cut = 100i32.to_be_bytes().to_vec();
    cut.extend_from_slice(&full[4..]);
    send(&mut s, &cut);
    let _ = s.shutdown(Shutdown::Write);
    cases.push(("truncated frame, half-closed".to_owned(), s));

    // Connections that stall mid-frame stay open but must not block anyone else.
    let mut stalled = Vec::new();
    let mut s = connect(&broker);
    send(&mut s, &[0, 0]); // half a length prefix
    stalled.push(s);
    let mut s = connect(&broker);
    let full = request(18, 3, 9, true, &api_versions_v3_body());
    send(&mut s, &full[..full.len() - 3]); // all but the last bytes
    stalled.push(s);

    // Check all in parallel threads so one slow close does not serialize the rest.
    let handles: Vec<_> = cases
        .into_iter()
        .map(|(what, s)| std::thread::spawn(move || expect_closed(s, &what)))
        .collect();
    let mut failures = Vec::new();
    for h in handles {
        if let Err(e) = h.join() {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            failures.push(msg);
        }
    }

    assert!(
        broker.is_alive(),
        "broker process died\n{}",
        broker.log_banner()
    );
    // The old connection and fresh ones still work.
    produce_ok(&good, &topic, &one("after")).await;
    basic_roundtrip(&bootstrap, 2, 1_000).await;
    assert!(broker.is_alive(), "broker process died");
    drop(stalled);
    assert!(failures.is_empty(), "connections not closed: {failures:#?}");
}
