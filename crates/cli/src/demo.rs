//! `cloister demo --replicas N`: a local N-replica simulated group in one command, for people
//! trying Cloister out. Each replica is its own `cloister node --simulated` process.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use serde_json::json;

use crate::args::DemoArgs;
use crate::exit::{Failure, Outcome};

/// Most replicas a demo starts.
pub const DEMO_REPLICAS_MAX: u32 = 7;

/// A replica process and where it listens; killed when dropped.
struct Replica {
    child: Child,
    client: SocketAddr,
    admin: SocketAddr,
    peer: SocketAddr,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `cloister demo`.
pub async fn run(args: DemoArgs) -> Result<Outcome, Failure> {
    if !(1..=DEMO_REPLICAS_MAX).contains(&args.replicas) {
        return Err(Failure::usage(format!(
            "--replicas must be 1 to {DEMO_REPLICAS_MAX}"
        )));
    }
    let secret = args.data_dir.join("auth-secret");
    let mut replicas = Vec::new();
    for index in 0..args.replicas {
        let dir = args.data_dir.join(format!("replica-{index}"));
        let replica = tokio::task::spawn_blocking({
            let secret = secret.clone();
            move || start(&dir, &secret)
        })
        .await
        .map_err(|error| Failure::other(error.into()))?
        .map_err(Failure::other)?;
        replicas.push(replica);
    }
    form_group(&replicas).await.map_err(Failure::other)?;
    println!(
        "a {}-replica simulated group (INSECURE, for development) is up:",
        replicas.len()
    );
    for (index, replica) in replicas.iter().enumerate() {
        println!(
            "  replica {index}: clients ws://{}  admin http://{}  peers {}",
            replica.client, replica.admin, replica.peer
        );
    }
    println!("auth secret: {}", secret.display());
    println!(
        "try: cloister backup --user alice --pin 1234 --secret-hex <64 hex> --allow-simulated \\\n     --server ws://{} --auth-secret-file {}",
        replicas[0].client,
        secret.display()
    );
    println!("Ctrl-C stops every replica (and their memory-only state).");
    cloister_host::shutdown_signal().await;
    drop(replicas);
    Ok(Outcome::new(
        "demo stopped".into(),
        json!({"status": "stopped"}),
    ))
}

fn start(dir: &Path, secret: &Path) -> anyhow::Result<Replica> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let exe = std::env::current_exe().context("finding the cloister binary")?;
    let mut child = Command::new(exe)
        .args(["node", "--simulated", "--log-level", "warning"])
        .arg("--data-dir")
        .arg(dir)
        .arg("--auth-secret-file")
        .arg(secret)
        .args([
            "--client-listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .args(["--peer-listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting a replica")?;
    let stdout = child.stdout.take().context("replica stdout")?;
    let (mut client, mut admin, mut peer) = (None, None, None);
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        let address = |prefix: &str| line.strip_prefix(prefix).and_then(|rest| rest.parse().ok());
        client = client.or_else(|| address("client listening on ws://"));
        admin = admin.or_else(|| address("admin listening on http://"));
        peer = peer.or_else(|| address("peer listening on "));
        if client.is_some() && admin.is_some() && peer.is_some() {
            break;
        }
    }
    match (client, admin, peer) {
        (Some(client), Some(admin), Some(peer)) => Ok(Replica {
            child,
            client,
            admin,
            peer,
        }),
        _ => {
            let _ = child.kill();
            bail!("a replica exited before it listened")
        }
    }
}

async fn form_group(replicas: &[Replica]) -> anyhow::Result<()> {
    let first = &replicas[0];
    admin_post(first.admin, "/v1/create-group", "{}").await?;
    for replica in &replicas[1..] {
        let body = json!({ "peer": first.peer.to_string() }).to_string();
        admin_post(replica.admin, "/v1/join", &body).await?;
        retry(|| admin_post(replica.admin, "/v1/request-voting", "{}")).await?;
    }
    Ok(())
}

async fn retry<F, Fut>(mut call: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut last = anyhow!("never tried");
    for _ in 0..30 {
        match call().await {
            Ok(()) => return Ok(()),
            Err(error) => last = error,
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(last)
}

async fn admin_post(admin: SocketAddr, path: &str, body: &str) -> anyhow::Result<()> {
    let (code, text) = crate::admin::request(&admin.to_string(), "POST", path, Some(body)).await?;
    if code != 200 {
        bail!("{path} on {admin} answered {code}: {text}");
    }
    Ok(())
}
