//! The SEV-SNP certificate table (configfs-tsm's `auxblob` for `sev_guest`) as endorsements.
//!
//! The host hands the guest AMD's certificates for its chip in the layout the GHCB
//! specification gives for extended guest requests:
//!
//! ```text
//!  entry: guid[16] (RFC 4122 byte order) | offset: u32 LE | length: u32 LE   (24 bytes)
//!  entries..., then an all-zero entry; certificates (DER) at offset..offset+length,
//!  offsets counted from the start of the table
//!    VCEK 63da758d-e664-4564-adc5-f4b93be8accd
//!    ASK  4ab7b379-bbac-4fe4-a02f-05aef327c782
//!    ARK  c0b406a4-a803-4952-9743-3fb6014cd0ae
//! ```
//!
//! The host is untrusted: every entry is checked (inside the blob, after the entry list, no
//! overlaps, no duplicate GUIDs, a bounded count) and every certificate must parse.

use cloister_enclave::PlatformError;
use cloister_proto::attest::SevSnpEndorsements;
use prost::Message;

const ENTRY_BYTES: usize = 24;
/// Bound on entries before the terminator (AMD defines five GUIDs; hosts may add their own).
const ENTRIES_MAX: usize = 16;

const VCEK: [u8; 16] = guid(0x63da758d, 0xe664, 0x4564, 0xadc5_f4b93be8accd);
const ASK: [u8; 16] = guid(0x4ab7b379, 0xbbac, 0x4fe4, 0xa02f_05aef327c782);
const ARK: [u8; 16] = guid(0xc0b406a4, 0xa803, 0x4952, 0x9743_3fb6014cd0ae);
const VLEK: [u8; 16] = guid(0xa8074bc2, 0xa25a, 0x483e, 0xaae6_39c045a0b8a1);

/// A GUID's 16 bytes in RFC 4122 (string) order, as the GHCB table and the `sev` crate
/// hold them: `first-second-third-last` with `last` the final two groups (8 bytes).
const fn guid(first: u32, second: u16, third: u16, last: u64) -> [u8; 16] {
    let (a, b, c, d) = (
        first.to_be_bytes(),
        second.to_be_bytes(),
        third.to_be_bytes(),
        last.to_be_bytes(),
    );
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6],
        d[7],
    ]
}

/// One entry of the table.
struct Entry {
    guid: [u8; 16],
    start: usize,
    end: usize,
}

fn refuse(reason: impl std::fmt::Display) -> PlatformError {
    PlatformError(format!("sev-snp certificate table (auxblob): {reason}"))
}

/// The entries up to the all-zero terminator, each checked against `table`'s bounds.
fn entries(table: &[u8]) -> Result<Vec<Entry>, PlatformError> {
    let mut entries: Vec<Entry> = Vec::new();
    for index in 0..=ENTRIES_MAX {
        let at = index * ENTRY_BYTES;
        let raw = table
            .get(at..at + ENTRY_BYTES)
            .ok_or_else(|| refuse("ends before its all-zero terminating entry"))?;
        let le_u32 = |from: usize| {
            usize::try_from(u32::from_le_bytes([
                raw[from],
                raw[from + 1],
                raw[from + 2],
                raw[from + 3],
            ]))
            .unwrap_or(usize::MAX)
        };
        let mut guid = [0u8; 16];
        guid.copy_from_slice(&raw[..16]);
        let (offset, length) = (le_u32(16), le_u32(20));
        if guid == [0; 16] {
            if offset != 0 || length != 0 {
                return Err(refuse("the terminating entry is not all zero"));
            }
            let list_end = at + ENTRY_BYTES;
            if let Some(entry) = entries.iter().find(|entry| entry.start < list_end) {
                return Err(refuse(format!(
                    "a certificate at offset {} overlaps the entry list ({list_end} bytes)",
                    entry.start
                )));
            }
            return Ok(entries);
        }
        let end = offset
            .checked_add(length)
            .filter(|end| *end <= table.len())
            .ok_or_else(|| {
                refuse(format!(
                    "entry {index} ({offset}+{length}) runs past the table's {} bytes",
                    table.len()
                ))
            })?;
        if length == 0 {
            return Err(refuse(format!("entry {index} is empty")));
        }
        for other in &entries {
            if other.guid == guid {
                return Err(refuse(format!("entry {index} repeats a GUID")));
            }
            if offset < other.end && other.start < end {
                return Err(refuse(format!("entry {index} overlaps another")));
            }
        }
        entries.push(Entry {
            guid,
            start: offset,
            end,
        });
    }
    Err(refuse(format!(
        "more than {ENTRIES_MAX} entries before the terminator"
    )))
}

/// `SevSnpEndorsements` (VCEK, ASK, ARK, DER) from a certificate table, every entry checked.
pub fn sev_snp_endorsements_from_cert_table(table: &[u8]) -> Result<Vec<u8>, PlatformError> {
    let entries = entries(table)?;
    let certificate = |guid: [u8; 16], name: &str| -> Result<Vec<u8>, PlatformError> {
        let entry = entries
            .iter()
            .find(|entry| entry.guid == guid)
            .ok_or_else(|| {
                let vlek = entries.iter().any(|entry| entry.guid == VLEK);
                refuse(if name == "VCEK" && vlek {
                    "it holds a VLEK, not a VCEK: VLEK-signed reports are not supported".into()
                } else {
                    format!("no {name} entry")
                })
            })?;
        let der = &table[entry.start..entry.end];
        if der.first() != Some(&0x30) {
            return Err(refuse(format!("the {name} is not a DER certificate")));
        }
        cloister_attest::endorsements::certificate_der(der)
            .map_err(|error| refuse(format!("the {name}: {error}")))
    };
    Ok(SevSnpEndorsements {
        vcek: certificate(VCEK, "VCEK")?,
        ask: certificate(ASK, "ASK")?,
        ark: certificate(ARK, "ARK")?,
    }
    .encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_in_rfc_4122_byte_order() {
        // The `sev` crate and AMD's tools read the GUID bytes as the string's hex digits.
        let hex: String = VCEK.iter().map(|byte| format!("{byte:02x}")).collect();
        assert_eq!(hex, "63da758de6644564adc5f4b93be8accd");
        let hex: String = ARK.iter().map(|byte| format!("{byte:02x}")).collect();
        assert_eq!(hex, "c0b406a4a803495297433fb6014cd0ae");
    }

    #[test]
    fn an_empty_or_unterminated_table_is_refused() {
        for table in [&[][..], &[0u8; ENTRY_BYTES - 1]] {
            let error = sev_snp_endorsements_from_cert_table(table).unwrap_err();
            assert!(error.0.contains("terminating entry"), "{error}");
        }
        // Only the terminator: no certificates.
        let error = sev_snp_endorsements_from_cert_table(&[0; ENTRY_BYTES]).unwrap_err();
        assert!(error.0.contains("no VCEK entry"), "{error}");
    }
}
