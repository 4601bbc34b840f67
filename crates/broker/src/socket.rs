//! The small socket layer: one connection's read and write halves on either runtime.
//! io_uring sockets take owned buffers; tokio sockets borrow them. Handlers never see
//! the difference.

use std::io;
use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_uring::buf::BoundedBuf;

/// A listener bound on one shard (SO_REUSEPORT lets every shard bind the same address).
pub(crate) enum Listener {
    Tokio(tokio::net::TcpListener),
    Uring(tokio_uring::net::TcpListener),
}

impl Listener {
    pub(crate) fn from_std(listener: std::net::TcpListener, uring: bool) -> io::Result<Self> {
        if uring {
            Ok(Self::Uring(tokio_uring::net::TcpListener::from_std(
                listener,
            )))
        } else {
            listener.set_nonblocking(true)?;
            Ok(Self::Tokio(tokio::net::TcpListener::from_std(listener)?))
        }
    }

    pub(crate) async fn accept(
        &self,
    ) -> io::Result<(SocketReader, SocketWriter, std::net::SocketAddr)> {
        match self {
            Self::Tokio(listener) => {
                let (stream, peer) = listener.accept().await?;
                stream.set_nodelay(true)?;
                let (read, write) = stream.into_split();
                Ok((SocketReader::Tokio(read), SocketWriter::Tokio(write), peer))
            }
            Self::Uring(listener) => {
                let (stream, peer) = listener.accept().await?;
                stream.set_nodelay(true)?;
                let stream = Rc::new(stream);
                Ok((
                    SocketReader::Uring(stream.clone()),
                    SocketWriter::Uring(stream),
                    peer,
                ))
            }
        }
    }
}

/// Read half of a connection.
pub(crate) enum SocketReader {
    Tokio(tokio::net::tcp::OwnedReadHalf),
    Uring(Rc<tokio_uring::net::TcpStream>),
}

impl SocketReader {
    /// Appends what the socket has to `buf` (reserving `min_spare` bytes first); returns
    /// the bytes read, 0 at end of stream.
    pub(crate) async fn read_into(
        &mut self,
        buf: BytesMut,
        min_spare: usize,
    ) -> (io::Result<usize>, BytesMut) {
        let mut buf = buf;
        buf.reserve(min_spare);
        match self {
            Self::Tokio(read) => {
                let result = read.read_buf(&mut buf).await;
                (result, buf)
            }
            Self::Uring(stream) => {
                let len = buf.len();
                let (result, slice) = stream.read(buf.slice(len..)).await;
                (result, slice.into_inner())
            }
        }
    }
}

/// Write half of a connection.
pub(crate) enum SocketWriter {
    Tokio(tokio::net::tcp::OwnedWriteHalf),
    Uring(Rc<tokio_uring::net::TcpStream>),
}

impl SocketWriter {
    pub(crate) async fn write_all(&mut self, buf: Bytes) -> io::Result<()> {
        match self {
            Self::Tokio(write) => write.write_all(&buf).await,
            Self::Uring(stream) => stream.write_all(buf).await.0,
        }
    }

    pub(crate) async fn shutdown(&mut self) {
        match self {
            Self::Tokio(write) => {
                let _ = write.shutdown().await;
            }
            Self::Uring(stream) => {
                let _ = stream.shutdown(std::net::Shutdown::Write);
            }
        }
    }
}
