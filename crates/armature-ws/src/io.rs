//! The byte stream under a WebSocket: a plain `TcpStream` on the lean path (read only when
//! readable, into a buffer allocated at that moment), or any `AsyncRead + AsyncWrite`.

use std::fmt;
use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A byte stream a WebSocket can run on.
pub trait RawStream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> RawStream for T {}

/// The transport of one connection.
pub(crate) enum Io {
    /// The lean path: readiness first, then a read into a buffer reserved only then.
    Tcp(TcpStream),
    /// Anything else (an upgraded stream hyper would not give back as a `TcpStream`, TLS…).
    Other(Box<dyn RawStream>),
    /// The connection is over and its stream dropped (closed). The connection task keeps
    /// the rest of the driver's state (without a socket) while the handler still runs.
    Closed,
}

impl fmt::Debug for Io {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Io::Tcp(tcp) => f.debug_tuple("Tcp").field(tcp).finish(),
            Io::Other(_) => f.write_str("Other(..)"),
            Io::Closed => f.write_str("Closed"),
        }
    }
}

/// Size of the stack buffer the generic path reads into before copying.
const STACK_READ: usize = 2048;

impl Io {
    /// Reads what is available into `buf`, reserving `chunk` bytes only once the socket is
    /// readable (so a connection waiting for data holds no buffer). `Ok(0)` is end of stream.
    pub(crate) fn poll_read_into(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
        chunk: usize,
    ) -> Poll<io::Result<usize>> {
        match self {
            Io::Tcp(tcp) => {
                ready!(tcp.poll_read_ready(cx))?;
                if buf.capacity() - buf.len() < chunk / 4 {
                    buf.reserve(chunk);
                }
                // Through `AsyncRead` rather than `try_read_buf`: a read that fills less
                // than the buffer clears the readiness (the socket is drained, and the
                // edge-triggered poller reports the next arrival), where `try_read_buf` would
                // leave it set and the next read would be a `recvfrom` returning `EAGAIN`:
                // one wasted system call per read, a third of an echo's.
                let n = ready!(std::pin::pin!(tcp.read_buf(buf)).poll(cx))?;
                Poll::Ready(Ok(n))
            }
            Io::Other(stream) => {
                let mut stack = [0u8; STACK_READ];
                let mut read = ReadBuf::new(&mut stack);
                ready!(Pin::new(stream).poll_read(cx, &mut read))?;
                let filled = read.filled();
                buf.extend_from_slice(filled);
                Poll::Ready(Ok(filled.len()))
            }
            Io::Closed => Poll::Ready(Ok(0)),
        }
    }

    pub(crate) fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self {
            Io::Tcp(tcp) => Pin::new(tcp).poll_write(cx, data),
            Io::Other(stream) => Pin::new(stream).poll_write(cx, data),
            Io::Closed => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }

    pub(crate) fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        slices: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self {
            Io::Tcp(tcp) => Pin::new(tcp).poll_write_vectored(cx, slices),
            Io::Other(stream) => Pin::new(stream).poll_write_vectored(cx, slices),
            Io::Closed => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }

    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Io::Tcp(_) | Io::Closed => Poll::Ready(Ok(())),
            Io::Other(stream) => Pin::new(stream).poll_flush(cx),
        }
    }

    /// The peer's address, when the transport is TCP.
    pub(crate) fn peer_addr(&self) -> Option<std::net::SocketAddr> {
        match self {
            Io::Tcp(tcp) => tcp.peer_addr().ok(),
            Io::Other(_) | Io::Closed => None,
        }
    }

    /// Best-effort: sends FIN (TCP) so the peer sees the end before the socket is dropped.
    pub(crate) fn shutdown_now(&mut self) {
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let _ = match self {
            Io::Tcp(tcp) => Pin::new(tcp).poll_shutdown(&mut cx),
            Io::Other(stream) => Pin::new(stream).poll_shutdown(&mut cx),
            Io::Closed => Poll::Ready(Ok(())),
        };
    }
}
