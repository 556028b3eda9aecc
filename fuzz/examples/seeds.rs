//! Writes the committed seed corpora, `fuzz/seeds/<target>/`: small valid inputs for each
//! fuzz target, made from the attestation test vectors and the crates' own encoders.
//!
//! ```text
//! cargo run -p cloister-fuzz --example seeds   # rewrites fuzz/seeds/
//! ```

use std::path::Path;

use cloister_attest::sim;
use cloister_fuzz::{
    NITRO_DOCUMENT, NITRO_NOW, SGX_COLLATERAL, SGX_QUOTE, TDX_QUOTE, join_messages,
    sev_endorsements, sev_report,
};
use cloister_host::door::frame::{
    ENCLAVE_FRAME_BYTES_MAX, HOST_FRAME_BYTES_MAX, write_frame, write_untrusted_message,
};
use cloister_host::peer::PeerId;
use cloister_host::peer::wire::{self, Hello};
use cloister_proto::attest::{AttestationData, Evidence, EvidenceKind, GroupConfig};
use cloister_proto::door::{Attach, Drain, EnclaveFrame, HostFrame, enclave_frame, host_frame};
use cloister_proto::enclave::{
    EnclaveConfig, HashesRequest, HostToEnclaveRequest, InitConfig, NewClientRequest, TimerTick,
    UntrustedMessage, host_to_enclave_request::Inner as Call, untrusted_message,
};
use cloister_proto::transport::transport_frame::Kind;
use cloister_proto::transport::{Data, Ping};
use prost::Message;

type Seeds = Vec<(&'static str, Vec<u8>)>;

fn host_request(request_id: u64, call: Call) -> Vec<u8> {
    UntrustedMessage {
        inner: Some(untrusted_message::Inner::H2eRequest(HostToEnclaveRequest {
            request_id,
            inner: Some(call),
        })),
    }
    .encode_to_vec()
}

fn tick(now: u64) -> Vec<u8> {
    UntrustedMessage {
        inner: Some(untrusted_message::Inner::TimerTick(TimerTick {
            new_timestamp_unix_secs: now,
        })),
    }
    .encode_to_vec()
}

fn evidence() -> Seeds {
    let data = AttestationData {
        public_key: vec![7; 32],
        group_config: Some(GroupConfig {
            group_id: 1,
            simulated: true,
            ..Default::default()
        }),
        minimum_limits: None,
    };
    let nitro = Evidence {
        kind: EvidenceKind::Nitro as i32,
        report: NITRO_DOCUMENT.to_vec(),
        attestation_data: Vec::new(),
    };
    vec![
        ("sim", sim::attest(&data, NITRO_NOW).encode_to_vec()),
        ("nitro", nitro.encode_to_vec()),
    ]
}

fn door_frames() -> Result<Seeds, Box<dyn std::error::Error>> {
    let mut host = Vec::new();
    let attach = InitConfig {
        config: None,
        initial_timestamp_unix_secs: NITRO_NOW,
    };
    let frame = |kind| HostFrame { kind: Some(kind) };
    write_frame(
        &mut host,
        &frame(host_frame::Kind::Attach(Attach {
            protocol_version: 1,
            init_config: attach.encode_to_vec(),
        })),
        HOST_FRAME_BYTES_MAX,
    )?;
    write_untrusted_message(&mut host, &tick(NITRO_NOW + 1))?;
    write_frame(
        &mut host,
        &frame(host_frame::Kind::Drain(Drain { messages_max: 16 })),
        HOST_FRAME_BYTES_MAX,
    )?;
    let mut enclave = Vec::new();
    write_frame(
        &mut enclave,
        &EnclaveFrame {
            kind: Some(enclave_frame::Kind::EnclaveMessage(vec![8, 1])),
        },
        ENCLAVE_FRAME_BYTES_MAX,
    )?;
    Ok(vec![("host", host), ("enclave", enclave)])
}

fn peer_frames() -> Seeds {
    let hello = wire::encode_hello(&Hello {
        peer_id: PeerId::from([1; 32]),
        listen_addr: Some(([127, 0, 0, 1], 7000).into()),
        incarnation: 5,
        known_peers: vec![(PeerId::from([2; 32]), ([127, 0, 0, 1], 7001).into())],
        discovery_only: false,
        sent_through: 0,
    });
    let mut stream = hello.clone();
    stream.extend(wire::encode(Kind::Data(Data {
        seq: 1,
        bytes: vec![9; 16],
        ack: 0,
    })));
    stream.extend(wire::encode(Kind::Ping(Ping { probe: 3 })));
    vec![("hello", hello), ("stream", stream)]
}

fn enclave_door() -> Seeds {
    let messages = vec![
        tick(NITRO_NOW + 1),
        host_request(
            2,
            Call::NewClient(NewClientRequest {
                client_authenticated_id: vec![0x11; 16],
            }),
        ),
        host_request(3, Call::Hashes(HashesRequest {})),
    ];
    vec![("calls", join_messages(&messages))]
}

fn enclave_init() -> Seeds {
    let init = |config| InitConfig {
        config,
        initial_timestamp_unix_secs: NITRO_NOW,
    };
    vec![
        ("default", init(None).encode_to_vec()),
        (
            "explicit",
            init(Some(EnclaveConfig::default())).encode_to_vec(),
        ),
    ]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut endorsement_files = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../crates/attest/tests/data/sev-snp/vcek_milan.der"
    ))?;
    endorsement_files.push(0);
    endorsement_files.extend(std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../crates/attest/tests/data/sev-snp/cert_chain_milan"
    ))?);
    let targets: Vec<(&str, Seeds)> = vec![
        ("evidence", evidence()),
        (
            "dcap_quote",
            vec![
                ("sgx", [&[0][..], SGX_QUOTE].concat()),
                ("tdx", [&[1][..], TDX_QUOTE].concat()),
            ],
        ),
        ("dcap_collateral", vec![("sgx", SGX_COLLATERAL.to_vec())]),
        ("sev_snp_report", vec![("milan", sev_report())]),
        ("sev_snp_endorsements", vec![("milan", sev_endorsements())]),
        ("nitro_document", vec![("test", NITRO_DOCUMENT.to_vec())]),
        (
            "endorsement_files",
            // Empty: the chain that panicked x509-cert (docs/attestation.md, "Fuzzing").
            vec![("milan", endorsement_files), ("empty", Vec::new())],
        ),
        ("door_frame", door_frames()?),
        ("peer_frame", peer_frames()),
        ("enclave_door", enclave_door()),
        ("enclave_init", enclave_init()),
    ];
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    for (target, seeds) in targets {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir)?;
        for (name, bytes) in seeds {
            std::fs::write(dir.join(name), bytes)?;
        }
    }
    println!("wrote {}", root.display());
    Ok(())
}
