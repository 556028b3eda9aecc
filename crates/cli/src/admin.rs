//! `cloister admin`: talks to a node's admin API over plain HTTP/1.1 on a private address.

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::args::{AdminArgs, AdminCommand, AdminCommon};
use crate::exit::{Failure, Outcome};

/// Largest admin response read.
pub const RESPONSE_BYTES_MAX: u64 = 1024 * 1024;
/// How long an admin call may take.
pub const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);

/// `cloister admin ...`.
pub async fn run(args: AdminArgs) -> Result<Outcome, Failure> {
    match args.command {
        AdminCommand::Status(common) => status(common).await,
    }
}

async fn status(common: AdminCommon) -> Result<Outcome, Failure> {
    let authority = authority(&common.admin)?;
    let (code, body) = tokio::time::timeout(ADMIN_TIMEOUT, get(&authority, "/v1/status"))
        .await
        .map_err(|_| Failure::other(anyhow!("admin API at {} did not answer", common.admin)))?
        .map_err(Failure::other)?;
    let json: Value = serde_json::from_str(&body)
        .map_err(|_| Failure::other(anyhow!("admin API answered {code} with non-JSON")))?;
    if code != 200 {
        return Err(Failure::other(anyhow!("admin API answered {code}: {json}")));
    }
    Ok(Outcome::new(render_status(&json), json))
}

fn render_status(status: &Value) -> String {
    let field = |name: &str| status.get(name).map_or_else(String::new, |v| v.to_string());
    let group = &status["group_config"];
    format!(
        "role {} term {} commit {} applied {}\nbackups {} client sessions {}\npeer id {}\n\
         measurement {}{}\ngroup {}",
        field("role").trim_matches('"'),
        field("term"),
        field("commit_index"),
        field("applied_index"),
        field("backups"),
        field("client_sessions"),
        field("peer_id").trim_matches('"'),
        field("measurement").trim_matches('"'),
        if status["simulated"] == Value::Bool(true) {
            " (simulated: INSECURE)"
        } else {
            ""
        },
        if group.is_null() {
            "none".to_owned()
        } else {
            group.to_string()
        },
    )
}

/// `host:port` from `http://host:port[/]`.
fn authority(url: &str) -> Result<String, Failure> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| Failure::usage(format!("--admin {url:?}: expected http://HOST:PORT")))?;
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() || authority.contains('/') || !authority.contains(':') {
        return Err(Failure::usage(format!(
            "--admin {url:?}: expected http://HOST:PORT"
        )));
    }
    Ok(authority.to_owned())
}

/// One GET; returns (status code, body).
async fn get(authority: &str, path: &str) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect(authority)
        .await
        .with_context(|| format!("connecting to the admin API at {authority}"))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream
        .take(RESPONSE_BYTES_MAX + 1)
        .read_to_end(&mut response)
        .await?;
    if response.len() as u64 > RESPONSE_BYTES_MAX {
        bail!("admin response larger than {RESPONSE_BYTES_MAX} bytes");
    }
    let text = String::from_utf8(response).context("admin response is not UTF-8")?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("malformed HTTP response")?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .context("malformed HTTP status line")?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    Ok((
        code,
        if chunked {
            dechunk(body)?
        } else {
            body.to_owned()
        },
    ))
}

fn dechunk(mut body: &str) -> anyhow::Result<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").context("malformed chunk")?;
        let size = usize::from_str_radix(size.trim(), 16).context("malformed chunk size")?;
        if size == 0 {
            return Ok(out);
        }
        out.push_str(rest.get(..size).context("truncated chunk")?);
        body = rest.get(size + 2..).context("truncated chunk")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_urls_must_be_plain_http_with_a_port() {
        assert_eq!(
            authority("http://127.0.0.1:7401").unwrap(),
            "127.0.0.1:7401"
        );
        assert_eq!(
            authority("http://127.0.0.1:7401/").unwrap(),
            "127.0.0.1:7401"
        );
        for bad in [
            "https://x:1",
            "127.0.0.1:7401",
            "http://",
            "http://host",
            "http://h:1/x",
        ] {
            assert!(authority(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn chunked_bodies_are_reassembled() {
        assert_eq!(
            dechunk("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap(),
            "abcde"
        );
        assert!(dechunk("zz\r\n").is_err());
        assert!(dechunk("9\r\nabc").is_err());
    }
}
