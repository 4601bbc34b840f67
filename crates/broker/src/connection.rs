//! One client connection: a reader that cuts frames and starts a handler per request,
//! and a writer that sends responses strictly in request order. A bad frame closes the
//! connection and touches nothing else.

use std::net::SocketAddr;
use std::rc::Rc;

use bytes::BytesMut;
use sluice_protocol::{DecodeError, decode_request, encode_response, frame};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use crate::handler::{self, Reply};
use crate::shard::Shard;
use crate::socket::{SocketReader, SocketWriter};

/// Requests a connection may have in flight before the reader stops reading.
const MAX_IN_FLIGHT: usize = 64;
/// Read buffer growth step.
const READ_CHUNK: usize = 64 * 1024;

/// A request's eventual effect on the connection, in request order.
enum Outgoing {
    Response(BytesMut),
    Nothing,
    Close,
}

type Pending = oneshot::Receiver<Outgoing>;

pub(crate) async fn serve(
    shard: Rc<Shard>,
    mut reader: SocketReader,
    writer: SocketWriter,
    peer: SocketAddr,
) {
    let (order_tx, order_rx) = mpsc::channel::<Pending>(MAX_IN_FLIGHT);
    let writer_task = tokio::task::spawn_local(write_responses(writer, order_rx));
    let max_frame = shard.node.config.socket_request_max_bytes;
    let mut shutdown = shard.node.shutdown.clone();
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    'read: loop {
        // Handle every complete frame already buffered.
        loop {
            match frame::check(&buf, max_frame) {
                Ok(Some(body_len)) => {
                    let mut frame = buf.split_to(frame::SIZE_PREFIX_LEN + body_len);
                    let body = frame.split_off(frame::SIZE_PREFIX_LEN).freeze();
                    let Some(pending) = start_request(&shard, body, peer) else {
                        break 'read;
                    };
                    if order_tx.send(pending).await.is_err() {
                        break 'read;
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    debug!(%peer, %error, "closing connection: bad frame");
                    break 'read;
                }
            }
        }
        if *shutdown.borrow() {
            break;
        }
        // Reserve for the announced frame (already checked against the limit).
        let want = match frame::announced_body_len(&buf, max_frame) {
            Ok(Some(len)) => (len + frame::SIZE_PREFIX_LEN)
                .saturating_sub(buf.len())
                .min(max_frame),
            _ => READ_CHUNK,
        }
        .max(READ_CHUNK / 4);
        let read = tokio::select! {
            read = reader.read_into(buf, want) => read,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let (result, returned) = read;
        buf = returned;
        match result {
            Ok(0) => break,
            Ok(_) => {}
            Err(error) => {
                debug!(%peer, %error, "read failed");
                break;
            }
        }
    }
    drop(order_tx);
    let _ = writer_task.await;
    shard.connection_closed();
}

/// Decodes one request and starts its handler; `None` means close the connection.
fn start_request(shard: &Rc<Shard>, body: bytes::Bytes, peer: SocketAddr) -> Option<Pending> {
    let (tx, rx) = oneshot::channel();
    let request = match decode_request(body) {
        Ok(request) => request,
        Err(DecodeError::UnsupportedVersion {
            api_key: 18,
            correlation_id,
            version,
        }) => {
            debug!(%peer, version, "ApiVersions at an unknown version: answering with v0");
            let _ = tx.send(
                match handler::unsupported_version_response(correlation_id) {
                    Some(response) => Outgoing::Response(response),
                    None => Outgoing::Close,
                },
            );
            return Some(rx);
        }
        Err(error) => {
            debug!(%peer, %error, "closing connection: undecodable request");
            return None;
        }
    };
    let correlation_id = request.header.correlation_id;
    let api_key = request.api_key;
    let api_version = request.api_version;
    let shard = shard.clone();
    // Latency runs from the decode to the encoded response (queueing behind earlier
    // responses of the connection is not the request's own time).
    let started = std::time::Instant::now();
    tokio::task::spawn_local(async move {
        let outgoing = match handler::dispatch(shard, request, peer).await {
            Reply::Respond(body) => {
                let mut out = BytesMut::new();
                match encode_response(correlation_id, api_key, api_version, &body, &mut out) {
                    Ok(()) => Outgoing::Response(out),
                    Err(error) => {
                        // The client would wait forever for a response that never comes.
                        warn!(?api_key, api_version, %error, "cannot encode response; closing");
                        Outgoing::Close
                    }
                }
            }
            Reply::Silent => Outgoing::Nothing,
            Reply::Close => Outgoing::Close,
        };
        let failed = matches!(outgoing, Outgoing::Close);
        crate::metrics::local(|m| m.request_done(api_key as i16, started.elapsed(), failed));
        let _ = tx.send(outgoing);
    });
    Some(rx)
}

async fn write_responses(mut writer: SocketWriter, mut order: mpsc::Receiver<Pending>) {
    while let Some(pending) = order.recv().await {
        match pending.await {
            Ok(Outgoing::Response(response)) => {
                if writer.write_all(response.freeze()).await.is_err() {
                    break;
                }
            }
            Ok(Outgoing::Nothing) => {}
            Ok(Outgoing::Close) | Err(_) => break,
        }
    }
    writer.shutdown().await;
}
