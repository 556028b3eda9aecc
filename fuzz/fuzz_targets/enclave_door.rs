//! The enclave core's door (`Enclave::handle`) on arbitrary messages: a fresh simulated
//! core with a one-replica group is fed each message of the input (see
//! `cloister_fuzz::split_messages`) and drained after each, as the host does. A panic, or
//! an output that is not an `EnclaveMessage`, is a finding; refusals are not.

#![no_main]

use cloister_enclave::{Enclave, InsecureSimulatedEnv};
use cloister_proto::enclave::{
    CreateNewRaftGroupRequest, EnclaveMessage, HostToEnclaveRequest, InitConfig, UntrustedMessage,
    host_to_enclave_request::Inner as Call, untrusted_message,
};
use libfuzzer_sys::fuzz_target;
use prost::Message;

/// What the enclave's clock reads at init (inside the sim evidence's age bound).
const NOW: u64 = 1_750_000_000;

fn drain(enclave: &mut Enclave) {
    while let Some(bytes) = enclave.poll_message() {
        assert!(
            EnclaveMessage::decode(bytes.as_slice()).is_ok(),
            "the core emitted bytes that are not an EnclaveMessage"
        );
    }
}

fn core_with_group() -> Enclave {
    let init = InitConfig {
        config: None,
        initial_timestamp_unix_secs: NOW,
    };
    let env = Box::new(InsecureSimulatedEnv::from_seed([7; 32]));
    let mut enclave = match Enclave::init(&init.encode_to_vec(), env) {
        Ok(enclave) => enclave,
        Err(error) => panic!("init refused the default config: {error}"),
    };
    let create = UntrustedMessage {
        inner: Some(untrusted_message::Inner::H2eRequest(HostToEnclaveRequest {
            request_id: 1,
            inner: Some(Call::CreateNewRaftGroup(
                CreateNewRaftGroupRequest::default(),
            )),
        })),
    };
    if let Err(error) = enclave.handle(&create.encode_to_vec()) {
        panic!("creating the group failed: {error}");
    }
    drain(&mut enclave);
    enclave
}

fuzz_target!(|input: &[u8]| {
    let mut enclave = core_with_group();
    for message in cloister_fuzz::split_messages(input) {
        let _ = enclave.handle(message);
        drain(&mut enclave);
    }
});
