//! `cloister attest verify`: real Intel and AMD evidence and a test Nitro document (from
//! crates/attest/tests/data) are verified or refused with the precise reason; exit 0 / 1,
//! and 2 for a wrong command line.

// Test code: a failed unwrap is a failed test. clippy.toml allows unwrap only inside
// #[test] functions, and these helpers sit outside them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Stdio};

use cloister_attest::sim;
use cloister_proto::attest::{AttestationData, GroupConfig};

/// Inside the SGX sample's collateral window (2025-06-19 to 2025-07-19).
const SGX_NOW: &str = "1750330571";
const TDX_NOW: &str = "1750500000";
const TDX_OUTDATED_NOW: &str = "1772323200";
/// Inside the Milan VCEK's window and the test Nitro leaf's.
const NOW: &str = "1750000000";

/// A vector under crates/attest/tests/data.
fn vector(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../attest/tests/data")
        .join(name)
        .display()
        .to_string()
}

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

fn attest_verify<S: AsRef<str>>(args: &[S]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_cloister"))
        .args(["attest", "verify"])
        .args(args.iter().map(AsRef::as_ref))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Output {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn verified<S: AsRef<str> + std::fmt::Debug>(args: &[S], mentions: &[&str]) {
    let output = attest_verify(args);
    assert_eq!(output.code, 0, "{args:?}: {}", output.stderr);
    for text in mentions {
        assert!(
            output.stdout.contains(text),
            "{text:?} in {}",
            output.stdout
        );
    }
}

fn refused<S: AsRef<str> + std::fmt::Debug>(args: &[S], reason: &str) {
    let output = attest_verify(args);
    assert_eq!(output.code, 1, "{args:?}: {}", output.stdout);
    assert!(
        output.stderr.contains(reason),
        "{reason:?} in {}",
        output.stderr
    );
}

/// A file in a fresh directory of its own, removed with it.
struct TemporaryFile {
    directory: PathBuf,
    path: PathBuf,
}

impl TemporaryFile {
    fn new(name: &str, bytes: &[u8]) -> Self {
        let directory = std::env::temp_dir().join(format!(
            "cloister-attest-verify-{}-{name}",
            std::process::id()
        ));
        std::fs::create_dir_all(&directory).unwrap();
        let path = directory.join(name);
        std::fs::write(&path, bytes).unwrap();
        Self { directory, path }
    }

    fn path(&self) -> &str {
        self.path.to_str().unwrap()
    }
}

impl Drop for TemporaryFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

#[test]
fn intel_sgx_evidence_is_verified_and_its_tcb_policy_applied() {
    let quote = vector("sgx-dcap/sgx_quote");
    let collateral = vector("sgx-dcap/sgx_quote_collateral.json");
    let base = [
        "--kind",
        "sgx-dcap",
        "--evidence",
        &quote,
        "--endorsements",
        &collateral,
    ];
    let allowances = [
        "--allow-tcb-status",
        "ConfigurationAndSWHardeningNeeded",
        "--allow-advisory",
        "INTEL-SA-00289",
        "--allow-advisory",
        "INTEL-SA-00615",
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter()
            .chain(extra)
            .map(|arg| (*arg).to_owned())
            .collect()
    };
    verified(
        &with(&[&["--now", SGX_NOW][..], &allowances].concat()),
        &[
            "verified sgx-dcap evidence",
            "ConfigurationAndSWHardeningNeeded",
            "mr_enclave",
        ],
    );
    // The default policy takes UpToDate only, and says what it saw.
    refused(
        &with(&["--now", SGX_NOW]),
        "TCB status ConfigurationAndSWHardeningNeeded with advisories [INTEL-SA-00289, INTEL-SA-00615] refused",
    );
    // After the collateral's window.
    refused(
        &with(&[&["--now", "1752919279"][..], &allowances].concat()),
        "not valid at 1752919279",
    );
    // JSON for programs.
    let output = attest_verify(&with(
        &[&["--now", SGX_NOW, "--json"][..], &allowances].concat(),
    ));
    assert_eq!(output.code, 0, "{}", output.stderr);
    let json: serde_json::Value = serde_json::from_str(&output.stdout).unwrap();
    assert_eq!(json["status"], "verified");
    assert_eq!(json["kind"], "sgx-dcap");
    assert_eq!(json["tcb_status"], "ConfigurationAndSWHardeningNeeded");
    assert_eq!(json["advisory_ids"][1], "INTEL-SA-00615");
    assert_eq!(json["debug"], false);
    assert_eq!(json["valid_until_unix_secs"], 1_752_919_278);
    let measurement = json["measurement"].as_str().unwrap().to_owned();
    assert_eq!(json["details"]["mr_enclave"], measurement.as_str());
    // Pinning that measurement passes; another is refused.
    verified(
        &with(
            &[
                &["--now", SGX_NOW, "--measurement", &measurement][..],
                &allowances,
            ]
            .concat(),
        ),
        &[&measurement],
    );
    refused(
        &with(
            &[
                &["--now", SGX_NOW, "--measurement", &"00".repeat(32)][..],
                &allowances,
            ]
            .concat(),
        ),
        &format!("measurement {measurement} is not accepted"),
    );
}

#[test]
fn intel_tdx_evidence_is_verified_and_an_outdated_platform_refused() {
    let quote = vector("sgx-dcap/tdx_quote");
    let collateral = vector("sgx-dcap/tdx_quote_collateral.json");
    verified(
        &[
            "--kind",
            "tdx",
            "--evidence",
            &quote,
            "--endorsements",
            &collateral,
            "--now",
            TDX_NOW,
        ],
        &["verified tdx evidence", "UpToDate", "mr_td"],
    );
    let outdated = vector("sgx-dcap/tdx_quote_outdated");
    let outdated_collateral = vector("sgx-dcap/tdx_quote_outdated_collateral.json");
    refused(
        &[
            "--kind",
            "tdx",
            "--evidence",
            &outdated,
            "--endorsements",
            &outdated_collateral,
            "--now",
            TDX_OUTDATED_NOW,
        ],
        "no matching TCB level",
    );
    // An SGX quote offered as TDX.
    refused(
        &[
            "--kind",
            "tdx",
            "--evidence",
            &vector("sgx-dcap/sgx_quote"),
            "--endorsements",
            &collateral,
            "--now",
            TDX_NOW,
        ],
        "the evidence says tdx but holds sgx-dcap",
    );
}

#[test]
fn amd_sev_snp_evidence_is_verified_from_a_hex_report_and_amds_files() {
    let report = vector("sev-snp/report_milan.hex");
    let vcek = vector("sev-snp/vcek_milan.der");
    let chain = vector("sev-snp/cert_chain_milan");
    let base = [
        "--kind",
        "sev-snp",
        "--evidence",
        &report,
        "--endorsements",
        &vcek,
    ];
    verified(
        &[&base[..], &["--cert-chain", &chain, "--now", NOW]].concat(),
        &[
            "verified sev-snp evidence",
            "bootloader 3 tee 0 snp 8 microcode 115",
            "launch_measurement",
        ],
    );
    // Turin's chain did not issue Milan's VCEK.
    refused(
        &[
            &base[..],
            &[
                "--cert-chain",
                &vector("sev-snp/cert_chain_turin"),
                "--now",
                NOW,
            ],
        ]
        .concat(),
        "certificate chain refused",
    );
    // After the VCEK expires (2030-04-03).
    refused(
        &[&base[..], &["--cert-chain", &chain, "--now", "1901474624"]].concat(),
        "the VCEK certificate is valid from",
    );
    // The truncated report.
    let text = std::fs::read_to_string(&report).unwrap();
    let short = TemporaryFile::new("short_report.hex", &text.trim().as_bytes()[..2000]);
    refused(
        &[
            "--kind",
            "sev-snp",
            "--evidence",
            short.path(),
            "--endorsements",
            &vcek,
            "--cert-chain",
            &chain,
            "--now",
            NOW,
        ],
        "truncated SEV-SNP report: 1000 bytes, its framing needs 1184",
    );
}

#[test]
fn nitro_evidence_needs_its_root() {
    let document = vector("nitro/test_document.cose");
    let base = ["--kind", "nitro", "--evidence", &document, "--now", NOW];
    // A test chain: AWS's root refuses it, its own root accepts it.
    refused(&base, "the document's root is not the trusted Nitro root");
    verified(
        &[&base[..], &["--root", &vector("nitro/test_root.der")]].concat(),
        &[
            "verified nitro evidence",
            "pcr0",
            "issued_at          1750000000",
        ],
    );
}

#[test]
fn simulated_evidence_needs_an_explicit_allowance() {
    let statement = AttestationData {
        public_key: vec![1; 32],
        group_config: Some(GroupConfig {
            simulated: true,
            ..Default::default()
        }),
        minimum_limits: None,
    };
    let quote = TemporaryFile::new("sim_quote", &sim::attest(&statement, 1_750_000_000).report);
    let base = ["--kind", "sim", "--evidence", quote.path(), "--now", NOW];
    refused(&base, "simulated evidence refused");
    verified(
        &[&base[..], &["--insecure-allow-simulated"]].concat(),
        &["verified sim evidence", "simulated evidence proves nothing"],
    );
}

#[test]
fn wrong_command_lines_exit_2_and_missing_files_exit_1() {
    let quote = vector("sgx-dcap/sgx_quote");
    let usage = |args: &[&str], mentions: &str| {
        let output = attest_verify(args);
        assert_eq!(output.code, 2, "{args:?}: {}", output.stderr);
        assert!(
            output.stderr.contains(mentions),
            "{mentions:?} in {}",
            output.stderr
        );
    };
    usage(&["--evidence", &quote], "--kind");
    usage(&["--kind", "sgx", "--evidence", &quote], "sgx");
    usage(
        &[
            "--kind",
            "sgx-dcap",
            "--evidence",
            &quote,
            "--measurement",
            "abc",
        ],
        "64 hex",
    );
    usage(
        &[
            "--kind",
            "sgx-dcap",
            "--evidence",
            &quote,
            "--allow-tcb-status",
            "Fine",
        ],
        "Fine",
    );
    usage(
        &[
            "--kind",
            "sgx-dcap",
            "--evidence",
            &quote,
            "--cert-chain",
            &quote,
        ],
        "--cert-chain",
    );
    refused(
        &["--kind", "sgx-dcap", "--evidence", "/nonexistent/quote"],
        "reading /nonexistent/quote",
    );
    refused(
        &["--kind", "sgx-dcap", "--evidence", &quote, "--now", SGX_NOW],
        "needs endorsements",
    );
}
