//! A host written for tests: drives the core through its door and plays clients with snow.

use cloister_attest::{Policy, sim, verify};
use cloister_proto::enclave::{
    CreateNewRaftGroupRequest, EnclaveMessage, ExistingClientRequest, HostToEnclaveRequest,
    InitConfig, NewClientRequest, TimerTick, UntrustedMessage, enclave_message,
    host_to_enclave_request::Inner as Call, host_to_enclave_response::Inner as Answer,
    untrusted_message,
};
use cloister_proto::svr2::client::{Request, Response};
use prost::Message;

use crate::{CLIENT_NOISE_PATTERN, Enclave, InsecureSimulatedEnv};

pub const NOW: u64 = 1_750_000_000;

pub struct Harness {
    pub enclave: Enclave,
    request_id_next: u64,
    /// Every byte string the core emitted, in order (for determinism checks).
    pub transcript: Vec<Vec<u8>>,
}

pub struct TestClient {
    pub client_id: u64,
    pub transport: snow::TransportState,
}

impl Harness {
    pub fn bare(seed: u8) -> Self {
        Self::bare_at_version(seed, 0)
    }

    /// A core whose simulated platform attests `sim.security_version` = `security_version`.
    pub fn bare_at_version(seed: u8, security_version: u32) -> Self {
        let init = InitConfig {
            config: None,
            initial_timestamp_unix_secs: NOW,
        };
        let env = Box::new(
            InsecureSimulatedEnv::from_seed([seed; 32]).with_security_version(security_version),
        );
        let enclave = Enclave::init(&init.encode_to_vec(), env).unwrap();
        Self {
            enclave,
            request_id_next: 1,
            transcript: Vec::new(),
        }
    }

    /// A harness around a core made elsewhere (a test's own `Env`, say).
    pub fn from_enclave(enclave: Enclave) -> Self {
        Self {
            enclave,
            request_id_next: 1,
            transcript: Vec::new(),
        }
    }

    pub fn with_group(seed: u8) -> Self {
        let mut harness = Self::bare(seed);
        let answer = harness.call(Call::CreateNewRaftGroup(
            CreateNewRaftGroupRequest::default(),
        ));
        assert!(matches!(answer, Answer::Status(_)), "{answer:?}");
        harness
    }

    /// Feed raw bytes; return every message the core emitted afterwards.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<EnclaveMessage>, crate::Error> {
        self.enclave.handle(bytes)?;
        Ok(self.drain())
    }

    pub fn drain(&mut self) -> Vec<EnclaveMessage> {
        let mut out = Vec::new();
        while let Some(bytes) = self.enclave.poll_message() {
            out.push(EnclaveMessage::decode(bytes.as_slice()).unwrap());
            self.transcript.push(bytes);
        }
        out
    }

    pub fn send(&mut self, call: Call) -> u64 {
        let request_id = self.request_id_next;
        self.request_id_next += 1;
        let message = UntrustedMessage {
            inner: Some(untrusted_message::Inner::H2eRequest(HostToEnclaveRequest {
                request_id,
                inner: Some(call),
            })),
        };
        self.enclave.handle(&message.encode_to_vec()).unwrap();
        request_id
    }

    /// Send one call and return its answer (which must arrive after draining).
    pub fn call(&mut self, call: Call) -> Answer {
        let request_id = self.send(call);
        let answers = self.answers();
        let mut matching: Vec<_> = answers
            .into_iter()
            .filter(|(id, _)| *id == request_id)
            .map(|(_, a)| a)
            .collect();
        assert_eq!(matching.len(), 1, "exactly one answer per request");
        matching.remove(0)
    }

    pub fn answers(&mut self) -> Vec<(u64, Answer)> {
        self.drain()
            .into_iter()
            .filter_map(|message| match message.inner {
                Some(enclave_message::Inner::H2eResponse(response)) => {
                    Some((response.request_id, response.inner.unwrap()))
                }
                _ => None,
            })
            .collect()
    }

    pub fn tick(&mut self, now: u64) {
        let message = UntrustedMessage {
            inner: Some(untrusted_message::Inner::TimerTick(TimerTick {
                new_timestamp_unix_secs: now,
            })),
        };
        self.feed(&message.encode_to_vec()).unwrap();
    }

    /// NewClient, verify the handshake start as a client would, complete Noise NK.
    pub fn connect(&mut self, backup_id: [u8; 16]) -> TestClient {
        let Answer::NewClient(reply) = self.call(Call::NewClient(NewClientRequest {
            client_authenticated_id: backup_id.to_vec(),
        })) else {
            panic!("new client refused")
        };
        let start = reply.handshake_start.unwrap();
        // The host may jump the core's clock (the mutation test does); age is not under test here.
        let policy = Policy::insecure_allow_simulated(vec![sim::measurement()])
            .with_evidence_age_max_secs(u64::MAX);
        let now = self.enclave.now_unix_secs;
        let verified = verify(&start.evidence, &start.endorsement, &policy, now).unwrap();
        assert_eq!(
            verified.public_key().as_slice(),
            start.test_only_pubkey.as_slice()
        );
        let mut initiator = snow::Builder::new(CLIENT_NOISE_PATTERN.parse().unwrap())
            .remote_public_key(verified.public_key())
            .unwrap()
            .build_initiator()
            .unwrap();
        let mut message = vec![0; 1024];
        let length = initiator.write_message(&[], &mut message).unwrap();
        let Answer::ExistingClient(answer) =
            self.call(Call::ExistingClient(ExistingClientRequest {
                client_id: reply.client_id,
                data: message[..length].to_vec(),
            }))
        else {
            panic!("handshake refused")
        };
        let mut payload = vec![0; 1024];
        assert_eq!(
            initiator.read_message(&answer.data, &mut payload).unwrap(),
            0
        );
        TestClient {
            client_id: reply.client_id,
            transport: initiator.into_transport_mode().unwrap(),
        }
    }

    /// Send an encrypted request; return the raw answer.
    pub fn request_raw(&mut self, client: &mut TestClient, request: &Request) -> Answer {
        let frame = client.encrypt(&request.encode_to_vec());
        self.call(Call::ExistingClient(ExistingClientRequest {
            client_id: client.client_id,
            data: frame,
        }))
    }

    pub fn request(&mut self, client: &mut TestClient, request: &Request) -> Response {
        match self.request_raw(client, request) {
            Answer::ExistingClient(reply) => client.decrypt(&reply.data),
            other => panic!("request failed: {other:?}"),
        }
    }
}

impl TestClient {
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Vec<u8> {
        let mut frame = vec![0; plaintext.len() + 16];
        let length = self.transport.write_message(plaintext, &mut frame).unwrap();
        frame.truncate(length);
        frame
    }

    pub fn decrypt(&mut self, frame: &[u8]) -> Response {
        let mut plaintext = vec![0; frame.len()];
        let length = self.transport.read_message(frame, &mut plaintext).unwrap();
        Response::decode(&plaintext[..length]).unwrap()
    }
}
