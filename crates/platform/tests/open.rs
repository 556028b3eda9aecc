//! `open`, the entry point a node calls: on this machine (no TEE) every backend refuses to
//! start, and says which device it did not find where.

// Test code: a failed unwrap is a failed test. clippy.toml allows unwrap only inside
// #[test] functions, and these helpers sit outside them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use cloister_platform::{Backend, PlatformError, PlatformSettings, open};

fn refusal(backend: Backend, settings: &PlatformSettings) -> PlatformError {
    match open(backend, settings) {
        Ok(_) => panic!("{backend} opened without its device"),
        Err(error) => error,
    }
}

#[test]
fn every_backend_refuses_to_start_without_its_device() {
    let dir = support::TempDir::new("open");
    let device = dir.join("absent");
    let collateral = dir.file("collateral.json", b"{}");
    let settings = PlatformSettings {
        device_root: Some(device.clone()),
        endorsements: Some(collateral),
    };
    let shown = device.display();
    let expected = [
        (
            Backend::GramineSgx,
            format!("Gramine attestation ({shown}) not found (not running under Gramine?): "),
        ),
        (Backend::Tdx, format!("configfs-tsm not found at {shown}: ")),
        (
            Backend::SevSnp,
            format!("configfs-tsm not found at {shown}: "),
        ),
        (
            Backend::Nitro,
            format!("Nitro Secure Module not found at {shown}: "),
        ),
    ];
    for (backend, prefix) in expected {
        let error = refusal(backend, &settings);
        assert!(error.0.starts_with(&prefix), "{backend}: {error}");
        assert!(
            error.0.contains("No such file or directory"),
            "{backend}: {error}"
        );
    }
}

#[test]
fn the_default_devices_are_the_real_interfaces() {
    assert_eq!(
        Backend::GramineSgx.default_device_root(),
        "/dev/attestation"
    );
    assert_eq!(
        Backend::Tdx.default_device_root(),
        "/sys/kernel/config/tsm/report"
    );
    assert_eq!(
        Backend::SevSnp.default_device_root(),
        "/sys/kernel/config/tsm/report"
    );
    assert_eq!(Backend::Nitro.default_device_root(), "/dev/nsm");
    // This machine is no TEE: the defaults are absent, and open says so.
    if !std::path::Path::new("/dev/nsm").exists() {
        let error = refusal(Backend::Nitro, &PlatformSettings::default());
        assert!(
            error
                .0
                .starts_with("Nitro Secure Module not found at /dev/nsm: "),
            "{error}"
        );
    }
}
