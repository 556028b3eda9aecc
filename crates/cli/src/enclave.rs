//! `cloister enclave`: the enclave core alone in its own process, serving the door over a
//! socket to one host at a time; and the host side of it, for `cloister node
//! --enclave-socket`.
//!
//! ```text
//!  cloister enclave --listen unix:/run/cloister/enclave.sock --simulated
//!  cloister enclave --listen vsock:any:7000 --backend nitro
//!  cloister enclave --listen tcp:0.0.0.0:7000 --backend tdx --endorsements collateral.json
//!  cloister node --dev --enclave-socket unix:/run/cloister/enclave.sock
//! ```
//!
//! This is how the core runs inside a Nitro enclave (vsock) or a confidential VM (TCP) while
//! the host stays outside. The core's state lives in the enclave process: a host can stop
//! and a new one reattach; stopping the enclave process erases it.

use cloister_host::door::{
    EnclaveAddress, EnclaveBackend, EnclaveServer, RemoteDoor, RemoteSettings, ServeSettings,
};
use cloister_host::shutdown_signal;
use cloister_platform::PlatformSettings;
use std::sync::Arc;

use crate::args::EnclaveArgs;
use crate::exit::{Failure, Outcome};

/// What `cloister enclave` says when it is not told which TEE it runs on.
pub const NO_BACKEND: &str = "which TEE? pass --backend sgx|tdx|sev-snp|nitro to produce \
    evidence on that hardware, or --simulated to run the core on the insecure simulated backend";

/// `cloister enclave`.
pub async fn run(args: EnclaveArgs) -> Result<Outcome, Failure> {
    let (backend, banner) = match args.backend {
        None if args.simulated => (
            EnclaveBackend::InsecureSimulated,
            "simulated TEE (INSECURE, for development only)".to_owned(),
        ),
        None => return Err(Failure::usage(NO_BACKEND.into())),
        Some(platform) => {
            let settings = PlatformSettings {
                device_root: args.device_root.clone(),
                endorsements: args.endorsements.clone(),
            };
            // Probe now: a machine without the device refuses to start, saying what it found.
            let env = cloister_platform::open(platform, &settings).map_err(|error| {
                Failure::other(anyhow::anyhow!("the {platform} platform: {error}"))
            })?;
            let measurement = hex::encode(env.measurement());
            drop(env);
            let open = Arc::new(move || cloister_platform::open(platform, &settings));
            (
                EnclaveBackend::Platform {
                    name: platform.name().to_owned(),
                    open,
                },
                format!("{platform} TEE, measurement {measurement}"),
            )
        }
    };
    let server = EnclaveServer::bind(&args.listen, backend, ServeSettings::default())
        .map_err(|error| Failure::other(error.into()))?;
    println!("cloister enclave: {banner}");
    println!("enclave listening on {}", server.address());
    println!("backups live in this process's memory only: stopping it erases them");
    let stop = server.stopper();
    let (done, finished) = tokio::sync::oneshot::channel();
    // A plain thread: the server blocks, and the runtime must not wait for it at exit.
    std::thread::Builder::new()
        .name("cloister-enclave-server".to_owned())
        .spawn(move || {
            let _ = done.send(server.run());
        })
        .map_err(|error| Failure::other(anyhow::anyhow!("starting the server: {error}")))?;
    let mut finished = finished;
    let result = tokio::select! {
        () = shutdown_signal() => {
            stop.stop();
            finished.await
        }
        result = &mut finished => result,
    };
    match result {
        Ok(Ok(())) => Ok(Outcome::new(
            "enclave stopped".into(),
            serde_json::json!({"status": "stopped"}),
        )),
        Ok(Err(error)) => Err(Failure::other(error.into())),
        Err(_) => Err(Failure::other(anyhow::anyhow!(
            "the enclave server thread ended without a result"
        ))),
    }
}

/// Connects `cloister node` to the enclave process at `address` and attaches with
/// `init_config`.
pub async fn connect(address: EnclaveAddress, init_config: Vec<u8>) -> Result<RemoteDoor, Failure> {
    let connected = tokio::task::spawn_blocking(move || {
        RemoteDoor::connect(&address, &init_config, RemoteSettings::default())
    })
    .await
    .map_err(|error| Failure::other(anyhow::anyhow!("connecting to the enclave: {error}")))?;
    connected.map_err(|error| Failure::other(error.into()))
}
