//! `cloister bench --target etcd`: the same workers and samples, driving etcd's HTTP/JSON
//! gateway, so Cloister's figures have a well-known replicated store beside them.
//!
//! ```text
//!  N workers ──(one keep-alive TCP connection each; endpoints taken in turn)──▶ etcd member
//!     POST /v3/kv/put {"key": base64("bench-<worker>"), "value": base64(48 bytes)}
//!     latency of each 200 answer ─▶ Samples ─▶ ops/s, p50/p99/p999; other answers are errors
//! ```
//!
//! The HTTP/1.1 client is deliberately tiny: one request in flight per connection, bodies
//! framed by `Content-Length` or chunked encoding, nothing else (no TLS, no redirects).

use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::load::{DATA, ERROR_BACKOFF, Report};
use super::stats::Samples;
use crate::exit::Failure;

/// etcd's gateway path for a put.
pub const PUT_PATH: &str = "/v3/kv/put";
/// Largest response head (status line and headers) read.
pub const RESPONSE_HEAD_BYTES_MAX: usize = 16 * 1024;
/// Largest response body read.
pub const RESPONSE_BODY_BYTES_MAX: usize = 1024 * 1024;
/// How long one put may take, connection included, before it counts as an error.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Most endpoints accepted.
pub const ENDPOINTS_MAX: usize = 64;

/// Bytes read from the socket at a time.
const READ_CHUNK_BYTES: usize = 4 * 1024;

/// Run `clients` workers against `endpoints` (`http://HOST:PORT`) for `duration`.
pub async fn run(
    endpoints: &[String],
    clients: u32,
    duration: Duration,
) -> Result<Report, Failure> {
    if endpoints.is_empty() || endpoints.len() > ENDPOINTS_MAX {
        return Err(Failure::usage(format!(
            "--etcd-endpoints takes 1 to {ENDPOINTS_MAX} URLs"
        )));
    }
    let authorities = endpoints
        .iter()
        .map(|url| authority(url))
        .collect::<Result<Vec<_>, _>>()?;
    // Fail fast, with etcd's own answer, if any endpoint cannot take a put.
    for authority in &authorities {
        let response = put_once(authority).await.map_err(Failure::other)?;
        if response.status != 200 {
            return Err(Failure::other(anyhow!(
                "etcd at {authority} answered {} to a put: {}",
                response.status,
                String::from_utf8_lossy(&response.body)
            )));
        }
    }
    let start = Instant::now();
    let deadline = start + duration;
    let workers: Vec<_> = (0..clients)
        .map(|worker| {
            let authority = authorities[worker as usize % authorities.len()].clone();
            tokio::spawn(async move { work(worker, authority, deadline).await })
        })
        .collect();
    super::load::collect(workers, start).await
}

async fn put_once(authority: &str) -> anyhow::Result<HttpResponse> {
    let body = put_body(b"bench-probe", &DATA);
    let work = async {
        let mut connection = HttpConnection::connect(authority).await?;
        connection.post(PUT_PATH, &body).await
    };
    tokio::time::timeout(REQUEST_TIMEOUT, work)
        .await
        .map_err(|_| anyhow!("etcd at {authority} did not answer a put"))?
        .with_context(|| format!("putting to etcd at {authority}"))
}

async fn work(worker: u32, authority: String, deadline: Instant) -> (Samples, u64) {
    let mut samples = Samples::default();
    let mut errors = 0u64;
    let body = put_body(format!("bench-{worker}").as_bytes(), &DATA);
    let mut connection: Option<HttpConnection> = None;
    while Instant::now() < deadline {
        if connection.is_none() {
            match HttpConnection::connect(&authority).await {
                Ok(open) => connection = Some(open),
                Err(_) => {
                    errors += 1;
                    tokio::time::sleep(ERROR_BACKOFF).await;
                    continue;
                }
            }
        }
        let Some(open) = connection.as_mut() else {
            continue;
        };
        let started = Instant::now();
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, open.post(PUT_PATH, &body)).await;
        let failed = match answer {
            Ok(Ok(response)) => {
                if response.close {
                    connection = None;
                }
                if response.status == 200 {
                    samples.record(started.elapsed());
                    false
                } else {
                    true
                }
            }
            Ok(Err(_)) | Err(_) => {
                connection = None;
                true
            }
        };
        if failed {
            errors += 1;
            tokio::time::sleep(ERROR_BACKOFF).await;
        }
    }
    (samples, errors)
}

