//! Verification cost per evidence kind, over the test vectors.
//!
//! ```text
//! cargo run --release -p cloister-attest --example verify_cost [ITERATIONS]
//! ```
//!
//! Prints the mean wall time of one `verify_evidence` call per kind (µs): the platform
//! proof (signatures, chain, collateral or certificates) plus the policy. SGX and TDX use
//! Intel's sample quotes and collateral, SEV-SNP the Milan report and AMD's chain, Nitro a
//! document signed by the test chain (same shape and algorithms as AWS's), sim the
//! simulated backend.
// A benchmark measures wall time; the verifiers it times never read the clock. A vector
// that fails to verify ends the run with its reason.
#![allow(clippy::disallowed_methods, clippy::expect_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Instant;

use cloister_attest::{Policy, sim, verify_evidence};
use cloister_proto::attest::{AttestationData, EvidenceKind, GroupConfig};
use support::{dcap, nitro, sev};

struct Case {
    name: &'static str,
    kind: EvidenceKind,
    report: Vec<u8>,
    endorsements: Vec<u8>,
    policy: Policy,
    now: u64,
}

fn cases() -> Vec<Case> {
    let any = |policy: Policy| policy.insecure_any_measurement();
    let sgx = dcap::vector("sgx_quote");
    let tdx = dcap::vector("tdx_quote");
    let chain = nitro::chain();
    let document = nitro::document(&nitro::Fields::default(), &chain);
    let statement = AttestationData {
        public_key: vec![1; 32],
        group_config: Some(GroupConfig {
            simulated: true,
            ..Default::default()
        }),
        minimum_limits: None,
    };
    vec![
        Case {
            name: "sgx-dcap",
            kind: EvidenceKind::SgxDcap,
            report: sgx.quote,
            endorsements: sgx.collateral,
            policy: any(Policy::strict(Vec::new()))
                .allow_tcb_status(cloister_attest::TcbStatus::ConfigurationAndSwHardeningNeeded)
                .allow_advisory("INTEL-SA-00289")
                .allow_advisory("INTEL-SA-00615"),
            now: dcap::SGX_VALID_FROM,
        },
        Case {
            name: "tdx",
            kind: EvidenceKind::Tdx,
            report: tdx.quote,
            endorsements: tdx.collateral,
            policy: any(Policy::strict(Vec::new())),
            now: dcap::TDX_NOW,
        },
        Case {
            name: "sev-snp",
            kind: EvidenceKind::SevSnp,
            report: sev::milan_report(),
            endorsements: sev::milan_endorsements(),
            policy: any(Policy::strict(Vec::new())),
            now: nitro::ISSUED_AT,
        },
        Case {
            name: "nitro",
            kind: EvidenceKind::Nitro,
            report: document,
            endorsements: Vec::new(),
            policy: any(Policy::strict(Vec::new())).with_nitro_root(chain.root.clone()),
            now: nitro::ISSUED_AT,
        },
        Case {
            name: "sim",
            kind: EvidenceKind::Sim,
            report: sim::attest(&statement, nitro::ISSUED_AT).report,
            endorsements: Vec::new(),
            policy: Policy::insecure_allow_simulated(vec![sim::measurement()]),
            now: nitro::ISSUED_AT,
        },
    ]
}

fn main() {
    let iterations: u32 = std::env::args()
        .nth(1)
        .map(|text| text.parse().expect("ITERATIONS must be a number"))
        .unwrap_or(200);
    println!("kind       mean µs   ({iterations} verifications each)");
    for case in cases() {
        let run = || {
            verify_evidence(
                case.kind,
                &case.report,
                &case.endorsements,
                &case.policy,
                case.now,
            )
            .unwrap_or_else(|error| panic!("{}: {error}", case.name))
        };
        run(); // warm up
        let started = Instant::now();
        for _ in 0..iterations {
            std::hint::black_box(run());
        }
        let mean = started.elapsed().as_secs_f64() * 1e6 / f64::from(iterations);
        println!("{:<10} {mean:>8.0}", case.name);
    }
}
