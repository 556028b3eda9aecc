//! Fake kernels over a real temporary directory, behaving as the real interfaces do:
//! Gramine's `/dev/attestation`, configfs-tsm, and the Nitro Secure Module.
//!
//! They cannot sign as Intel or AMD: the SGX, TDX and SEV-SNP fakes answer with a real
//! vector whose report data is replaced by what was written (so its signature no longer
//! verifies). The NSM fake signs real documents with a test chain.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ciborium::value::Value;
use cloister_platform::{DeviceFs, NsmDevice, OsFs};

use super::nitro::{self, Chain, Fields};

/// What a fake answers to the report data written to it.
pub type Answer = Box<dyn FnMut(&[u8]) -> Vec<u8> + Send>;

/// `report` with `report_data` written at `at`: what the platform would sign.
pub fn with_report_data(report: &[u8], at: usize, report_data: &[u8]) -> Vec<u8> {
    let mut report = report.to_vec();
    report[at..at + report_data.len()].copy_from_slice(report_data);
    report
}

/// Report data offsets: SGX REPORTDATA (header 48 + body 320), TDX (48 + 520), SEV-SNP 0x50.
pub const SGX_REPORT_DATA: usize = 48 + 320;
pub const TDX_REPORT_DATA: usize = 48 + 520;
pub const SNP_REPORT_DATA: usize = 0x50;

/// An answer that puts the written report data into `report` at `at`.
pub fn binding(report: Vec<u8>, at: usize) -> Answer {
    Box::new(move |report_data| with_report_data(&report, at, report_data))
}

/// Gramine's `/dev/attestation`: `attestation_type`, `user_report_data` (write), `quote`.
pub struct FakeGramine {
    root: PathBuf,
    answer: Answer,
}

impl FakeGramine {
    /// A Gramine interface at `root` (created) reporting `attestation_type`.
    pub fn new(root: &Path, attestation_type: &str, answer: Answer) -> Self {
        std::fs::create_dir_all(root).unwrap();
        std::fs::write(root.join("attestation_type"), attestation_type).unwrap();
        Self {
            root: root.to_owned(),
            answer,
        }
    }
}

impl DeviceFs for FakeGramine {
    fn create_dir(&mut self, path: &Path) -> io::Result<()> {
        OsFs.create_dir(path)
    }

    fn write(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        if path == self.root.join("user_report_data") {
            // Gramine takes exactly the 64 bytes of SGX REPORTDATA.
            if bytes.len() != 64 {
                return Err(io::Error::from_raw_os_error(22));
            }
            std::fs::write(self.root.join("quote"), (self.answer)(bytes))?;
        }
        OsFs.write(path, bytes)
    }

    fn read(&mut self, path: &Path, bytes_max: usize) -> io::Result<Vec<u8>> {
        OsFs.read(path, bytes_max)
    }

    fn remove_dir(&mut self, path: &Path) -> io::Result<()> {
        OsFs.remove_dir(path)
    }
}

/// How a fake configfs-tsm misbehaves.
#[derive(Default, Clone)]
pub struct TsmQuirks {
    /// During this many requests another writer also writes the entry's `inblob`.
    pub concurrent_writes: u32,
}

/// configfs-tsm's report directory: `mkdir` makes an entry with `provider`, `generation`,
/// `inblob` (write), `outblob`, `auxblob`; `rmdir` removes it whole.
pub struct FakeTsm {
    root: PathBuf,
    provider: String,
    answer: Answer,
    auxblob: Vec<u8>,
    quirks: TsmQuirks,
    /// Every entry made, for tests to check they were removed.
    pub entries: Arc<Mutex<Vec<PathBuf>>>,
}

impl FakeTsm {
    /// A report directory at `root` (which must exist, as configfs makes it) provided by
    /// `provider`, answering `outblob` with `answer` and `auxblob` with `auxblob`.
    pub fn new(root: &Path, provider: &str, answer: Answer, auxblob: Vec<u8>) -> Self {
        Self {
            root: root.to_owned(),
            provider: provider.to_owned(),
            answer,
            auxblob,
            quirks: TsmQuirks::default(),
            entries: Arc::default(),
        }
    }

