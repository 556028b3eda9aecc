//! Attestation for Cloister: the evidence envelope, the statement it binds, and verifiers.
//!
//! ```text
//!  enclave: AttestationData{key, group, minimums} ──serialize──▶ bytes ──SHA-256──▶ report_data
//!           platform signs (measurement, report_data) ──▶ Evidence{kind, report, bytes}
//!  client:  verify(evidence, endorsements, policy, now) ──▶ VerifiedAttestation (proof value)
//!             = verify_evidence(kind, report, endorsements, policy, now) ──▶ Claims
//!               (platform signature, chain to a trusted root, validity, debug, TCB, measurement)
//!             + check_binding(claims, attestation_data)  (report data == SHA-256(statement))
//! ```
//!
//! A verifier is a pure function of its arguments: it never reads a clock. The only way to
//! obtain a [`VerifiedAttestation`] is [`verify`], so code that holds one has checked the
//! platform signature, the measurement and the report-data binding.
//!
//! Backends (docs/attestation.md has the formats and conventions):
//! - [`sim`]: a software platform key; insecure by design, accepted only when the policy
//!   says [`Policy::insecure_allow_simulated`];
//! - `sgx-dcap` and `tdx`: Intel quotes with DCAP collateral, through `dcap-qvl`;
//! - `sev-snp`: AMD reports with the VCEK, ASK and ARK, through `sev`;
//! - `nitro`: AWS Nitro COSE_Sign1 documents, chained to AWS's root.
//!
//! ```
//! use cloister_attest::{sim, verify, Policy};
//! use cloister_proto::attest::{AttestationData, GroupConfig};
//! use cloister_proto::prost::Message;
//! let data = AttestationData {
//!     public_key: vec![7; 32],
//!     group_config: Some(GroupConfig { group_id: 1, simulated: true, ..Default::default() }),
//!     minimum_limits: None,
//! };
//! let evidence = sim::attest(&data, 1_700_000_000).encode_to_vec();
//! let policy = Policy::insecure_allow_simulated(vec![sim::measurement()]);
//! let verified = verify(&evidence, &[], &policy, 1_700_000_100).unwrap();
//! assert_eq!(verified.public_key(), &[7; 32]);
//! assert!(verified.simulated());
//! ```

mod claims;
pub mod endorsements;
mod error;
mod policy;
pub mod sim;
pub mod unverified;
mod verify;

pub use claims::{Claims, SnpTcb, TcbStatus, Validity, derived_measurement, kind_name};
pub use error::AttestError;
pub use policy::Policy;
pub use verify::{
    VerifiedAttestation, check_binding, report_data, report_data_for, verify, verify_evidence,
};

/// Length of a measurement (SGX MRENCLAVE-sized; other backends hash theirs to fit).
pub const MEASUREMENT_BYTES: usize = 32;

/// Bound on serialized evidence accepted from anyone.
pub const EVIDENCE_BYTES_MAX: usize = 64 * 1024;

/// Bound on endorsements (collateral) accepted from anyone.
pub const ENDORSEMENTS_BYTES_MAX: usize = 256 * 1024;
