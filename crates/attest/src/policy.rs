use crate::MEASUREMENT_BYTES;

/// What a verifier accepts. Built by the relying party (client or peer), never by the host.
#[derive(Debug, Clone)]
pub struct Policy {
    pub(crate) measurements: Vec<[u8; MEASUREMENT_BYTES]>,
    pub(crate) allow_simulated: bool,
    pub(crate) evidence_age_max_secs: u64,
    pub(crate) clock_skew_max_secs: u64,
}

impl Policy {
    /// Default bound on evidence age: enclaves refresh their evidence far more often.
    pub const EVIDENCE_AGE_MAX_SECS: u64 = 24 * 60 * 60;
    /// Default tolerance for evidence stamped slightly in the verifier's future.
    pub const CLOCK_SKEW_MAX_SECS: u64 = 5 * 60;

    /// A strict policy: hardware evidence only, with one of `measurements`.
    pub fn strict(measurements: Vec<[u8; MEASUREMENT_BYTES]>) -> Self {
        Self {
            measurements,
            allow_simulated: false,
            evidence_age_max_secs: Self::EVIDENCE_AGE_MAX_SECS,
            clock_skew_max_secs: Self::CLOCK_SKEW_MAX_SECS,
        }
    }

    /// Also accept simulated evidence. Insecure: anyone can forge it. For development only.
    pub fn insecure_allow_simulated(measurements: Vec<[u8; MEASUREMENT_BYTES]>) -> Self {
        Self {
            allow_simulated: true,
            ..Self::strict(measurements)
        }
    }

    /// Replace the bound on evidence age.
    pub fn with_evidence_age_max_secs(mut self, secs: u64) -> Self {
        self.evidence_age_max_secs = secs;
        self
    }

    /// True when simulated evidence may pass.
    pub fn allows_simulated(&self) -> bool {
        self.allow_simulated
    }
}