/// `HOST:PORT` from `http://HOST:PORT[/]`.
pub fn authority(url: &str) -> Result<String, Failure> {
    let bad = || {
        Failure::usage(format!(
            "--etcd-endpoints {url:?}: expected http://HOST:PORT"
        ))
    };
    let rest = url.strip_prefix("http://").ok_or_else(bad)?;
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    let port_ok = authority
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if !port_ok || authority.contains('/') {
        return Err(bad());
    }
    Ok(authority.to_owned())
}

/// The JSON body of a put: etcd's gateway takes bytes fields as base64.
pub fn put_body(key: &[u8], value: &[u8]) -> String {
    serde_json::json!({ "key": BASE64.encode(key), "value": BASE64.encode(value) }).to_string()
}

/// One HTTP/1.1 POST of a JSON body, keeping the connection open.
pub fn format_request(authority: &str, path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
         Accept: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// What the server answered.
#[derive(Debug, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The body, de-chunked.
    pub body: Vec<u8>,
    /// The server will close the connection after this response.
    pub close: bool,
}

/// A keep-alive HTTP/1.1 connection with one request in flight.
pub struct HttpConnection {
    stream: TcpStream,
    authority: String,
    /// Bytes read past the previous response (none with a well-behaved server).
    buffer: Vec<u8>,
}

impl HttpConnection {
    /// Connect to `authority` (`HOST:PORT`).
    pub async fn connect(authority: &str) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(authority)
            .await
            .with_context(|| format!("connecting to {authority}"))?;
        // One small request per round trip: do not let Nagle hold it back.
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            authority: authority.to_owned(),
            buffer: Vec::with_capacity(READ_CHUNK_BYTES),
        })
    }

    /// POST `body` to `path` and read the whole response.
    pub async fn post(&mut self, path: &str, body: &str) -> anyhow::Result<HttpResponse> {
        self.stream
            .write_all(&format_request(&self.authority, path, body))
            .await?;
        read_response(&mut self.stream, &mut self.buffer).await
    }
}

/// Read one response from `reader`; `buffer` holds bytes already read and keeps any bytes
/// read past this response.
pub async fn read_response<R: AsyncRead + Unpin>(
    reader: &mut R,
    buffer: &mut Vec<u8>,
) -> anyhow::Result<HttpResponse> {
    let head_end = loop {
        if let Some(at) = find(buffer, b"\r\n\r\n", 0) {
            break at + 4;
        }
        if buffer.len() > RESPONSE_HEAD_BYTES_MAX {
            bail!("response head larger than {RESPONSE_HEAD_BYTES_MAX} bytes");
        }
        read_more(reader, buffer).await?;
    };
    let head = std::str::from_utf8(&buffer[..head_end]).context("response head is not UTF-8")?;
    let head = parse_head(head)?;
    let body = match head.framing {
        Framing::Length(length) => {
            if length > RESPONSE_BODY_BYTES_MAX {
                bail!("response body larger than {RESPONSE_BODY_BYTES_MAX} bytes");
            }
            while buffer.len() < head_end + length {
                read_more(reader, buffer).await?;
            }
            let body = buffer[head_end..head_end + length].to_vec();
            buffer.drain(..head_end + length);
            body
        }
        Framing::Chunked => {
            let (body, end) = read_chunked(reader, buffer, head_end).await?;
            buffer.drain(..end);
            body
        }
    };
    Ok(HttpResponse {
        status: head.status,
        body,
        close: head.close,
    })
}

