//! The enclave's client-facing static key and the evidence that binds it.

use cloister_proto::attest::{AttestationData, GroupConfig, MinimumLimits};
use cloister_proto::svr2::client::ClientHandshakeStart;
use prost::Message;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::env::{Env, PlatformError};
use crate::minimums::Minimums;

/// What evidence binds for `minimums`: nothing when there are none, so evidence of a group
/// that never set any is what it always was.
pub(crate) fn bound_minimums(minimums: &Minimums) -> Option<MinimumLimits> {
    (!minimums.is_empty()).then(|| minimums.to_proto())
}

/// The current client static key, with the handshake start every new session receives.
pub struct ClientKey {
    private: Zeroizing<[u8; 32]>,
    public: [u8; 32],
    handshake_start: ClientHandshakeStart,
    attested_at_unix_secs: u64,
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKey")
            .field("public", &hex::encode(self.public))
            .field("private", &"<redacted>")
            .finish()
    }
}

impl ClientKey {
    /// Draw a fresh key from `env` and attest it with `group` and its `minimums` at
    /// `now_unix_secs`.
    pub fn generate(
        env: &mut dyn Env,
        group: &GroupConfig,
        minimums: &Minimums,
        now_unix_secs: u64,
    ) -> Result<Self, PlatformError> {
        let mut private = Zeroizing::new([0u8; 32]);
        env.fill_random(private.as_mut());
        Self::attest(env, private, group, minimums, now_unix_secs)
    }

    /// The same key with fresh evidence binding `group` and `minimums` (after the group's
    /// minimums changed: sessions keep working, new clients see the new limits).
    pub fn reattested(
        &self,
        env: &mut dyn Env,
        group: &GroupConfig,
        minimums: &Minimums,
        now_unix_secs: u64,
    ) -> Result<Self, PlatformError> {
        Self::attest(env, self.private.clone(), group, minimums, now_unix_secs)
    }

    fn attest(
        env: &mut dyn Env,
        private: Zeroizing<[u8; 32]>,
        group: &GroupConfig,
        minimums: &Minimums,
        now_unix_secs: u64,
    ) -> Result<Self, PlatformError> {
        let public = PublicKey::from(&StaticSecret::from(*private)).to_bytes();
        let data = AttestationData {
            public_key: public.to_vec(),
            group_config: Some(*group),
            minimum_limits: bound_minimums(minimums),
        };
        let attestation = env.attest(&data, now_unix_secs)?;
        let handshake_start = ClientHandshakeStart {
            // SVR2: the key is sent in the clear only for simulated groups; a real client takes
            // it from the attested claims.
            test_only_pubkey: if group.simulated {
                public.to_vec()
            } else {
                Vec::new()
            },
            evidence: attestation.evidence.encode_to_vec(),
            endorsement: attestation.endorsements,
        };
        Ok(Self {
            private,
            public,
            handshake_start,
            attested_at_unix_secs: now_unix_secs,
        })
    }

    /// The private half, for building a Noise responder.
    pub fn private(&self) -> &[u8; 32] {
        &self.private
    }

    /// What the host sends a new client as its first frame.
    pub fn handshake_start(&self) -> &ClientHandshakeStart {
        &self.handshake_start
    }

    /// When the evidence was produced.
    pub fn attested_at_unix_secs(&self) -> u64 {
        self.attested_at_unix_secs
    }
}
