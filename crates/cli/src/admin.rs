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
        AdminCommand::CreateGroup(create) => {
            let body = serde_json::json!({ "client_pq": create.client_pq }).to_string();
            post(&create.common, "/v1/create-group", &body).await
        }
        AdminCommand::Join(peer) => {
            let body = serde_json::json!({ "peer": peer.peer.to_string() }).to_string();
            post(&peer.common, "/v1/join", &body).await
        }
        AdminCommand::RequestVoting(common) => post(&common, "/v1/request-voting", "{}").await,
        AdminCommand::Relinquish(common) => post(&common, "/v1/relinquish", "{}").await,
        AdminCommand::Remove(common) => post(&common, "/v1/remove", "{}").await,
        AdminCommand::PingPeer(peer) => {
            let body = serde_json::json!({ "peer": peer.peer.to_string() }).to_string();
            post(&peer.common, "/v1/ping-peer", &body).await
        }
        AdminCommand::UpdateMinimums(update) => {
            let limits: serde_json::Map<String, Value> = update
                .set
                .iter()
                .map(|(name, value)| (name.clone(), Value::String(value.clone())))
                .collect();
            let body = serde_json::json!({ "limits": limits }).to_string();
            post(&update.common, "/v1/update-minimums", &body).await
        }
        AdminCommand::Hashes(common) => {
            let json = call(&common, "GET", "/v1/hashes", None).await?;
            let text = format!(
                "db hash {} commit {} applied {}",
                json["db_hash"].as_str().unwrap_or("?"),
                json["commit_index"],
                json["applied_index"]
            );
            Ok(Outcome::new(text, json))
        }
    }
}

/// POST a JSON body; print what the node answered.
async fn post(common: &AdminCommon, path: &str, body: &str) -> Result<Outcome, Failure> {
    let json = call(common, "POST", path, Some(body)).await?;
    Ok(Outcome::new(format!("ok: {json}"), json))
}

/// One admin call; a non-200 answer is an error with the node's message.
async fn call(
    common: &AdminCommon,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<Value, Failure> {
    let authority = authority(&common.admin)?;
    let (code, text) = tokio::time::timeout(ADMIN_TIMEOUT, request(&authority, method, path, body))
        .await
        .map_err(|_| Failure::other(anyhow!("admin API at {} did not answer", common.admin)))?
        .map_err(Failure::other)?;
    let json: Value = serde_json::from_str(&text)
        .map_err(|_| Failure::other(anyhow!("admin API answered {code} with non-JSON")))?;
    if code != 200 {
        return Err(Failure::other(anyhow!("admin API answered {code}: {json}")));
    }
    Ok(json)
}

async fn status(common: AdminCommon) -> Result<Outcome, Failure> {
    let json = call(&common, "GET", "/v1/status", None).await?;
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

/// One request; returns (status code, body).
pub async fn request(
    authority: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect(authority)
        .await
        .with_context(|| format!("connecting to the admin API at {authority}"))?;
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nAccept: application/json\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
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
    fn update_minimums_takes_repeated_name_equals_hex() {
        use clap::Parser;
        let parse = |args: &[&str]| {
            crate::args::Cli::try_parse_from(
                ["cloister", "admin", "update-minimums"].iter().chain(args),
            )
        };
        let cli = parse(&[
            "--set",
            "sim.security_version=0A",
            "--set",
            "sgx.isv_svn=07",
        ])
        .unwrap();
        let crate::args::Command::Admin(AdminArgs {
            command: AdminCommand::UpdateMinimums(update),
        }) = cli.command
        else {
            panic!("not update-minimums")
        };
        assert_eq!(
            update.set,
            [
                ("sim.security_version".to_owned(), "0a".to_owned()),
                ("sgx.isv_svn".to_owned(), "07".to_owned())
            ]
        );
        for bad in [
            &[][..],
            &["--set", "x"],
            &["--set", "x=1"],
            &["--set", "=01"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
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
