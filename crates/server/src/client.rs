//! A small asynchronous Redis-protocol client: how a follower forwards writes to the leader, and
//! what the `conclave kv`, `cluster` and `bench` commands and the tests speak. Pipelining is
//! explicit: [`RespClient::send`] queues commands, [`RespClient::flush`] writes them in one go,
//! [`RespClient::recv`] reads replies in order.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use conclave_resp::{parse_frame, Frame, Limits};
use std::sync::Arc;
use thiserror::Error;

use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Why a client call failed.
#[derive(Debug, Error)]
pub enum ClientError {
    /// Connecting, reading or writing failed.
    #[error("{addr}: {source}")]
    Io {
        /// The server.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The server closed the connection.
    #[error("{0}: connection closed by the server")]
    Closed(SocketAddr),
    /// The server sent bytes that are not RESP.
    #[error("{addr}: bad reply: {reason}")]
    Protocol {
        /// The server.
        addr: SocketAddr,
        /// What was wrong.
        reason: String,
    },
    /// No answer in time.
    #[error("{0}: timed out")]
    Timeout(SocketAddr),
}

/// A connection's byte stream: TCP, or TLS over TCP.
trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// One connection to a Redis-protocol server.
pub struct RespClient {
    addr: SocketAddr,
    stream: Box<dyn Stream>,
    read: BytesMut,
    write: BytesMut,
    limits: Limits,
}

/// Appends a command as a RESP array of bulk strings.
pub fn encode_command(out: &mut BytesMut, args: &[&[u8]]) {
    out.put_u8(b'*');
    out.put_slice(args.len().to_string().as_bytes());
    out.put_slice(b"\r\n");
    for arg in args {
        out.put_u8(b'$');
        out.put_slice(arg.len().to_string().as_bytes());
        out.put_slice(b"\r\n");
        out.put_slice(arg);
        out.put_slice(b"\r\n");
    }
}

impl std::fmt::Debug for RespClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RespClient").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl RespClient {
    /// Connects within `timeout`.
    pub async fn connect(addr: SocketAddr, timeout: Duration) -> Result<RespClient, ClientError> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ClientError::Timeout(addr))?
            .map_err(|source| ClientError::Io { addr, source })?;
        let _ = stream.set_nodelay(true);
        Ok(RespClient::over(addr, Box::new(stream)))
    }

    /// Connects over TLS within `timeout`, checking the server's certificate against `config`'s
    /// roots and the IP address dialed (and presenting `config`'s client certificate, if any).
    pub async fn connect_tls(
        addr: SocketAddr,
        timeout: Duration,
        config: Arc<rustls::ClientConfig>,
    ) -> Result<RespClient, ClientError> {
        let connect = async {
            let stream = TcpStream::connect(addr).await?;
            let _ = stream.set_nodelay(true);
            let name = ServerName::IpAddress(addr.ip().into());
            tokio_rustls::TlsConnector::from(config).connect(name, stream).await
        };
        let stream = tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| ClientError::Timeout(addr))?
            .map_err(|source| ClientError::Io { addr, source })?;
        Ok(RespClient::over(addr, Box::new(stream)))
    }

    fn over(addr: SocketAddr, stream: Box<dyn Stream>) -> RespClient {
        RespClient {
            addr,
            stream,
            read: BytesMut::with_capacity(16 << 10),
            write: BytesMut::with_capacity(16 << 10),
            limits: Limits::default(),
        }
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queues a command (sent by the next [`RespClient::flush`]).
    pub fn send(&mut self, args: &[&[u8]]) {
        encode_command(&mut self.write, args);
    }

    /// Queues raw bytes, for tests that send what a real client never would.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.write.put_slice(bytes);
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> Result<(), ClientError> {
        let addr = self.addr;
        let written = match self.stream.write_all(&self.write).await {
            // TLS holds the tail of a write until flushed.
            Ok(()) => self.stream.flush().await,
            Err(error) => Err(error),
        };
        written.map_err(|source| ClientError::Io { addr, source })?;
        self.write.clear();
        Ok(())
    }

    /// Reads the next reply.
    pub async fn recv(&mut self) -> Result<Frame, ClientError> {
        let addr = self.addr;
        loop {
            match parse_frame(&self.read, &self.limits) {
                Ok(Some((frame, used))) => {
                    self.read.advance(used);
                    return Ok(frame);
                }
                Ok(None) => {}
                Err(e) => return Err(ClientError::Protocol { addr, reason: e.to_string() }),
            }
            self.read.reserve(16 << 10);
            let n = self
                .stream
                .read_buf(&mut self.read)
                .await
                .map_err(|source| ClientError::Io { addr, source })?;
            if n == 0 {
                return Err(ClientError::Closed(addr));
            }
        }
    }

    /// Sends one command and reads its reply, within `timeout`.
    pub async fn call(&mut self, args: &[&[u8]], timeout: Duration) -> Result<Frame, ClientError> {
        let addr = self.addr;
        tokio::time::timeout(timeout, async {
            self.send(args);
            self.flush().await?;
            self.recv().await
        })
        .await
        .map_err(|_| ClientError::Timeout(addr))?
    }
}

/// The text of a reply, for printing: strings as text, integers as numbers, nil as `(nil)`,
/// arrays one element per line.
pub fn render(frame: &Frame) -> String {
    fn text(bytes: &Bytes) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }
    match frame {
        Frame::Simple(s)
        | Frame::Bulk(s)
        | Frame::BigNumber(s)
        | Frame::Verbatim { text: s, .. } => text(s),
        Frame::Error(e) | Frame::BulkError(e) => format!("(error) {}", text(e)),
        Frame::Integer(i) => format!("(integer) {i}"),
        Frame::Double(d) => format!("(double) {d}"),
        Frame::Boolean(b) => format!("({b})"),
        Frame::Null => "(nil)".into(),
        Frame::Array(items) | Frame::Set(items) | Frame::Push(items) => {
            if items.is_empty() {
                return "(empty array)".into();
            }
            items
                .iter()
                .enumerate()
                .map(|(i, f)| format!("{}) {}", i + 1, render(f)))
                .collect::<Vec<_>>()
                .join("\n")
        }
        Frame::Map(pairs) => pairs
            .iter()
            .map(|(k, v)| format!("{} => {}", render(k), render(v)))
            .collect::<Vec<_>>()
            .join("\n"),
    }
}
