//! What a relying party (client or peer) accepts: measurements, TCB, simulated or not,
//! evidence age, and the roots each platform's chain must end at.
//!
//! ```text
//!  Claims ──debug? refuse──▶ TCB: Revoked? refuse; status allowed? advisories allowed?
//!         ──SEV-SNP TCB >= minimum──▶ measurement listed ──▶ age (Nitro, sim) ──▶ accepted
//! ```
//!
//! Debug enclaves are refused by every policy: there is no switch to allow them.

use crate::claims::{Claims, SnpTcb, TcbStatus};
use crate::{AttestError, MEASUREMENT_BYTES};

/// Which measurements a policy accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Measurements {
    Listed(Vec<[u8; MEASUREMENT_BYTES]>),
    Any,
}

/// Trust anchors a test (or a deployment that pins its own) may replace.
#[derive(Debug, Clone, Default)]
pub(crate) struct Roots {
    /// DER of the Intel SGX root CA; `None` is Intel's production root.
    pub(crate) intel_root_ca: Option<Vec<u8>>,
    /// DER certificates of the AMD root keys (ARKs); `None` is AMD's Milan, Genoa and
    /// Turin ARKs. An ARK is trusted for its public key.
    pub(crate) amd_root_keys: Option<Vec<Vec<u8>>>,
    /// DER of the AWS Nitro Enclaves root; `None` is AWS's published root (G1).
    pub(crate) nitro_root: Option<Vec<u8>>,
}

/// What a verifier accepts. Built by the relying party (client or peer), never by the host.
#[derive(Debug, Clone)]
pub struct Policy {
    measurements: Measurements,
    pub(crate) allow_simulated: bool,
    evidence_age_max_secs: u64,
    clock_skew_max_secs: u64,
    tcb_statuses: Vec<TcbStatus>,
    advisory_ids: Vec<String>,
    snp_minimum_tcb: SnpTcb,
    pub(crate) roots: Roots,
}

impl Policy {
    /// Default bound on evidence age: enclaves refresh their evidence far more often.
    pub const EVIDENCE_AGE_MAX_SECS: u64 = 24 * 60 * 60;
    /// Default tolerance for evidence stamped slightly in the verifier's future.
    pub const CLOCK_SKEW_MAX_SECS: u64 = 5 * 60;

    /// A strict policy: hardware evidence only, with one of `measurements`, TCB status
    /// `UpToDate` with no advisories, any SEV-SNP TCB, and the vendors' production roots.
    pub fn strict(measurements: Vec<[u8; MEASUREMENT_BYTES]>) -> Self {
        Self {
            measurements: Measurements::Listed(measurements),
            allow_simulated: false,
            evidence_age_max_secs: Self::EVIDENCE_AGE_MAX_SECS,
            clock_skew_max_secs: Self::CLOCK_SKEW_MAX_SECS,
            tcb_statuses: vec![TcbStatus::UpToDate],
            advisory_ids: Vec::new(),
            snp_minimum_tcb: SnpTcb::default(),
            roots: Roots::default(),
        }
    }

    /// Also accept simulated evidence. Insecure: anyone can forge it. For development only.
    pub fn insecure_allow_simulated(measurements: Vec<[u8; MEASUREMENT_BYTES]>) -> Self {
        Self {
            allow_simulated: true,
            ..Self::strict(measurements)
        }
    }

    /// Accept any measurement. Insecure: any code on a genuine platform passes. For
    /// inspecting evidence by hand (`cloister attest verify` prints the measurement).
    pub fn insecure_any_measurement(mut self) -> Self {
        self.measurements = Measurements::Any;
        self
    }

    /// Replace the bound on evidence age (for platforms that stamp a time: Nitro, sim).
    pub fn with_evidence_age_max_secs(mut self, secs: u64) -> Self {
        self.evidence_age_max_secs = secs;
        self
    }

