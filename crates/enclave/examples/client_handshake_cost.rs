//! Measures what one client handshake costs the enclave core, NK against NKhfs+Kyber1024
//! (SVR2's `client_pq`, ML-KEM-1024), through the door as a host drives it: `NewClient`,
//! then message 1 in and message 2 out. The client's side (snow's initiator) is measured
//! apart and reported too; it runs on the client's machine, not the enclave's.
//!
//! `cargo run --release -p cloister-enclave --example client_handshake_cost -- 2000`

// A measuring program outside the core, not library code: it reads the wall clock (the core
// never does), and a failed expectation is a failed measurement.
#![allow(clippy::disallowed_methods, clippy::expect_used)]

use std::time::{Duration, Instant};

use cloister_enclave::{
    CLIENT_NOISE_PATTERN, CLIENT_PQ_NOISE_PATTERN, Enclave, InsecureSimulatedEnv,
};
use cloister_proto::enclave::{
    CreateNewRaftGroupRequest, EnclaveMessage, ExistingClientRequest, HostToEnclaveRequest,
    InitConfig, NewClientRequest, UntrustedMessage, enclave_message,
    host_to_enclave_request::Inner as Call, host_to_enclave_response::Inner as Answer,
    untrusted_message,
};
use prost::Message;

fn call(enclave: &mut Enclave, request_id: &mut u64, call: Call) -> Answer {
    *request_id += 1;
    let message = UntrustedMessage {
        inner: Some(untrusted_message::Inner::H2eRequest(HostToEnclaveRequest {
            request_id: *request_id,
            inner: Some(call),
        })),
    };
    enclave
        .handle(&message.encode_to_vec())
        .expect("a door message");
    let mut answer = None;
    while let Some(bytes) = enclave.poll_message() {
        let message = EnclaveMessage::decode(bytes.as_slice()).expect("the core's own bytes");
        if let Some(enclave_message::Inner::H2eResponse(response)) = message.inner {
            if response.request_id == *request_id {
                answer = response.inner;
            }
        }
    }
    answer.expect("every request is answered")
}

struct Cost {
    enclave: Duration,
    client: Duration,
    message_1_bytes: usize,
    message_2_bytes: usize,
}

fn measure(client_pq: bool, handshakes: usize) -> Cost {
    let init = InitConfig {
        config: None,
        initial_timestamp_unix_secs: 1_750_000_000,
    };
    let env = Box::new(InsecureSimulatedEnv::from_seed([9; 32]));
    let mut enclave = Enclave::init(&init.encode_to_vec(), env).expect("init");
    let mut request_id = 0;
    let create = CreateNewRaftGroupRequest {
        client_pq,
        ..Default::default()
    };
    let Answer::Status(_) = call(
        &mut enclave,
        &mut request_id,
        Call::CreateNewRaftGroup(create),
    ) else {
        panic!("group not created")
    };
    let pattern = if client_pq {
        CLIENT_PQ_NOISE_PATTERN
    } else {
        CLIENT_NOISE_PATTERN
    };
    let new_client = || {
        Call::NewClient(NewClientRequest {
            client_authenticated_id: vec![7; 16],
        })
    };
    let Answer::NewClient(first) = call(&mut enclave, &mut request_id, new_client()) else {
        panic!("no session")
    };
    let enclave_key = first
        .handshake_start
        .expect("a handshake start")
        .test_only_pubkey;

    // The clients' message 1s, made beforehand (client time is counted apart).
    let mut client = Duration::ZERO;
    let mut initiators = Vec::with_capacity(handshakes);
    let mut messages = Vec::with_capacity(handshakes);
    for _ in 0..handshakes {
        let started = Instant::now();
        let mut initiator = snow::Builder::new(pattern.parse().expect("pattern"))
            .remote_public_key(&enclave_key)
            .and_then(|builder| builder.build_initiator())
            .expect("initiator");
        let mut message = vec![0; 4096];
        let length = initiator
            .write_message(&[], &mut message)
            .expect("message 1");
        message.truncate(length);
        client += started.elapsed();
        initiators.push(initiator);
        messages.push(message);
    }
    let message_1_bytes = messages[0].len();

    let started = Instant::now();
    let mut replies = Vec::with_capacity(handshakes);
    for message in messages {
        let Answer::NewClient(session) = call(&mut enclave, &mut request_id, new_client()) else {
            panic!("no session")
        };
        let handshake = Call::ExistingClient(ExistingClientRequest {
            client_id: session.client_id,
            data: message,
        });
        let Answer::ExistingClient(reply) = call(&mut enclave, &mut request_id, handshake) else {
            panic!("handshake refused")
        };
        replies.push(reply.data);
    }
    let enclave_time = started.elapsed();
    let message_2_bytes = replies[0].len();

    let mut payload = vec![0; 4096];
    for (mut initiator, reply) in initiators.into_iter().zip(replies) {
        let started = Instant::now();
        initiator
            .read_message(&reply, &mut payload)
            .expect("message 2");
        client += started.elapsed();
    }
    Cost {
        enclave: enclave_time,
        client,
        message_1_bytes,
        message_2_bytes,
    }
}

fn main() {
    let handshakes: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000)
        .clamp(1, 60_000);
    let micros = |total: Duration| total.as_secs_f64() * 1e6 / handshakes as f64;
    println!("{handshakes} handshakes each, one thread");
    let mut enclave_costs = Vec::new();
    for (name, client_pq) in [("NK", false), ("NKhfs+Kyber1024", true)] {
        // One round to warm caches and the allocator, then the measured one.
        measure(client_pq, handshakes.min(100));
        let cost = measure(client_pq, handshakes);
        println!(
            "{name:>16}: enclave {:>7.1} us per handshake (NewClient + message 1 -> 2), \
             client {:>7.1} us; messages {} + {} bytes",
            micros(cost.enclave),
            micros(cost.client),
            cost.message_1_bytes,
            cost.message_2_bytes
        );
        enclave_costs.push(micros(cost.enclave));
    }
    println!(
        "enclave cost ratio NKhfs / NK: {:.2}",
        enclave_costs[1] / enclave_costs[0]
    );
}
