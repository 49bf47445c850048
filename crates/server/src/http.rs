//! A deliberately small HTTP/1.1 server for the admin port: one request per connection, bounded
//! header and body sizes, `Content-Length` bodies only. The admin API is a handful of JSON
//! endpoints for operators and scripts; a full HTTP stack would cost more than it gives.

use std::time::Duration;

use std::sync::Arc;

use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest request head accepted.
const HEAD_MAX: usize = 16 << 10;
/// Largest request body accepted.
const BODY_MAX: usize = 64 << 10;
/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// A parsed request.
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path without the query string.
    pub path: String,
    /// The header fields in the order received, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Request {
    /// The value of header `name` (case-insensitive, as HTTP field names are), trimmed; the
    /// first one when it is repeated.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A response.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The content type.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
    /// Extra header fields (`WWW-Authenticate` on a 401).
    pub headers: Vec<(&'static str, String)>,
}

impl Response {
    /// A JSON response.
    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        Response {
            status,
            content_type: "application/json",
            body: format!("{value:#}\n"),
            headers: Vec::new(),
        }
    }

    /// A JSON error: `{"error": message}` plus extra fields.
    pub fn error(status: u16, message: impl Into<String>) -> Response {
        Response::json(status, &serde_json::json!({ "error": message.into() }))
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        421 => "Misdirected Request",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// A request head: method, path, header fields and the body's length.
type Head = (String, String, Vec<(String, String)>, usize);

/// Parses a request head and tells how long the body is.
fn parse_head(head: &[u8]) -> Result<Head, Response> {
    let text =
        std::str::from_utf8(head).map_err(|_| Response::error(400, "request head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(Response::error(400, "malformed request line"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(Response::error(400, "only HTTP/1.x is served"));
    }
    let mut length = 0;
    let mut headers = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            return Err(Response::error(400, "malformed header"));
        };
        headers.push((name.to_string(), value.trim().to_string()));
        if name.eq_ignore_ascii_case("content-length") {
            length =
                value.trim().parse().map_err(|_| Response::error(400, "bad Content-Length"))?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Response::error(
                400,
                "chunked bodies are not accepted; send Content-Length",
            ));
        }
    }
    if length > BODY_MAX {
        return Err(Response::error(413, format!("bodies are limited to {BODY_MAX} bytes")));
    }
    let path = target.split('?').next().unwrap_or_default().to_string();
    Ok((method.to_string(), path, headers, length))
}

/// Parses a request head as [`read_request`] does, for the fuzz target in `fuzz/` and its
/// replayed inputs (not part of the supported API). Panics only if the parser does: whatever it
/// accepts has a body within the limit and a path without a query.
#[doc(hidden)]
pub fn fuzz_parse_head(head: &[u8]) {
    let Ok((_, path, headers, length)) = parse_head(head) else { return };
    assert!(length <= BODY_MAX, "a body of {length} bytes is over the limit");
    assert!(!path.contains('?'), "the query is left in {path:?}");
    let request = Request { method: String::new(), path, headers, body: Vec::new() };
    let _ = request.header("authorization");
}

/// Reads one request from `stream`.
pub async fn read_request<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Request, Response> {
    let work = async {
        let mut buf = Vec::with_capacity(1024);
        let head_end = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            if buf.len() > HEAD_MAX {
                return Err(Response::error(413, "request head too large"));
            }
            let mut chunk = [0u8; 4096];
            let n =
                stream.read(&mut chunk).await.map_err(|e| Response::error(400, e.to_string()))?;
            if n == 0 {
                return Err(Response::error(400, "connection closed mid-request"));
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let (method, path, headers, length) = parse_head(&buf[..head_end])?;
        let mut body = buf[head_end + 4..].to_vec();
        if body.len() > length {
            body.truncate(length);
        }
        while body.len() < length {
            let mut chunk = vec![0u8; (length - body.len()).min(16 << 10)];
            let n =
                stream.read(&mut chunk).await.map_err(|e| Response::error(400, e.to_string()))?;
            if n == 0 {
                return Err(Response::error(400, "connection closed mid-body"));
            }
            body.extend_from_slice(&chunk[..n]);
        }
        Ok(Request { method, path, headers, body })
    };
    tokio::time::timeout(READ_TIMEOUT, work)
        .await
        .unwrap_or_else(|_| Err(Response::error(408, "request not received in time")))
}

/// Writes `response` and closes.
pub async fn write_response<S: AsyncWrite + Unpin>(stream: &mut S, response: &Response) {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        response.status,
        reason(response.status),
        response.content_type,
        response.body.len()
    );
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(response.body.as_bytes()).await;
    // Over TLS, shutdown flushes and sends close_notify before closing.
    let _ = stream.shutdown().await;
}

/// Sends one request to an admin port without a token and returns the status code and body:
/// for nodes started without `admin_token`.
pub async fn call(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
    timeout: Duration,
) -> std::io::Result<(u16, String)> {
    call_with_token(addr, method, path, body, None, timeout).await
}

/// Sends one request to an admin port, with `Authorization: Bearer <token>` when a token is
/// given, and returns the status code and body: what the CLI's `cluster` commands and `up` use.
pub async fn call_with_token(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
    token: Option<&str>,
    timeout: Duration,
) -> std::io::Result<(u16, String)> {
    call_over(addr, method, path, body, token, None, timeout).await
}

/// As [`call_with_token`], over HTTPS when `tls` is given (an admin port with `tls_admin`): the
/// configuration trusts the node's CA, and may carry a client certificate, which the node
/// accepts in place of the token. The node's certificate must name the IP address dialed.
pub async fn call_over(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
    token: Option<&str>,
    tls: Option<&Arc<rustls::ClientConfig>>,
    timeout: Duration,
) -> std::io::Result<(u16, String)> {
    let work = async {
        let stream = TcpStream::connect(addr).await?;
        match tls {
            None => exchange(stream, addr, method, path, body, token).await,
            Some(config) => {
                let connector = tokio_rustls::TlsConnector::from(config.clone());
                let stream =
                    connector.connect(ServerName::IpAddress(addr.ip().into()), stream).await?;
                exchange(stream, addr, method, path, body, token).await
            }
        }
    };
    tokio::time::timeout(timeout, work).await.unwrap_or_else(|_| {
        Err(std::io::Error::new(std::io::ErrorKind::TimedOut, format!("{addr}: timed out")))
    })
}

/// One request and its response on a connected stream.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> std::io::Result<(u16, String)> {
    {
        let body = body.unwrap_or("");
        let authorization =
            token.map(|token| format!("Authorization: Bearer {token}\r\n")).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{authorization}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await?;
        stream.flush().await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        let text = String::from_utf8_lossy(&response).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad HTTP response from {addr}")))?;
        Ok((status, body.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_parse_and_refuse_what_they_should() {
        let head = b"POST /members?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 12";
        let headers = vec![("Host".into(), "a".into()), ("Content-Length".into(), "12".into())];
        assert_eq!(parse_head(head).unwrap(), ("POST".into(), "/members".into(), headers, 12));
        assert_eq!(parse_head(b"GET /").unwrap_err().status, 400);
        assert_eq!(
            parse_head(b"GET / HTTP/1.1\r\nContent-Length: 999999999").unwrap_err().status,
            413
        );
        assert_eq!(
            parse_head(b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked").unwrap_err().status,
            400
        );
        assert_eq!(parse_head(b"GET / HTTP/1.1\r\nbad header").unwrap_err().status, 400);
    }
}
