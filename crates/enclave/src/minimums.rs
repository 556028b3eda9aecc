//! SVR2's minimums: named limits on what replicas attest, which can only grow.
//!
//! ```text
//!  admin update-minimums ──▶ leader: each value ≥ the current one? own and every connected
//!                                    peer's attested values meet the result?
//!                            ──▶ log entry ──commit──▶ every replica: merge (max per name)
//!                                 ├─▶ peers that no longer meet them are disconnected
//!                                 └─▶ fresh evidence binds the new minimums (clients, peers)
//! ```
//!
//! A limit is a name (`"sim.security_version"`, `"sgx.isv_svn"`, ...) and a value compared as
//! an unsigned big-endian integer of up to [`VALUE_BYTES_MAX`] bytes. A replica meets the
//! minimums when it attests every named value at or above the limit; a name it does not
//! attest at all fails. Merging keeps the larger value per name, so replicas that apply
//! updates agree whatever the order, and no entry can lower a limit.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use cloister_proto::attest::MinimumLimits;

use crate::Error;

/// Limits at most in one set.
pub const LIMITS_MAX: usize = 32;
/// Longest limit name.
pub const NAME_BYTES_MAX: usize = 64;
/// Longest limit value.
pub const VALUE_BYTES_MAX: usize = 32;

/// A checked set of limits: names well formed, values within bounds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Minimums {
    limits: BTreeMap<String, Vec<u8>>,
}

impl Minimums {
    /// No limits: a group that never set any, or a replica outside any group.
    pub const NONE: Minimums = Minimums {
        limits: BTreeMap::new(),
    };

    /// Check limits from the wire (a host request, a log entry, a peer's state push).
    pub fn from_proto(proto: &MinimumLimits) -> Result<Self, Error> {
        if proto.limits.len() > LIMITS_MAX {
            return Err(Error::InvalidArgument(format!(
                "{} minimums; at most {LIMITS_MAX}",
                proto.limits.len()
            )));
        }
        let mut limits = BTreeMap::new();
        for (name, value) in &proto.limits {
            check_name(name)?;
            if value.is_empty() || value.len() > VALUE_BYTES_MAX {
                return Err(Error::InvalidArgument(format!(
                    "minimum {name:?} has a {} byte value; it must be 1 to {VALUE_BYTES_MAX}",
                    value.len()
                )));
            }
            limits.insert(name.clone(), value.clone());
        }
        Ok(Self { limits })
    }

    /// The wire form, bound into evidence and carried in log entries.
    pub fn to_proto(&self) -> MinimumLimits {
        MinimumLimits {
            limits: self.limits.clone().into_iter().collect(),
        }
    }

    /// True when no limit is set.
    pub fn is_empty(&self) -> bool {
        self.limits.is_empty()
    }

    /// The result of applying `update`: every limit the larger of the two. Fails, naming the
    /// limit, if `update` would lower one or the result would hold too many.
    pub fn raised_by(&self, update: &Minimums) -> Result<Minimums, Error> {
        for (name, value) in &update.limits {
            if let Some(current) = self.limits.get(name)
                && compare(value, current) == Ordering::Less
            {
                return Err(Error::InvalidArgument(format!(
                    "minimum {name:?} can only grow: {} is below the current {}",
                    hex::encode(value),
                    hex::encode(current)
                )));
            }
        }
        let merged = self.merged(update);
        if merged.limits.len() > LIMITS_MAX {
            return Err(Error::InvalidArgument(format!(
                "the update would make {} minimums; at most {LIMITS_MAX}",
                merged.limits.len()
            )));
        }
        Ok(merged)
    }

    /// The larger value per name (what applying a committed update does: it never fails, so
    /// every replica ends in the same state).
    pub fn merged(&self, update: &Minimums) -> Minimums {
        let mut limits = self.limits.clone();
        for (name, value) in &update.limits {
            match limits.get(name) {
                Some(current) if compare(value, current) != Ordering::Greater => {}
                _ => {
                    limits.insert(name.clone(), value.clone());
                }
            }
        }
        Minimums { limits }
    }

