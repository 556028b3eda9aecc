//! Typed wrappers over [`Dispatcher::call`]: one per host request, each unpacking the one
//! reply kind it expects.

use cloister_proto::enclave::{
    CloseClientRequest, CreateNewRaftGroupRequest, DeleteBackupRequest, EnclaveLogLevel,
    EnclaveStatus, ExistingClientRequest, GetEnclaveStatusRequest, HashesReply, HashesRequest,
    MetricsReply, MetricsRequest, NewClientRequest, RefreshAttestationRequest, SetLogLevelRequest,
    UpdateMinimumsRequest, host_to_enclave_request::Inner as Request,
    host_to_enclave_response::Inner as Response,
};
use cloister_proto::svr2::client::ClientHandshakeStart;

use super::Dispatcher;
use crate::auth::BackupId;
use crate::error::HostError;

/// A new client session inside the enclave.
#[derive(Debug)]
pub struct NewClient {
    /// The enclave's id for the session.
    pub client_id: u64,
    /// What the client needs to start its Noise handshake (evidence, endorsements).
    pub handshake_start: ClientHandshakeStart,
}

impl Dispatcher {
    /// Opens a client session for an authenticated backup id.
    pub async fn new_client(&self, backup_id: &BackupId) -> Result<NewClient, HostError> {
        let request = NewClientRequest {
            client_authenticated_id: backup_id.as_bytes().to_vec(),
        };
        match self.call(Request::NewClient(request)).await? {
            Response::NewClient(reply) => Ok(NewClient {
                client_id: reply.client_id,
                handshake_start: reply.handshake_start.unwrap_or_default(),
            }),
            _ => Err(HostError::UnexpectedReply("expected NewClientReply")),
        }
    }

    /// Hands one client frame (a Noise message) to its session; returns the frame to send back.
    pub async fn existing_client(
        &self,
        client_id: u64,
        data: Vec<u8>,
    ) -> Result<Vec<u8>, HostError> {
        let request = ExistingClientRequest { client_id, data };
        match self.call(Request::ExistingClient(request)).await? {
            Response::ExistingClient(reply) => Ok(reply.data),
            _ => Err(HostError::UnexpectedReply("expected ExistingClientReply")),
        }
    }

    /// Ends a client session. An unknown session is not an error: it may have ended inside
    /// the enclave already.
    pub async fn close_client(&self, client_id: u64) -> Result<(), HostError> {
        match self
            .call(Request::CloseClient(CloseClientRequest { client_id }))
            .await
        {
            Ok(_) => Ok(()),
            Err(HostError::Enclave {
                code: cloister_proto::enclave::ErrorCode::NotFound,
                ..
            }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// The enclave's status.
    pub async fn status(&self) -> Result<EnclaveStatus, HostError> {
        match self
            .call(Request::GetEnclaveStatus(GetEnclaveStatusRequest {}))
            .await?
        {
            Response::Status(status) => Ok(status),
            _ => Err(HostError::UnexpectedReply("expected EnclaveStatus")),
        }
    }

    /// The enclave's counters and gauges.
    pub async fn enclave_metrics(&self) -> Result<MetricsReply, HostError> {
        match self.call(Request::Metrics(MetricsRequest {})).await? {
            Response::Metrics(metrics) => Ok(metrics),
            _ => Err(HostError::UnexpectedReply("expected MetricsReply")),
        }
    }

    /// The hash of the enclave's database at its applied index.
    pub async fn hashes(&self) -> Result<HashesReply, HostError> {
        match self.call(Request::Hashes(HashesRequest {})).await? {
            Response::Hashes(hashes) => Ok(hashes),
            _ => Err(HostError::UnexpectedReply("expected HashesReply")),
        }
    }

    /// Creates a new Raft group with this enclave as its first member; returns the status
    /// after. Zero fields in `request` take the enclave's defaults.
    pub async fn create_group(
        &self,
        request: CreateNewRaftGroupRequest,
    ) -> Result<EnclaveStatus, HostError> {
        match self.call(Request::CreateNewRaftGroup(request)).await? {
            Response::Status(status) => Ok(status),
            Response::Done(_) => self.status().await,
            _ => Err(HostError::UnexpectedReply("expected EnclaveStatus or Done")),
        }
    }

    /// Deletes a backup (account deletion). Answers once the deletion has committed.
    pub async fn delete_backup(&self, backup_id: &BackupId) -> Result<(), HostError> {
        let request = DeleteBackupRequest {
            backup_id: backup_id.as_bytes().to_vec(),
        };
        self.call_done(Request::DeleteBackup(request)).await
    }

    /// Raises the group's minimums (leader only). Answers once the entry has committed.
    pub async fn update_minimums(
        &self,
        limits: cloister_proto::attest::MinimumLimits,
    ) -> Result<(), HostError> {
        let request = UpdateMinimumsRequest {
            limits: Some(limits),
        };
        self.call_done(Request::UpdateMinimums(request)).await
    }

    /// Sets the enclave's log level.
    pub async fn set_log_level(&self, level: EnclaveLogLevel) -> Result<(), HostError> {
        let request = SetLogLevelRequest {
            log_level: level.into(),
        };
        self.call_done(Request::SetLogLevel(request)).await
    }

    /// Asks the enclave to produce fresh attestation evidence.
    pub async fn refresh_attestation(&self) -> Result<(), HostError> {
        self.call_done(Request::RefreshAttestation(RefreshAttestationRequest {}))
            .await
    }

    async fn call_done(&self, request: Request) -> Result<(), HostError> {
        match self.call(request).await? {
            Response::Done(_) => Ok(()),
            _ => Err(HostError::UnexpectedReply("expected Done")),
        }
    }
}
