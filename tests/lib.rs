//! End-to-end test harness: starts the real `sluice` binary on loopback.
//!
//! Every test starts its own [`Broker`] with fresh ports and a fresh data directory, so
//! the suite is hermetic and tests can run in parallel.
//!
//! The binary is found through `SLUICE_BIN`, or next to the test executable
//! (`target/<profile>/sluice`, since test binaries live in `target/<profile>/deps/`).
//!
//! Environment knobs:
//! - `SLUICE_BIN`: the broker binary to test;
//! - `SLUICE_E2E_LOG`: `RUST_LOG` for the broker (default `info`);
//! - `SLUICE_E2E_KEEP`: keep the data directory and log of a failed test;
//! - `SLUICE_E2E_ALLOW_PANICS`: do not fail a passing test whose broker log shows a panic;
//! - `SLUICE_E2E_SEED`: seed for the randomized malformed-input case.
//!
//! On failure the tail of the broker log is printed.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a broker may take to start accepting Kafka connections.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a broker may take to exit after SIGTERM.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Options for [`Broker::start`].
#[derive(Debug, Clone, Default)]
pub struct BrokerOptions {
    /// Node id (`--node-id`); 1 when `None`.
    pub node_id: Option<u32>,
    /// Number of shards (`--smp`); the broker default when `None`.
    pub smp: Option<usize>,
    /// I/O backend (`--io-backend auto|uring|tokio`); the broker default when `None`.
    pub io_backend: Option<String>,
    /// Extra command-line arguments appended after the generated ones.
    pub extra_args: Vec<String>,
}

impl BrokerOptions {
    /// Options with `--smp n`.
    pub fn smp(n: usize) -> Self {
        Self {
            smp: Some(n),
            ..Self::default()
        }
    }

    /// Options with `--io-backend backend`.
    pub fn io_backend(backend: &str) -> Self {
        Self {
            io_backend: Some(backend.to_owned()),
            ..Self::default()
        }
    }
}

/// Path of the `sluice` binary under test.
pub fn sluice_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SLUICE_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().expect("test binary has a parent dir");
    // target/debug/deps/e2e-xxxx -> target/debug/sluice
    let candidates = [dir.join("../sluice"), dir.join("sluice")];
    for c in &candidates {
        if c.is_file() {
            return c.clone();
        }
    }
    panic!(
        "sluice binary not found at {:?}; run `cargo build -p sluice` or set SLUICE_BIN",
        candidates
    );
}

/// Reserves a free loopback port. The port is released before returning, so another
/// process could take it; good enough for tests.
fn free_ports(n: usize) -> Vec<u16> {
    // Hold all listeners at once so the ports are distinct.
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local_addr").port())
        .collect()
}

/// Polls `cond` until it returns true or `timeout` passes. Returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    let mut backoff = Duration::from_millis(5);
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_millis(100));
    }
}

/// A running `sluice broker` process.
#[derive(Debug)]
pub struct Broker {
    child: Option<Child>,
    dir: TempDir,
    opts: BrokerOptions,
    kafka_port: u16,
    rpc_port: u16,
    admin_port: u16,
    log_path: PathBuf,
}

impl Broker {
    /// Starts a broker with fresh ports and a fresh data directory and waits until its
    /// Kafka port accepts TCP connections.
    pub fn start(opts: BrokerOptions) -> Broker {
        let dir = tempfile::Builder::new()
            .prefix("sluice-e2e-")
            .tempdir()
            .expect("tempdir");
        let ports = free_ports(3);
        let log_path = dir.path().join("broker.log");
        let mut broker = Broker {
            child: None,
            dir,
            opts,
            kafka_port: ports[0],
            rpc_port: ports[1],
            admin_port: ports[2],
            log_path,
        };
        // A port picked here can be taken by someone else (another test's client
        // socket) before the broker binds it: start again on fresh ports then.
        for attempt in 1.. {
            match broker.try_spawn() {
                Ok(()) => break,
                Err(e) if attempt < 5 && e.contains("Address already in use") => {
                    let ports = free_ports(3);
                    (broker.kafka_port, broker.rpc_port, broker.admin_port) =
                        (ports[0], ports[1], ports[2]);
                }
                Err(e) => panic!("{e}"),
            }
        }
        broker
    }

