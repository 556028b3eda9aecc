//! The door over a socket, end to end in one process: a real [`EnclaveServer`] with a real
//! core on a unix socket (and TCP), driven by [`RemoteDoor`]s (`server`) and by raw frames
//! (`garbage`); and [`RemoteDoor`] against fake enclaves that hang or lie (`fakes`).

mod fakes;
mod garbage;
mod server;

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use cloister_proto::door::{
    Attach, Attached, Drained, EnclaveFrame, HostFrame, Refusal, enclave_frame, host_frame,
};
use cloister_proto::enclave::{
    CreateNewRaftGroupRequest, EnclaveLogLevel, EnclaveMessage, EnclaveStatus,
    GetEnclaveStatusRequest, HashesReply, HashesRequest, HostToEnclaveRequest, TimerTick,
    UntrustedMessage, enclave_message, host_to_enclave_request, host_to_enclave_response,
    untrusted_message,
};
use prost::Message;

use super::frame::{self, BATCH_MESSAGES_MAX, ENCLAVE_FRAME_BYTES_MAX, HOST_FRAME_BYTES_MAX};
use super::session::REQUEST_IDS_PER_ATTACH;
use super::*;
use crate::HostConfig;

const NOW: u64 = 1_700_000_000;

/// A fresh directory under the system temp dir, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "cloister-door-{name}-{}-{count}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running enclave server, stopped and joined on drop.
struct Running {
    address: EnclaveAddress,
    stop: ServerStop,
    thread: Option<JoinHandle<Result<(), DoorError>>>,
    _dir: Option<TempDir>,
}

impl Running {
    fn unix(name: &str) -> Running {
        let dir = TempDir::new(name);
        let address = EnclaveAddress::Unix(dir.path().join("enclave.sock"));
        Running::on(&address, Some(dir))
    }

    fn on(address: &EnclaveAddress, dir: Option<TempDir>) -> Running {
        Running::with_backend(address, dir, EnclaveBackend::InsecureSimulated)
    }

    fn with_backend(
        address: &EnclaveAddress,
        dir: Option<TempDir>,
        backend: EnclaveBackend,
    ) -> Running {
        let server = EnclaveServer::bind(address, backend, settings()).unwrap();
        let address = server.address().clone();
        let stop = server.stopper();
        let thread = std::thread::spawn(move || server.run());
        Running {
            address,
            stop,
            thread: Some(thread),
            _dir: dir,
        }
    }

    fn path(&self) -> &Path {
        match &self.address {
            EnclaveAddress::Unix(path) => path,
            other => panic!("not a unix address: {other}"),
        }
    }

    fn connect(&self, init_config: &[u8]) -> Result<RemoteDoor, DoorError> {
        RemoteDoor::connect(&self.address, init_config, remote_settings())
    }

    fn raw(&self) -> UnixStream {
        let stream = UnixStream::connect(self.path()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
    }

    fn stop(&mut self) -> Result<(), DoorError> {
        self.stop.stop();
        self.thread
            .take()
            .map_or(Ok(()), |thread| thread.join().unwrap())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn settings() -> ServeSettings {
    ServeSettings {
        attach_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(30),
        write_timeout: Duration::from_secs(10),
    }
}

fn remote_settings() -> RemoteSettings {
    RemoteSettings {
        connect_timeout: Duration::from_secs(10),
        exchange_timeout: Duration::from_secs(10),
    }
}

fn init_config(log_level: EnclaveLogLevel, now: u64) -> Vec<u8> {
    let config = HostConfig {
        enclave_log_level: log_level,
        ..HostConfig::default()
    };
    config.init_config(now).encode_to_vec()
}

fn request(request_id: u64, inner: host_to_enclave_request::Inner) -> Vec<u8> {
    let request = HostToEnclaveRequest {
        request_id,
        inner: Some(inner),
    };
    UntrustedMessage {
        inner: Some(untrusted_message::Inner::H2eRequest(request)),
    }
    .encode_to_vec()
}

fn status_request(request_id: u64) -> Vec<u8> {
    request(
        request_id,
        host_to_enclave_request::Inner::GetEnclaveStatus(GetEnclaveStatusRequest {}),
    )
}

fn tick(now: u64) -> Vec<u8> {
    let tick = TimerTick {
        new_timestamp_unix_secs: now,
    };
    UntrustedMessage {
        inner: Some(untrusted_message::Inner::TimerTick(tick)),
    }
    .encode_to_vec()
}

/// Exchanges `batch` and returns the answers to host requests, by request id.
fn exchange(
    door: &mut impl EnclaveDoor,
    batch: &[Vec<u8>],
) -> (Exchanged, Vec<(u64, host_to_enclave_response::Inner)>) {
    let mut answers = Vec::new();
    let exchanged = door
        .exchange(batch, 1 << 16, &mut |bytes| {
            let message = EnclaveMessage::decode(bytes.as_slice()).unwrap();
            if let Some(enclave_message::Inner::H2eResponse(response)) = message.inner {
                answers.push((response.request_id, response.inner.unwrap()));
            }
        })
        .unwrap();
    (exchanged, answers)
}

fn status(door: &mut RemoteDoor) -> EnclaveStatus {
    let request_id = door.first_request_id() + 7;
    let (_, answers) = exchange(door, &[tick(NOW), status_request(request_id)]);
    match answers.as_slice() {
        [(id, host_to_enclave_response::Inner::Status(status))] if *id == request_id => {
            status.clone()
        }
        other => panic!("expected one status answer, got {other:?}"),
    }
}

fn hashes(door: &mut RemoteDoor) -> HashesReply {
    let request_id = door.first_request_id() + 8;
    let hashes = request(
        request_id,
        host_to_enclave_request::Inner::Hashes(HashesRequest {}),
    );
    let (_, answers) = exchange(door, &[hashes]);
    match answers.as_slice() {
        [(_, host_to_enclave_response::Inner::Hashes(hashes))] => hashes.clone(),
        other => panic!("expected one hashes answer, got {other:?}"),
    }
}

/// Makes the core a one-replica group, so there is state worth keeping.
fn create_group(door: &mut RemoteDoor) -> EnclaveStatus {
    let create = request(
        door.first_request_id() + 1,
        host_to_enclave_request::Inner::CreateNewRaftGroup(CreateNewRaftGroupRequest::default()),
    );
    let (exchanged, _) = exchange(door, &[tick(NOW), create]);
    assert_eq!(exchanged.refusals, vec![None, None]);
    let status = status(door);
    assert!(status.group_config.is_some(), "{status:?}");
    status
}