enum Framing {
    Length(usize),
    Chunked,
}

struct Head {
    status: u16,
    framing: Framing,
    close: bool,
}

fn parse_head(head: &str) -> anyhow::Result<Head> {
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.split(' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        bail!("not an HTTP/1.x response: {status_line:?}");
    }
    let status: u16 = parts
        .next()
        .and_then(|code| code.parse().ok())
        .filter(|code| (100..=599).contains(code))
        .with_context(|| format!("malformed status line {status_line:?}"))?;
    let mut length = None;
    let mut chunked = false;
    let mut close = version == "HTTP/1.0";
    for line in lines.filter(|line| !line.is_empty()) {
        let (name, value) = line
            .split_once(':')
            .with_context(|| format!("malformed header {line:?}"))?;
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                length = Some(value.parse().context("malformed Content-Length")?);
            }
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "connection" => close = value.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    let framing = match (chunked, length) {
        (true, _) => Framing::Chunked,
        (false, Some(length)) => Framing::Length(length),
        // No body by definition (we never send HEAD).
        (false, None) if status == 204 || status == 304 || status < 200 => Framing::Length(0),
        (false, None) => bail!("response has neither Content-Length nor chunked encoding"),
    };
    Ok(Head {
        status,
        framing,
        close,
    })
}

/// De-chunk the body starting at `start` in `buffer`; returns it and where it ends.
async fn read_chunked<R: AsyncRead + Unpin>(
    reader: &mut R,
    buffer: &mut Vec<u8>,
    start: usize,
) -> anyhow::Result<(Vec<u8>, usize)> {
    let mut body = Vec::new();
    let mut at = start;
    loop {
        let size_end = line_end(reader, buffer, at).await?;
        let size_text = std::str::from_utf8(&buffer[at..size_end]).context("chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).context("malformed chunk size")?;
        at = size_end + 2;
        if size == 0 {
            // Trailers (none expected), then the empty line.
            loop {
                let end = line_end(reader, buffer, at).await?;
                let empty = end == at;
                at = end + 2;
                if empty {
                    return Ok((body, at));
                }
            }
        }
        if body.len() + size > RESPONSE_BODY_BYTES_MAX {
            bail!("response body larger than {RESPONSE_BODY_BYTES_MAX} bytes");
        }
        while buffer.len() < at + size + 2 {
            read_more(reader, buffer).await?;
        }
        if &buffer[at + size..at + size + 2] != b"\r\n" {
            bail!("chunk not followed by CRLF");
        }
        body.extend_from_slice(&buffer[at..at + size]);
        at += size + 2;
    }
}

/// Where the line starting at `from` ends (the index of its CRLF), reading as needed.
async fn line_end<R: AsyncRead + Unpin>(
    reader: &mut R,
    buffer: &mut Vec<u8>,
    from: usize,
) -> anyhow::Result<usize> {
    loop {
        if let Some(at) = find(buffer, b"\r\n", from) {
            return Ok(at);
        }
        if buffer.len() - from > RESPONSE_HEAD_BYTES_MAX {
            bail!("line longer than {RESPONSE_HEAD_BYTES_MAX} bytes");
        }
        read_more(reader, buffer).await?;
    }
}

async fn read_more<R: AsyncRead + Unpin>(
    reader: &mut R,
    buffer: &mut Vec<u8>,
) -> anyhow::Result<()> {
    let mut chunk = [0u8; READ_CHUNK_BYTES];
    let read = reader.read(&mut chunk).await?;
    if read == 0 {
        bail!("connection closed mid-response");
    }
    buffer.extend_from_slice(&chunk[..read]);
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|window| window == needle)
        .map(|at| at + from)
}

#[cfg(test)]
#[path = "etcd_tests.rs"]
mod tests;