    /// Starts a broker with default options.
    pub fn start_default() -> Broker {
        Broker::start(BrokerOptions::default())
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The node id the broker runs with.
    pub fn node_id(&self) -> u32 {
        self.opts.node_id.unwrap_or(1)
    }

    /// The broker's command line (without the binary).
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            "broker".to_owned(),
            "--node-id".to_owned(),
            self.node_id().to_string(),
            "--data-dir".to_owned(),
            self.data_dir().display().to_string(),
            "--kafka-addr".to_owned(),
            format!("127.0.0.1:{}", self.kafka_port),
            "--rpc-addr".to_owned(),
            format!("127.0.0.1:{}", self.rpc_port),
            "--admin-addr".to_owned(),
            format!("127.0.0.1:{}", self.admin_port),
        ];
        if let Some(smp) = self.opts.smp {
            args.push("--smp".to_owned());
            args.push(smp.to_string());
        }
        if let Some(io) = &self.opts.io_backend {
            args.push("--io-backend".to_owned());
            args.push(io.clone());
        }
        args.extend(self.opts.extra_args.iter().cloned());
        args
    }

    fn spawn(&mut self) {
        if let Err(e) = self.try_spawn() {
            panic!("{e}");
        }
    }

    fn try_spawn(&mut self) -> Result<(), String> {
        assert!(self.child.is_none(), "broker already running");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open broker log");
        let log2 = log.try_clone().expect("clone log fd");
        let bin = sluice_bin();
        let args = self.args();
        let child = Command::new(&bin)
            .args(&args)
            .env(
                "RUST_LOG",
                std::env::var("SLUICE_E2E_LOG").unwrap_or_else(|_| "info".to_owned()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        self.child = Some(child);
        self.wait_ready(&bin, &args)
    }

    fn wait_ready(&mut self, bin: &Path, args: &[String]) -> Result<(), String> {
        let addr: SocketAddr = ([127, 0, 0, 1], self.kafka_port).into();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(format!(
                    "broker exited during startup with {status}\ncommand: {} {}\n{}",
                    bin.display(),
                    args.join(" "),
                    self.log_banner()
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "broker did not accept connections on {addr} within {START_TIMEOUT:?}\n{}",
                    self.log_banner()
                ));
            }
            // Poll tightly: tests act the moment the port opens, as real clients may.
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// `host:port` of the Kafka listener, for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.kafka_port)
    }

    /// The Kafka listener address.
    pub fn kafka_addr(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.kafka_port).into()
    }

    /// The admin HTTP API address (`--admin-addr`).
    pub fn admin_addr(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.admin_port).into()
    }

    /// Kafka listener port.
    pub fn kafka_port(&self) -> u16 {
        self.kafka_port
    }

    /// Process id of the running broker.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("broker not running").id()
    }

    /// Whether the process is still running.
    pub fn is_alive(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kills the broker with SIGKILL and reaps it.
    pub fn sigkill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends SIGTERM, waits for the process to exit and returns its status.
    pub fn terminate_status(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("broker not running");
        rustix::process::kill_process(
            rustix::process::Pid::from_child(&child),
            rustix::process::Signal::TERM,
        )
        .expect("send SIGTERM");
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "broker did not exit within {STOP_TIMEOUT:?} after SIGTERM\n{}",
                    self.log_banner()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM, waits for exit and asserts a successful exit status.
    pub fn terminate(&mut self) {
        let status = self.terminate_status();
        assert!(
            status.success(),
            "broker exited with {status} after SIGTERM\n{}",
            self.log_banner()
        );
    }

    /// Starts the broker again with the same data directory and ports. Kills it first
    /// (SIGKILL) if it is still running.
    pub fn restart(&mut self) {
        self.sigkill();
        self.spawn();
    }

    /// Everything the broker wrote to stdout and stderr so far.
    pub fn log_contents(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = File::open(&self.log_path) {
            let mut buf = Vec::new();
            let _ = f.read_to_end(&mut buf);
            s = String::from_utf8_lossy(&buf).into_owned();
        }
        s
    }

    /// The log framed for printing in a failure message (last 200 lines).
    pub fn log_banner(&self) -> String {
        let log = self.log_contents();
        let lines: Vec<&str> = log.lines().collect();
        let start = lines.len().saturating_sub(200);
        format!(
            "----- broker log ({}, last {} of {} lines) -----\n{}\n----- end of broker log -----",
            self.log_path.display(),
            lines.len() - start,
            lines.len(),
            lines[start..].join("\n")
        )
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.sigkill();
        if !std::thread::panicking() && std::env::var_os("SLUICE_E2E_ALLOW_PANICS").is_none() {
            // A test that passed must not hide a broker panic (a crashed connection task, a
            // panicking shard) behind a client that retried.
            let log = self.log_contents();
            if let Some(line) = log.lines().find(|l| l.contains("panicked at")) {
                panic!(
                    "the broker panicked during the test: {line}\n{}",
                    self.log_banner()
                );
            }
        }
        if std::thread::panicking() {
            eprintln!("{}", self.log_banner());
            if std::env::var_os("SLUICE_E2E_KEEP").is_some() {
                let path =
                    std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir")).keep();
                eprintln!("keeping broker dir {}", path.display());
            }
        }
    }
}

/// A unique topic name for a test.
pub fn unique_topic(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{n}-{nanos}", std::process::id())
}

/// Finds a program on `PATH`.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}