    pub fn with_quirks(mut self, quirks: TsmQuirks) -> Self {
        self.quirks = quirks;
        self
    }

    fn bump_generation(entry: &Path, by: u64) -> io::Result<()> {
        let text = std::fs::read_to_string(entry.join("generation"))?;
        let generation: u64 = text.trim().parse().unwrap();
        std::fs::write(entry.join("generation"), format!("{}\n", generation + by))
    }
}

impl DeviceFs for FakeTsm {
    fn create_dir(&mut self, path: &Path) -> io::Result<()> {
        if path.parent() != Some(self.root.as_path()) {
            return Err(io::Error::from_raw_os_error(1));
        }
        // Fails with NotFound when the report directory is absent, as on a kernel without it.
        std::fs::create_dir(path)?;
        std::fs::write(path.join("provider"), format!("{}\n", self.provider))?;
        std::fs::write(path.join("generation"), "0\n")?;
        std::fs::write(path.join("auxblob"), &self.auxblob)?;
        self.entries.lock().unwrap().push(path.to_owned());
        Ok(())
    }

    fn write(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let entry = path.parent().unwrap();
        if path.file_name() != Some("inblob".as_ref()) || !entry.join("provider").exists() {
            return Err(io::Error::from_raw_os_error(13));
        }
        // TSM_INBLOB_MAX.
        if bytes.len() > 64 {
            return Err(io::Error::from_raw_os_error(22));
        }
        let mut bumps = 1;
        if self.quirks.concurrent_writes > 0 {
            self.quirks.concurrent_writes -= 1;
            bumps += 1;
        }
        Self::bump_generation(entry, bumps)?;
        std::fs::write(entry.join("outblob"), (self.answer)(bytes))
    }

    fn read(&mut self, path: &Path, bytes_max: usize) -> io::Result<Vec<u8>> {
        OsFs.read(path, bytes_max)
    }

    fn remove_dir(&mut self, path: &Path) -> io::Result<()> {
        // configfs removes an entry's attributes with it.
        std::fs::remove_dir_all(path)
    }
}

/// What a fake NSM answers.
pub type NsmAnswer = Box<dyn FnMut(&[u8]) -> io::Result<Vec<u8>> + Send>;

/// The Nitro Secure Module.
pub struct FakeNsm(pub NsmAnswer);

impl NsmDevice for FakeNsm {
    fn request(&mut self, request: &[u8]) -> io::Result<Vec<u8>> {
        (self.0)(request)
    }
}

pub fn encode(value: &Value) -> Vec<u8> {
    let mut bytes = Vec::new();
    ciborium::ser::into_writer(value, &mut bytes).unwrap();
    bytes
}

/// The `user_data` of an NSM `Attestation` request.
pub fn requested_user_data(request: &[u8]) -> Vec<u8> {
    let value: Value = ciborium::de::from_reader(request).unwrap();
    let Value::Map(outer) = value else {
        panic!("not a map")
    };
    let (name, body) = &outer[0];
    assert_eq!(name.as_text(), Some("Attestation"));
    let Value::Map(body) = body else {
        panic!("not a map")
    };
    body.iter()
        .find(|(key, _)| key.as_text() == Some("user_data"))
        .and_then(|(_, value)| value.as_bytes().cloned())
        .unwrap()
}

/// An NSM response carrying `document`.
pub fn document_response(document: Vec<u8>) -> Vec<u8> {
    encode(&Value::Map(vec![(
        Value::Text("Attestation".into()),
        Value::Map(vec![(
            Value::Text("document".into()),
            Value::Bytes(document),
        )]),
    )]))
}

/// An NSM that signs, with `chain`, a document of `fields` over the requested user data.
pub fn signing_nsm(chain: Chain, fields: Fields) -> FakeNsm {
    FakeNsm(Box::new(move |request| {
        let fields = Fields {
            user_data: Some(requested_user_data(request)),
            ..fields.clone()
        };
        Ok(document_response(nitro::document(&fields, &chain)))
    }))
}
