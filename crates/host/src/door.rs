//! The door to the enclave core, as the host sees it: bytes in, bytes out.
//!
//! The real core ([`cloister_enclave::Enclave`]) implements it in-process. An enclave in
//! another process (a TEE reached over vsock, say) would implement it by relaying the same
//! bytes, and tests implement it with a scripted fake.

/// A sans-I/O enclave core: feed it serialized `UntrustedMessage`s, drain serialized
/// `EnclaveMessage`s. Runs on the dispatcher's one dedicated thread.
pub trait EnclaveDoor: Send + 'static {
    /// Feeds one serialized `UntrustedMessage`. An error means the bytes were refused
    /// outright and no response will come for them.
    fn handle(&mut self, untrusted_message: &[u8]) -> Result<(), String>;

    /// Drains one serialized `EnclaveMessage`, or `None` when there is nothing more for now.
    fn poll_message(&mut self) -> Option<Vec<u8>>;
}

/// The real core, in this process.
impl EnclaveDoor for cloister_enclave::Enclave {
    fn handle(&mut self, untrusted_message: &[u8]) -> Result<(), String> {
        cloister_enclave::Enclave::handle(self, untrusted_message)
            .map_err(|error| error.to_string())
    }

    fn poll_message(&mut self) -> Option<Vec<u8>> {
        cloister_enclave::Enclave::poll_message(self)
    }
}
