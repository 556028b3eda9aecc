//! `cloister attest verify`: check a platform's evidence by hand.
//!
//! ```text
//!  --evidence FILE (raw quote / report / document; binary or hex) ─┐
//!  --endorsements FILE, --cert-chain FILE ─────────────────────────┼─▶ verify_evidence ─▶ claims
//!  --measurement, --allow-tcb-status, --allow-advisory, --root ────┘      or the refusal (exit 1)
//! ```
//!
//! The evidence is the platform's own bytes, not a Cloister envelope, so no statement is
//! bound: this checks the platform's proof and the policy, and prints what it says.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use clap::{Args, Subcommand, ValueEnum};
use cloister_attest::{Claims, Policy, TcbStatus, endorsements, kind_name, verify_evidence};
use cloister_proto::attest::EvidenceKind;
use serde_json::{Map, Value, json};

use crate::exit::{Failure, Outcome};

#[derive(Debug, Args)]
pub struct AttestArgs {
    #[command(subcommand)]
    pub command: AttestCommand,
}

#[derive(Debug, Subcommand)]
pub enum AttestCommand {
    /// Verify a platform's evidence; print its claims, or why it is refused (exit 1).
    Verify(VerifyArgs),
}

impl AttestCommand {
    pub fn json(&self) -> bool {
        match self {
            AttestCommand::Verify(args) => args.json,
        }
    }
}

/// Evidence kinds, as operators name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    SgxDcap,
    Tdx,
    SevSnp,
    Nitro,
    Sim,
}

