//! Seeded mutation testing of the door: valid messages with bytes flipped, cut or spliced
//! must never panic the core, every decodable host request still gets exactly one answer,
//! and the stored backups survive. Deterministic (a fixed seed), so CI replays it exactly.

use cloister_proto::enclave::{
    ExistingClientRequest, HashesRequest, HostToEnclaveRequest, NewClientRequest, TimerTick,
    UntrustedMessage, enclave_message, host_to_enclave_request::Inner as Call,
    host_to_enclave_response::Inner as Answer, untrusted_message,
};
use cloister_proto::svr2::client::{BackupRequest, Request, TriesRequest, request};
use prost::Message;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use super::harness::{Harness, NOW};

const ROUNDS: usize = 3_000;

fn wrap(request_id: u64, call: Call) -> Vec<u8> {
    UntrustedMessage {
        inner: Some(untrusted_message::Inner::H2eRequest(HostToEnclaveRequest {
            request_id,
            inner: Some(call),
        })),
    }
    .encode_to_vec()
}

fn mutate(rng: &mut ChaCha20Rng, mut bytes: Vec<u8>) -> Vec<u8> {
    match rng.next_u32() % 4 {
        0 if !bytes.is_empty() => {
            let index = rng.next_u32() as usize % bytes.len();
            bytes[index] ^= 1 << (rng.next_u32() % 8);
        }
        1 => bytes.truncate(rng.next_u32() as usize % (bytes.len() + 1)),
        2 => {
            let index = rng.next_u32() as usize % (bytes.len() + 1);
            let mut noise = vec![0u8; (rng.next_u32() % 16) as usize];
            rng.fill_bytes(&mut noise);
            bytes.splice(index..index, noise);
        }
        _ => {
            for byte in &mut bytes {
                if rng.next_u32() % 8 == 0 {
                    *byte = rng.next_u32() as u8;
                }
            }
        }
    }
    bytes
}

#[test]
fn mutated_door_messages_never_panic_and_every_request_is_answered() {
    let mut harness = Harness::with_group(40);
    let mut owner = harness.connect([0x11; 16]);
    let backup = BackupRequest {
        data: vec![3; 32],
        pin: vec![4; 32],
        max_tries: 7,
    };
    harness.request(
        &mut owner,
        &Request {
            inner: Some(request::Inner::Backup(backup)),
        },
    );
    let before = harness.call(Call::Hashes(HashesRequest {}));

    let mut rng = ChaCha20Rng::seed_from_u64(0x5eed);
    let mut victim = harness.connect([0x22; 16]);
    let tries = Request {
        inner: Some(request::Inner::Tries(TriesRequest {})),
    }
    .encode_to_vec();
    let (mut answered, mut refused) = (0, 0);
    for round in 0..ROUNDS {
        let request_id = 1_000_000 + round as u64;
        let seeds = [
            wrap(
                request_id,
                Call::NewClient(NewClientRequest {
                    client_authenticated_id: vec![9; 16],
                }),
            ),
            wrap(
                request_id,
                Call::ExistingClient(ExistingClientRequest {
                    client_id: victim.client_id,
                    data: victim.encrypt(&tries),
                }),
            ),
            wrap(request_id, Call::Hashes(HashesRequest {})),
            UntrustedMessage {
                inner: Some(untrusted_message::Inner::TimerTick(TimerTick {
                    new_timestamp_unix_secs: NOW + round as u64,
                })),
            }
            .encode_to_vec(),
        ];
        let seed = seeds[rng.next_u32() as usize % seeds.len()].clone();
        let bytes = mutate(&mut rng, seed);
        let decoded = UntrustedMessage::decode(bytes.as_slice()).ok();
        let accepted = harness.enclave.handle(&bytes).is_ok();
        let answers: Vec<u64> = harness
            .drain()
            .into_iter()
            .filter_map(|message| match message.inner {
                Some(enclave_message::Inner::H2eResponse(response)) => Some(response.request_id),
                _ => None,
            })
            .collect();
        if let Some(UntrustedMessage {
            inner: Some(untrusted_message::Inner::H2eRequest(request)),
        }) = decoded
        {
            assert!(accepted, "round {round}: a decodable request is accepted");
            assert_eq!(
                answers,
                vec![request.request_id],
                "round {round}: exactly one answer"
            );
            answered += 1;
        } else if !accepted {
            refused += 1;
        }
        if harness.enclave.sessions.len() > 1_000 {
            break;
        }
        // The victim's session is closed by the first frame that fails to decrypt; reopen.
        if round % 50 == 0 {
            victim = harness.connect([0x22; 16]);
        }
    }
    // Both paths were exercised many times, so the assertions above were not vacuous.
    assert!(
        answered > ROUNDS / 10 && refused > ROUNDS / 10,
        "answered {answered}, refused {refused}"
    );
    // The owner's backup is untouched (the victim only ever asked Tries for another id).
    assert_eq!(
        harness.call(Call::Hashes(HashesRequest {})).db_hash(),
        before.db_hash()
    );
    // A mutated tick can move the core's clock far ahead, which closes the owner's idle
    // session (as it should); the backup itself must still answer.
    if harness.enclave.sessions.get_mut(owner.client_id).is_none() {
        owner = harness.connect([0x11; 16]);
    }
    let answer = harness.request(
        &mut owner,
        &Request {
            inner: Some(request::Inner::Tries(TriesRequest {})),
        },
    );
    assert!(answer.inner.is_some());
}

trait DbHash {
    fn db_hash(&self) -> Vec<u8>;
}

impl DbHash for Answer {
    fn db_hash(&self) -> Vec<u8> {
        match self {
            Answer::Hashes(hashes) => hashes.db_hash.clone(),
            other => panic!("{other:?}"),
        }
    }
}