    /// Also accept Intel TCB status `status`. `Revoked` stays refused whatever is allowed.
    pub fn allow_tcb_status(mut self, status: TcbStatus) -> Self {
        if !self.tcb_statuses.contains(&status) {
            self.tcb_statuses.push(status);
        }
        self
    }

    /// Accept a TCB status that carries the Intel advisory `id` (e.g. `INTEL-SA-00615`), once
    /// the status itself is allowed. A status with an advisory not listed is refused.
    pub fn allow_advisory(mut self, id: impl Into<String>) -> Self {
        let id = id.into();
        if !self.advisory_ids.contains(&id) {
            self.advisory_ids.push(id);
        }
        self
    }

    /// Refuse SEV-SNP evidence whose reported TCB has a component below `minimum`.
    pub fn with_snp_minimum_tcb(mut self, minimum: SnpTcb) -> Self {
        self.snp_minimum_tcb = minimum;
        self
    }

    /// Trust this Intel root CA (DER) instead of Intel's production root.
    pub fn with_intel_root_ca(mut self, der: Vec<u8>) -> Self {
        self.roots.intel_root_ca = Some(der);
        self
    }

    /// Trust these AMD root keys (ARK certificates, DER) instead of AMD's.
    pub fn with_amd_root_keys(mut self, ders: Vec<Vec<u8>>) -> Self {
        self.roots.amd_root_keys = Some(ders);
        self
    }

    /// Trust this Nitro root certificate (DER) instead of AWS's.
    pub fn with_nitro_root(mut self, der: Vec<u8>) -> Self {
        self.roots.nitro_root = Some(der);
        self
    }

    /// True when simulated evidence may pass.
    pub fn allows_simulated(&self) -> bool {
        self.allow_simulated
    }

    /// Check platform-verified `claims` at `now_unix_secs`.
    pub(crate) fn check(&self, claims: &Claims, now_unix_secs: u64) -> Result<(), AttestError> {
        if claims.simulated() && !self.allow_simulated {
            return Err(AttestError::SimulatedNotAllowed);
        }
        if claims.debug {
            return Err(AttestError::DebugEnclave);
        }
        self.check_tcb(claims)?;
        if let Measurements::Listed(accepted) = &self.measurements {
            if !accepted.contains(&claims.measurement) {
                return Err(AttestError::MeasurementNotAccepted(hex::encode(
                    claims.measurement,
                )));
            }
        }
        match claims.issued_at_unix_secs {
            Some(issued) => self.check_age(issued, now_unix_secs),
            None => Ok(()),
        }
    }

    fn check_tcb(&self, claims: &Claims) -> Result<(), AttestError> {
        if let Some(status) = claims.tcb_status {
            if status == TcbStatus::Revoked {
                return Err(AttestError::TcbRevoked);
            }
            let advisories_not_allowed: Vec<String> = claims
                .advisory_ids
                .iter()
                .filter(|id| !self.advisory_ids.contains(id))
                .cloned()
                .collect();
            if !self.tcb_statuses.contains(&status) || !advisories_not_allowed.is_empty() {
                return Err(AttestError::TcbNotAllowed {
                    status,
                    advisory_ids: claims.advisory_ids.clone(),
                    allowed_statuses: self.tcb_statuses.clone(),
                    advisories_not_allowed,
                });
            }
        }
        if let Some(tcb) = &claims.snp_tcb {
            if let Some((component, reported, minimum)) = tcb.shortfall(&self.snp_minimum_tcb) {
                return Err(AttestError::TcbBelowMinimum {
                    component,
                    reported,
                    minimum,
                });
            }
        }
        Ok(())
    }

    fn check_age(&self, issued: u64, now: u64) -> Result<(), AttestError> {
        if issued > now.saturating_add(self.clock_skew_max_secs) {
            return Err(AttestError::FromTheFuture { issued, now });
        }
        if now.saturating_sub(issued) > self.evidence_age_max_secs {
            return Err(AttestError::Expired {
                issued,
                now,
                age_max_secs: self.evidence_age_max_secs,
            });
        }
        Ok(())
    }
}