impl Kind {
    fn evidence_kind(self) -> EvidenceKind {
        match self {
            Kind::SgxDcap => EvidenceKind::SgxDcap,
            Kind::Tdx => EvidenceKind::Tdx,
            Kind::SevSnp => EvidenceKind::SevSnp,
            Kind::Nitro => EvidenceKind::Nitro,
            Kind::Sim => EvidenceKind::Sim,
        }
    }
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The platform that produced the evidence.
    #[arg(long, value_enum)]
    pub kind: Kind,
    /// The platform's raw evidence, binary or hex text: an SGX or TDX quote, an SEV-SNP
    /// report (1184 bytes), a Nitro attestation document, or a sim quote.
    #[arg(long)]
    pub evidence: PathBuf,
    /// sgx-dcap, tdx: the DCAP collateral (QuoteCollateralV3 JSON). sev-snp: the VCEK
    /// certificate (DER or PEM) with --cert-chain, or a SevSnpEndorsements message without.
    #[arg(long)]
    pub endorsements: Option<PathBuf>,
    /// sev-snp: AMD's certificate chain for the product (PEM, the ASK then the ARK).
    #[arg(long)]
    pub cert_chain: Option<PathBuf>,
    /// Verify as of this time (unix seconds) instead of now.
    #[arg(long)]
    pub now: Option<u64>,
    /// Accept only this measurement (64 hex characters; repeatable). Without one, any
    /// measurement is accepted and printed.
    #[arg(long = "measurement", value_parser = parse_measurement)]
    pub measurements: Vec<[u8; 32]>,
    /// Also accept this Intel TCB status (repeatable), e.g. SWHardeningNeeded.
    #[arg(long = "allow-tcb-status")]
    pub tcb_statuses: Vec<TcbStatus>,
    /// Accept this Intel advisory in the TCB status (repeatable), e.g. INTEL-SA-00615.
    #[arg(long = "allow-advisory")]
    pub advisories: Vec<String>,
    /// Trust this root certificate (DER or PEM) instead of the vendor's: Intel's root CA
    /// (sgx-dcap, tdx), an AMD ARK (sev-snp), or the Nitro root (nitro).
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Accept simulated evidence (kind sim). Insecure: anyone can forge it.
    #[arg(long)]
    pub insecure_allow_simulated: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

fn parse_measurement(text: &str) -> Result<[u8; 32], String> {
    let mut measurement = [0; 32];
    hex::decode_to_slice(text.trim(), &mut measurement)
        .map_err(|_| "a measurement is 64 hex characters".to_owned())?;
    Ok(measurement)
}

pub async fn run(args: AttestArgs) -> Result<Outcome, Failure> {
    match args.command {
        AttestCommand::Verify(args) => verify(&args),
    }
}

fn verify(args: &VerifyArgs) -> Result<Outcome, Failure> {
    let kind = args.kind.evidence_kind();
    let evidence = read_evidence(&args.evidence).map_err(Failure::other)?;
    let endorsements = endorsements_for(args)?;
    let policy = policy_for(args)?;
    let now = match args.now {
        Some(now) => now,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|_| Failure::other(anyhow!("the system clock is before 1970")))?
            .as_secs(),
    };
    let claims =
        verify_evidence(kind, &evidence, &endorsements, &policy, now).map_err(|error| {
            Failure::other(anyhow!("{} evidence refused: {error}", kind_name(kind)))
        })?;
    Ok(Outcome::new(text(&claims, now), to_json(&claims, now)))
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// The file's bytes, or the bytes its hex text spells.
fn read_evidence(path: &Path) -> anyhow::Result<Vec<u8>> {
    let bytes = read(path)?;
    let text: Vec<u8> = bytes
        .iter()
        .copied()
        .filter(|byte| !byte.is_ascii_whitespace())
        .collect();
    if !text.is_empty() && text.iter().all(u8::is_ascii_hexdigit) {
        return hex::decode(&text).with_context(|| format!("{}: odd-length hex", path.display()));
    }
    Ok(bytes)
}

fn endorsements_for(args: &VerifyArgs) -> Result<Vec<u8>, Failure> {
    let endorsements = match &args.endorsements {
        Some(path) => read(path).map_err(Failure::other)?,
        None => Vec::new(),
    };
    match (&args.cert_chain, args.kind) {
        (None, _) => Ok(endorsements),
        (Some(chain), Kind::SevSnp) => {
            let chain = read(chain).map_err(Failure::other)?;
            endorsements::sev_snp(&endorsements, &chain)
                .map_err(|error| Failure::other(anyhow!("--endorsements, --cert-chain: {error}")))
        }
        (Some(_), _) => Err(Failure::usage(
            "--cert-chain is for sev-snp; other kinds carry their chain in the evidence or the \
             collateral"
                .into(),
        )),
    }
}

fn policy_for(args: &VerifyArgs) -> Result<Policy, Failure> {
    let mut policy = if args.insecure_allow_simulated {
        Policy::insecure_allow_simulated(args.measurements.clone())
    } else {
        Policy::strict(args.measurements.clone())
    };
    if args.measurements.is_empty() {
        policy = policy.insecure_any_measurement();
    }
    for status in &args.tcb_statuses {
        policy = policy.allow_tcb_status(*status);
    }
    for advisory in &args.advisories {
        policy = policy.allow_advisory(advisory.clone());
    }
    if let Some(path) = &args.root {
        let der = endorsements::certificate_der(&read(path).map_err(Failure::other)?)
            .map_err(|error| Failure::other(anyhow!("--root: {error}")))?;
        policy = match args.kind {
            Kind::SgxDcap | Kind::Tdx => policy.with_intel_root_ca(der),
            Kind::SevSnp => policy.with_amd_root_keys(vec![der]),
            Kind::Nitro => policy.with_nitro_root(der),
            Kind::Sim => return Err(Failure::usage("--root: sim evidence has no root".into())),
        };
    }
    Ok(policy)
}

fn text(claims: &Claims, now: u64) -> String {
    let mut lines = vec![
        format!("verified {} evidence at {now}", kind_name(claims.kind())),
        format!("  measurement        {}", hex::encode(claims.measurement())),
        format!("  report_data        {}", hex::encode(claims.report_data())),
        format!("  debug              {}", claims.debug()),
    ];
    if let Some(status) = claims.tcb_status() {
        lines.push(format!("  tcb_status         {status}"));
        lines.push(format!(
            "  advisories    [{}]",
            claims.advisory_ids().join(", ")
        ));
    }
    if let Some(tcb) = claims.snp_tcb() {
        lines.push(format!("  reported_tcb       {tcb}"));
    }
    if let Some(issued) = claims.issued_at_unix_secs() {
        lines.push(format!("  issued_at          {issued}"));
    }
    let validity = claims.validity();
    lines.push(format!(
        "  valid              {} to {} (unix seconds)",
        validity.not_before_unix_secs, validity.not_after_unix_secs
    ));
    for (name, value) in claims.details() {
        lines.push(format!("  {name:<18} {value}"));
    }
    if claims.simulated() {
        lines.push("  warning: simulated evidence proves nothing".into());
    }
    lines.join("\n")
}

fn to_json(claims: &Claims, now: u64) -> Value {
    let details: Map<String, Value> = claims
        .details()
        .iter()
        .map(|(name, value)| ((*name).to_owned(), Value::String(value.clone())))
        .collect();
    let validity = claims.validity();
    json!({
        "status": "verified",
        "kind": kind_name(claims.kind()),
        "now": now,
        "measurement": hex::encode(claims.measurement()),
        "report_data": hex::encode(claims.report_data()),
        "debug": claims.debug(),
        "simulated": claims.simulated(),
        "tcb_status": claims.tcb_status().map(|status| status.as_str()),
        "advisory_ids": claims.advisory_ids(),
        "snp_tcb": claims.snp_tcb().map(|tcb| json!({
            "bootloader": tcb.bootloader,
            "tee": tcb.tee,
            "snp": tcb.snp,
            "microcode": tcb.microcode,
            "fmc": tcb.fmc,
        })),
        "issued_at_unix_secs": claims.issued_at_unix_secs(),
        "valid_from_unix_secs": validity.not_before_unix_secs,
        "valid_until_unix_secs": validity.not_after_unix_secs,
        "details": details,
    })
}
