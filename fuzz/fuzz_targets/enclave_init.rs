//! The enclave core's other door entry point, `Enclave::init`, on an arbitrary serialized
//! `InitConfig` (the config's bounds and relations); a core that comes up is then asked to
//! create its group and drained, which runs the accepted config.

#![no_main]

use cloister_enclave::{Enclave, InsecureSimulatedEnv};
use cloister_proto::enclave::{
    CreateNewRaftGroupRequest, EnclaveMessage, HostToEnclaveRequest, UntrustedMessage,
    host_to_enclave_request::Inner as Call, untrusted_message,
};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|init_config: &[u8]| {
    let env = Box::new(InsecureSimulatedEnv::from_seed([7; 32]));
    let Ok(mut enclave) = Enclave::init(init_config, env) else {
        return;
    };
    let create = UntrustedMessage {
        inner: Some(untrusted_message::Inner::H2eRequest(HostToEnclaveRequest {
            request_id: 1,
            inner: Some(Call::CreateNewRaftGroup(
                CreateNewRaftGroupRequest::default(),
            )),
        })),
    };
    let _ = enclave.handle(&create.encode_to_vec());
    while let Some(bytes) = enclave.poll_message() {
        assert!(
            EnclaveMessage::decode(bytes.as_slice()).is_ok(),
            "the core emitted bytes that are not an EnclaveMessage"
        );
    }
});