    /// Whether `attested` (names and values a replica's verified evidence shows) meets every
    /// limit; the error names the first one missed.
    pub fn check(&self, attested: &BTreeMap<String, Vec<u8>>) -> Result<(), String> {
        for (name, minimum) in &self.limits {
            match attested.get(name) {
                None => return Err(format!("it does not attest {name:?}, which has a minimum")),
                Some(value) if compare(value, minimum) == Ordering::Less => {
                    return Err(format!(
                        "it attests {name:?} = {}, below the minimum {}",
                        hex::encode(value),
                        hex::encode(minimum)
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

/// Names are lowercase ASCII letters, digits, `.`, `_` and `-`, 1 to [`NAME_BYTES_MAX`] bytes.
fn check_name(name: &str) -> Result<(), Error> {
    let well_formed = !name.is_empty()
        && name.len() <= NAME_BYTES_MAX
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if well_formed {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "minimum name {:?} is not 1 to {NAME_BYTES_MAX} of [a-z0-9._-]",
            name.chars().take(NAME_BYTES_MAX).collect::<String>()
        )))
    }
}

/// Compare two unsigned big-endian integers of any lengths.
fn compare(a: &[u8], b: &[u8]) -> Ordering {
    let a = strip_leading_zeros(a);
    let b = strip_leading_zeros(b);
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn strip_leading_zeros(value: &[u8]) -> &[u8] {
    let first = value.iter().position(|b| *b != 0).unwrap_or(value.len());
    &value[first..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pairs: &[(&str, &[u8])]) -> Minimums {
        Minimums::from_proto(&MinimumLimits {
            limits: pairs
                .iter()
                .map(|(name, value)| ((*name).to_owned(), value.to_vec()))
                .collect(),
        })
        .unwrap()
    }

    fn values(pairs: &[(&str, &[u8])]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.to_vec()))
            .collect()
    }

    #[test]
    fn values_compare_as_big_endian_integers_of_any_length() {
        assert_eq!(compare(&[0, 0, 5], &[5]), Ordering::Equal);
        assert_eq!(compare(&[1, 0], &[0xff]), Ordering::Greater);
        assert_eq!(compare(&[0], &[]), Ordering::Equal);
        assert_eq!(compare(&[2, 1], &[2, 2]), Ordering::Less);
    }

    #[test]
    fn limits_only_grow() {
        let current = set(&[("sim.security_version", &[3]), ("a", &[1])]);
        let raised = current
            .raised_by(&set(&[("sim.security_version", &[4]), ("b", &[9])]))
            .unwrap();
        assert_eq!(
            raised,
            set(&[("sim.security_version", &[4]), ("a", &[1]), ("b", &[9])])
        );
        // Equal is fine; lower names the limit and changes nothing.
        assert!(current.raised_by(&set(&[("a", &[0, 1])])).is_ok());
        let error = current
            .raised_by(&set(&[("sim.security_version", &[2])]))
            .unwrap_err();
        assert!(error.to_string().contains("can only grow"), "{error}");
        assert_eq!(current, set(&[("sim.security_version", &[3]), ("a", &[1])]));
        // Applying merges whatever the order, so replicas agree.
        let (x, y) = (set(&[("a", &[5])]), set(&[("a", &[2]), ("b", &[1])]));
        assert_eq!(current.merged(&x).merged(&y), current.merged(&y).merged(&x));
    }

    #[test]
    fn a_replica_meets_the_minimums_only_by_attesting_each_value() {
        let minimums = set(&[("sim.security_version", &[3])]);
        assert!(
            minimums
                .check(&values(&[("sim.security_version", &[3])]))
                .is_ok()
        );
        assert!(
            minimums
                .check(&values(&[("sim.security_version", &[0, 7])]))
                .is_ok()
        );
        let low = minimums
            .check(&values(&[("sim.security_version", &[2])]))
            .unwrap_err();
        assert!(low.contains("below the minimum"), "{low}");
        let missing = minimums.check(&values(&[("other", &[9])])).unwrap_err();
        assert!(missing.contains("does not attest"), "{missing}");
        assert!(Minimums::default().check(&BTreeMap::new()).is_ok());
    }

    #[test]
    fn malformed_limits_are_refused() {
        let bad = |name: &str, value: Vec<u8>| {
            Minimums::from_proto(&MinimumLimits {
                limits: [(name.to_owned(), value)].into_iter().collect(),
            })
            .unwrap_err()
            .to_string()
        };
        assert!(bad("", vec![1]).contains("not 1 to"));
        assert!(bad("Upper", vec![1]).contains("not 1 to"));
        assert!(bad(&"a".repeat(NAME_BYTES_MAX + 1), vec![1]).contains("not 1 to"));
        assert!(bad("a", vec![]).contains("byte value"));
        assert!(bad("a", vec![1; VALUE_BYTES_MAX + 1]).contains("byte value"));
        let too_many = MinimumLimits {
            limits: (0..=LIMITS_MAX)
                .map(|i| (format!("k{i}"), vec![1]))
                .collect(),
        };
        assert!(Minimums::from_proto(&too_many).is_err());
        let full = Minimums::from_proto(&MinimumLimits {
            limits: (0..LIMITS_MAX)
                .map(|i| (format!("k{i}"), vec![1]))
                .collect(),
        })
        .unwrap();
        assert!(full.raised_by(&set(&[("one-more", &[1])])).is_err());
    }
}
