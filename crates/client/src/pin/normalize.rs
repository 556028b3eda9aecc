//! PIN normalization: the same PIN typed on different keyboards hashes the same.
//!
//! The rule, in full:
//! 1. Trim leading and trailing Unicode whitespace.
//! 2. Map every decimal digit of the scripts in [`DIGIT_ZEROS`] to its ASCII digit, so
//!    `"١٢٣٤"` (Arabic-Indic) and `"１２３４"` (fullwidth) both become `"1234"`.
//! 3. Leave every other character as it is.
//!
//! This is **not** Unicode NFKD (that needs normalization tables this crate does not carry).
//! For PINs made of digits from the listed scripts and ASCII, the result is the same as
//! NFKD followed by digit folding; for other non-ASCII characters it may differ, so other
//! clients must apply exactly this rule to share a backup.

use zeroize::Zeroizing;

use crate::{Error, Result};

/// Bound on a PIN's UTF-8 length, before and after normalization.
pub const PIN_TEXT_BYTES_MAX: usize = 1024;

/// The code point of digit zero in each script whose ten digits are contiguous and mapped.
pub const DIGIT_ZEROS: &[(char, &str)] = &[
    ('\u{0660}', "Arabic-Indic"),
    ('\u{06F0}', "Extended Arabic-Indic"),
    ('\u{07C0}', "NKo"),
    ('\u{0966}', "Devanagari"),
    ('\u{09E6}', "Bengali"),
    ('\u{0A66}', "Gurmukhi"),
    ('\u{0AE6}', "Gujarati"),
    ('\u{0B66}', "Oriya"),
    ('\u{0BE6}', "Tamil"),
    ('\u{0C66}', "Telugu"),
    ('\u{0CE6}', "Kannada"),
    ('\u{0D66}', "Malayalam"),
    ('\u{0E50}', "Thai"),
    ('\u{0ED0}', "Lao"),
    ('\u{0F20}', "Tibetan"),
    ('\u{1040}', "Myanmar"),
    ('\u{17E0}', "Khmer"),
    ('\u{1810}', "Mongolian"),
    ('\u{FF10}', "Fullwidth"),
];

/// The ASCII digit for `character`, when it is a decimal digit of a listed script.
fn ascii_digit(character: char) -> Option<char> {
    let code = u32::from(character);
    DIGIT_ZEROS.iter().find_map(|&(zero, _)| {
        let offset = code.checked_sub(u32::from(zero))?;
        // offset < 10, so the sum is an ASCII digit.
        (offset < 10).then(|| char::from(b'0' + offset as u8))
    })
}

/// Normalize a PIN by the rule in this module's docs. Refuses an empty or oversized PIN.
pub fn normalize(pin: &str) -> Result<Zeroizing<String>> {
    if pin.len() > PIN_TEXT_BYTES_MAX {
        return Err(Error::invalid(
            "pin",
            format!("longer than {PIN_TEXT_BYTES_MAX} bytes"),
        ));
    }
    let mut normalized = Zeroizing::new(String::with_capacity(pin.len()));
    for character in pin.trim().chars() {
        normalized.push(ascii_digit(character).unwrap_or(character));
    }
    if normalized.is_empty() {
        return Err(Error::invalid("pin", "is empty"));
    }
    Ok(normalized)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_whitespace() {
        assert_eq!(normalize(" 1234\n").unwrap().as_str(), "1234");
        assert_eq!(normalize("\u{3000}1234\u{00A0}").unwrap().as_str(), "1234");
        assert_eq!(normalize("12 34").unwrap().as_str(), "12 34");
    }

    #[test]
    fn folds_digits_of_common_scripts() {
        for pin in [
            "1234",
            "\u{0661}\u{0662}\u{0663}\u{0664}",
            "\u{06F1}\u{06F2}\u{06F3}\u{06F4}",
            "\u{0967}\u{0968}\u{0969}\u{096A}",
            "\u{FF11}\u{FF12}\u{FF13}\u{FF14}",
            "1\u{0662}\u{FF13}4",
        ] {
            assert_eq!(normalize(pin).unwrap().as_str(), "1234", "{pin:?}");
        }
        assert_eq!(normalize("\u{0660}\u{0669}").unwrap().as_str(), "09");
        assert_eq!(normalize("\u{FF10}\u{FF19}").unwrap().as_str(), "09");
    }

    #[test]
    fn keeps_other_characters() {
        assert_eq!(normalize("Pässwort").unwrap().as_str(), "Pässwort");
        // One past a script's nine is not a digit of that script.
        assert_eq!(normalize("\u{066A}").unwrap().as_str(), "\u{066A}");
    }

    #[test]
    fn refuses_empty_and_oversized() {
        for pin in ["", "   ", "\t\n"] {
            assert!(matches!(
                normalize(pin),
                Err(Error::InvalidInput { field: "pin", .. })
            ));
        }
        assert!(normalize(&"1".repeat(PIN_TEXT_BYTES_MAX)).is_ok());
        assert!(normalize(&"1".repeat(PIN_TEXT_BYTES_MAX + 1)).is_err());
    }

    #[test]
    fn digit_table_is_sane() {
        for &(zero, script) in DIGIT_ZEROS {
            assert!(zero.is_numeric(), "{script}");
            let nine = char::from_u32(u32::from(zero) + 9).unwrap();
            assert!(nine.is_numeric(), "{script}");
        }
    }
}
