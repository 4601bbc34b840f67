//! The admin HTTP API on the admin address (default 127.0.0.1:9644): readiness and
//! liveness, brokers, cluster health, partitions, the node's config, and Prometheus
//! metrics at `/metrics`.
//!
//! Owns: the admin listener, its thread and its connections.
//! Must not know: the Kafka protocol; it reads the catalog and asks shards through
//! [`NodeShared::ask_shard`].
//!
//! It runs on its own small thread with a current-thread tokio runtime, not on shard 0:
//! a slow scrape or a flood of bad HTTP then never delays shard 0's Kafka traffic, and
//! the server can answer `/v1/status/ready` with 503 while the shards are still opening
//! their partitions.
//!
//! Bad input is bounded: heads of at most [`http::MAX_HEAD_BYTES`] and
//! [`http::MAX_HEADERS`] headers, at most [`MAX_CONNECTIONS`] connections, and
//! connections idle for [`IDLE_TIMEOUT`] (or stalled mid-request for
//! [`READ_TIMEOUT`]) are closed.

mod http;
mod routes;

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::{debug, info, warn};

use crate::error::StartError;
use crate::shard::NodeShared;
use http::{HttpError, Parsed, Response};

/// Connections served at once; more are closed on accept.
pub(crate) const MAX_CONNECTIONS: usize = 64;
/// A keep-alive connection with no request for this long is closed.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// A request whose head or body stalls this long is dropped (slow-loris).
pub(crate) const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest time one request may take (a scrape waits on every shard).
const SERVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest time a response may take to write.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// What every request handler reads.
pub(crate) struct AdminState {
    pub(crate) node: Arc<NodeShared>,
    /// The bound Kafka listener address.
    pub(crate) kafka_addr: SocketAddr,
    /// The bound admin listener address.
    pub(crate) admin_addr: SocketAddr,
    /// Set once every shard serves and its partitions are open.
    ready: AtomicBool,
}

impl AdminState {
    /// Ready: started and not shutting down.
    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && !*self.node.shutdown.borrow()
    }
}

/// The running admin server.
pub(crate) struct AdminServer {
    state: Arc<AdminState>,
    thread: Option<JoinHandle<()>>,
}

impl AdminServer {
    /// Binds the admin address and starts serving (not ready yet).
    ///
    /// # Errors
    /// [`StartError::Bind`] when the address cannot be bound, [`StartError::Shard`]
    /// when the thread cannot start.
    pub(crate) fn start(
        node: Arc<NodeShared>,
        kafka_addr: SocketAddr,
        listener: std::net::TcpListener,
    ) -> Result<Self, StartError> {
        let addr = node.config.admin_addr;
        let bind_error = |source| StartError::Bind { addr, source };
        listener.set_nonblocking(true).map_err(bind_error)?;
        let admin_addr = listener.local_addr().map_err(bind_error)?;
        let state = Arc::new(AdminState {
            node,
            kafka_addr,
            admin_addr,
            ready: AtomicBool::new(false),
        });
        let thread_state = state.clone();
        let thread = std::thread::Builder::new()
            .name("admin-http".to_owned())
            .spawn(move || run(thread_state, listener))
            .map_err(|e| StartError::Shard {
                shard: 0,
                reason: format!("cannot start the admin HTTP thread: {e}"),
            })?;
        info!(%admin_addr, "admin API listening");
        Ok(Self {
            state,
            thread: Some(thread),
        })
    }

    /// The bound address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.state.admin_addr
    }

    /// Every shard serves: `/v1/status/ready` answers 200 from now on.
    pub(crate) fn set_ready(&self) {
        self.state.ready.store(true, Ordering::Release);
    }

    /// Waits for the thread to stop (it stops when the node's shutdown signal fires).
    pub(crate) fn join(mut self) {
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            warn!("the admin HTTP thread panicked");
        }
    }
}

fn run(state: Arc<AdminState>, listener: std::net::TcpListener) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            warn!(%error, "admin API unavailable: cannot build its runtime");
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, accept_loop(state, listener));
}

async fn accept_loop(state: Arc<AdminState>, listener: std::net::TcpListener) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(error) => {
            warn!(%error, "admin API unavailable: cannot register its listener");
            return;
        }
    };
    let open = Rc::new(Cell::new(0usize));
    let mut shutdown = state.node.shutdown.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if open.get() >= MAX_CONNECTIONS {
                        debug!(%peer, "admin API: too many connections, closing");
                        continue;
                    }
                    open.set(open.get() + 1);
                    let state = state.clone();
                    let open = open.clone();
                    tokio::task::spawn_local(async move {
                        serve_connection(&state, stream).await;
                        open.set(open.get().saturating_sub(1));
                    });
                }
                Err(error) => {
                    warn!(%error, "admin API accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
    }
    // Dropping the LocalSet ends the open connections.
    debug!("admin API stopped");
}

/// Reads until `buf` holds `want` bytes; `false` when the peer closed, failed or
/// stalled past `timeout`.
async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>, want: usize, timeout: Duration) -> bool {
    let mut chunk = [0u8; 4096];
    while buf.len() < want {
        match tokio::time::timeout(timeout, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            _ => return false,
        }
    }
    true
}

/// Serves requests on one connection until it closes, errs or idles out.
async fn serve_connection(state: &Arc<AdminState>, mut stream: TcpStream) {
    let mut buf = Vec::with_capacity(1024);
    loop {
        let parsed = loop {
            match http::parse_head(&buf) {
                Ok(Parsed::Partial) => {}
                other => break other,
            }
            let timeout = if buf.is_empty() {
                IDLE_TIMEOUT
            } else {
                READ_TIMEOUT
            };
            let want = buf.len() + 1;
            if !fill(&mut stream, &mut buf, want, timeout).await {
                return;
            }
        };
        let (head, len) = match parsed {
            Ok(Parsed::Complete { head, len }) => (head, len),
            Ok(Parsed::Partial) => return,
            Err(error) => {
                debug!(status = error.status, message = %error.message, "admin API: bad request");
                write(&mut stream, &Response::error(&error), false).await;
                linger_close(stream).await;
                return;
            }
        };
        // The body (bounded by the parser): a pipeline spec for deploy, else ignored.
        let end = len.saturating_add(head.content_length);
        if !fill(&mut stream, &mut buf, end, READ_TIMEOUT).await {
            return;
        }
        let body = buf.get(len..end).map(<[u8]>::to_vec).unwrap_or_default();
        buf.drain(..end.min(buf.len()));
        let response = match routes::route(&head.method, &head.path) {
            Ok(route) => tokio::time::timeout(SERVE_TIMEOUT, routes::serve(state, route, body))
                .await
                .unwrap_or_else(|_| Response::error(&HttpError::new(503, "timed out"))),
            Err(error) => Response::error(&error),
        };
        let keep_alive = head.keep_alive && !*state.node.shutdown.borrow();
        if !write(&mut stream, &response, keep_alive).await || !keep_alive {
            return;
        }
    }
}

/// Closes after an error response without resetting: a close with unread input would
/// send RST and could discard the response before the client reads it.
async fn linger_close(mut stream: TcpStream) {
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 4096];
    let mut left = http::MAX_HEAD_BYTES + http::MAX_BODY_BYTES;
    while left > 0 {
        match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut sink)).await {
            Ok(Ok(n)) if n > 0 => left = left.saturating_sub(n),
            _ => break,
        }
    }
}

async fn write(stream: &mut TcpStream, response: &Response, keep_alive: bool) -> bool {
    let bytes = response.to_bytes(keep_alive);
    matches!(
        tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(&bytes)).await,
        Ok(Ok(()))
    )
}
