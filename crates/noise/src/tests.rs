//! The KEM against an independent implementation (PQClean's C code, behind snow's own
//! resolver), the exact handshake sizes, and replay from a seed.

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use snow::params::KemChoice;
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Kem, Random};

use crate::{
    ClientHandshake, KEM_CIPHERTEXT_BYTES, KEM_PUBLIC_KEY_BYTES, KEM_SHARED_SECRET_BYTES,
    MlKem1024, NOISE_MESSAGE_BYTES_MAX, Resolver,
};

fn ours(seed: [u8; 32]) -> MlKem1024 {
    MlKem1024::new(ChaCha20Rng::from_seed(seed))
}

/// PQClean's `Kyber1024`, as snow 0.10 ships it (pqcrypto-kyber 0.8: the pq-crystals
/// "standard" branch, whose encapsulation and decapsulation are ML-KEM's; OS randomness:
/// tests only).
fn pqclean() -> Box<dyn Kem> {
    DefaultResolver
        .resolve_kem(&KemChoice::Kyber1024)
        .expect("snow's pqclean_kyber1024 feature is on for tests")
}

fn snow_random() -> Box<dyn Random> {
    DefaultResolver.resolve_rng().unwrap()
}

#[test]
fn sizes_match_snows_kyber1024() {
    let mut kem = ours([1; 32]);
    let reference = pqclean();
    assert_eq!(kem.name(), reference.name());
    assert_eq!(
        (kem.pub_len(), kem.ciphertext_len(), kem.shared_secret_len()),
        (1568, 1568, 32)
    );
    assert_eq!(
        (
            reference.pub_len(),
            reference.ciphertext_len(),
            reference.shared_secret_len()
        ),
        (1568, 1568, 32)
    );
    kem.generate(&mut *snow_random());
    assert_eq!(kem.pubkey().len(), KEM_PUBLIC_KEY_BYTES);
}

// Our encapsulation to a PQClean key, decapsulated by PQClean: the enclave's side of NKhfs.
#[test]
fn pqclean_decapsulates_what_we_encapsulate() {
    let mut reference = pqclean();
    reference.generate(&mut *snow_random());
    let kem = ours([2; 32]);
    let mut ciphertext = [0u8; KEM_CIPHERTEXT_BYTES];
    let mut ours_secret = [0u8; KEM_SHARED_SECRET_BYTES];
    let lengths = kem
        .encapsulate(reference.pubkey(), &mut ours_secret, &mut ciphertext)
        .unwrap();
    assert_eq!(lengths, (32, 1568));
    let mut theirs_secret = [0u8; KEM_SHARED_SECRET_BYTES];
    reference
        .decapsulate(&ciphertext, &mut theirs_secret)
        .unwrap();
    assert_eq!(ours_secret, theirs_secret);
    assert_ne!(ours_secret, [0; 32]);
}

// PQClean's encapsulation to our key, decapsulated by us: the SDK's side of NKhfs.
#[test]
fn we_decapsulate_what_pqclean_encapsulates() {
    let mut kem = ours([3; 32]);
    kem.generate(&mut *snow_random());
    let reference = pqclean();
    let mut ciphertext = [0u8; KEM_CIPHERTEXT_BYTES];
    let mut theirs_secret = [0u8; KEM_SHARED_SECRET_BYTES];
    let _ = reference
        .encapsulate(kem.pubkey(), &mut theirs_secret, &mut ciphertext)
        .unwrap();
    let mut ours_secret = [0u8; KEM_SHARED_SECRET_BYTES];
    assert_eq!(kem.decapsulate(&ciphertext, &mut ours_secret).unwrap(), 32);
    assert_eq!(ours_secret, theirs_secret);
    // A ciphertext changed in one byte yields another secret (implicit rejection), not ours.
    ciphertext[100] ^= 1;
    let mut rejected = [0u8; KEM_SHARED_SECRET_BYTES];
    kem.decapsulate(&ciphertext, &mut rejected).unwrap();
    assert_ne!(rejected, theirs_secret);
}

#[test]
fn one_seed_gives_one_transcript() {
    let mut reference = pqclean();
    reference.generate(&mut *snow_random());
    let encapsulate = |seed: [u8; 32]| {
        let kem = ours(seed);
        let mut ciphertext = vec![0u8; KEM_CIPHERTEXT_BYTES];
        let mut secret = [0u8; 32];
        let _ = kem
            .encapsulate(reference.pubkey(), &mut secret, &mut ciphertext)
            .unwrap();
        (ciphertext, secret)
    };
    assert_eq!(encapsulate([4; 32]), encapsulate([4; 32]));
    assert_ne!(encapsulate([4; 32]), encapsulate([5; 32]));
    // Two encapsulations by one KEM draw fresh randomness.
    let kem = ours([4; 32]);
    let mut first = [0u8; KEM_CIPHERTEXT_BYTES];
    let mut second = [0u8; KEM_CIPHERTEXT_BYTES];
    let mut secret = [0u8; 32];
    let _ = kem
        .encapsulate(reference.pubkey(), &mut secret, &mut first)
        .unwrap();
    let _ = kem
        .encapsulate(reference.pubkey(), &mut secret, &mut second)
        .unwrap();
    assert_ne!(first, second);
    // Key pairs replay too (snow's generator is ignored: the stream is the only source).
    let public = |seed| {
        let mut kem = ours(seed);
        kem.generate(&mut *snow_random());
        kem.pubkey().to_vec()
    };
    assert_eq!(public([6; 32]), public([6; 32]));
    assert_ne!(public([6; 32]), public([7; 32]));
}

#[test]
fn wrong_lengths_and_missing_keys_are_errors() {
    let mut reference = pqclean();
    reference.generate(&mut *snow_random());
    let kem = ours([8; 32]);
    let mut ciphertext = [0u8; KEM_CIPHERTEXT_BYTES];
    let mut secret = [0u8; 32];
    let short_key = &reference.pubkey()[..KEM_PUBLIC_KEY_BYTES - 1];
    assert!(
        kem.encapsulate(short_key, &mut secret, &mut ciphertext)
            .is_err()
    );
    let long_key = [reference.pubkey(), &[0]].concat();
    assert!(
        kem.encapsulate(&long_key, &mut secret, &mut ciphertext)
            .is_err()
    );
    assert!(
        kem.encapsulate(reference.pubkey(), &mut secret, &mut ciphertext[..100])
            .is_err()
    );
    // No key pair yet: nothing to decapsulate with.
    assert!(kem.decapsulate(&ciphertext, &mut secret).is_err());
    let mut kem = ours([8; 32]);
    kem.generate(&mut *snow_random());
    assert!(kem.decapsulate(&ciphertext[..1567], &mut secret).is_err());
    assert!(kem.decapsulate(&ciphertext, &mut secret[..31]).is_err());
    assert!(format!("{kem:?}").contains("<redacted>"));
    // FIPS 203's input check: a key whose 12-bit coefficients exceed q is refused.
    let unreduced = [0xff; KEM_PUBLIC_KEY_BYTES];
    assert!(
        kem.encapsulate(&unreduced, &mut secret, &mut ciphertext)
            .is_err()
    );
}

/// Run one handshake of `handshake` (initiator, responder built by the caller); return the
/// two message lengths after a transport message crossed each way.
fn run(mut initiator: snow::HandshakeState, mut responder: snow::HandshakeState) -> (usize, usize) {
    let mut message = vec![0u8; NOISE_MESSAGE_BYTES_MAX];
    let mut payload = vec![0u8; NOISE_MESSAGE_BYTES_MAX];
    let first = initiator.write_message(&[], &mut message).unwrap();
    assert_eq!(
        responder
            .read_message(&message[..first], &mut payload)
            .unwrap(),
        0
    );
    let second = responder.write_message(&[], &mut message).unwrap();
    assert_eq!(
        initiator
            .read_message(&message[..second], &mut payload)
            .unwrap(),
        0
    );
    assert_eq!(
        initiator.get_handshake_hash(),
        responder.get_handshake_hash()
    );
    let mut initiator = initiator.into_transport_mode().unwrap();
    let mut responder = responder.into_transport_mode().unwrap();
    let length = initiator.write_message(b"request", &mut message).unwrap();
    let read = responder
        .read_message(&message[..length], &mut payload)
        .unwrap();
    assert_eq!(&payload[..read], b"request");
    let length = responder.write_message(b"response", &mut message).unwrap();
    let read = initiator
        .read_message(&message[..length], &mut payload)
        .unwrap();
    assert_eq!(&payload[..read], b"response");
    (first, second)
}

// SVR2 client protocol: Noise_NKhfs_25519+Kyber1024_ChaChaPoly_SHA256 between this crate's
// KEM and PQClean's, in both roles, with the sizes ClientHandshake promises.
#[test]
fn nkhfs_interoperates_with_pqclean_in_both_roles() {
    let handshake = ClientHandshake::PostQuantum;
    let keys = snow::Builder::new(handshake.params())
        .generate_keypair()
        .unwrap();
    let pqclean_side = || snow::Builder::new(handshake.params());
    let our_side = |seed| {
        snow::Builder::with_resolver(handshake.params(), Box::new(Resolver::with_kem_seed(seed)))
    };
    // The enclave's role is ours: PQClean initiator, our responder.
    let initiator = pqclean_side()
        .remote_public_key(&keys.public)
        .unwrap()
        .build_initiator()
        .unwrap();
    let responder = our_side([9; 32])
        .local_private_key(&keys.private)
        .unwrap()
        .build_responder()
        .unwrap();
    assert_eq!(
        run(initiator, responder),
        (handshake.message_1_bytes(), handshake.message_2_bytes())
    );
    // The SDK's role is ours: our initiator, PQClean responder.
    let initiator = our_side([10; 32])
        .remote_public_key(&keys.public)
        .unwrap()
        .build_initiator()
        .unwrap();
    let responder = pqclean_side()
        .local_private_key(&keys.private)
        .unwrap()
        .build_responder()
        .unwrap();
    assert_eq!(run(initiator, responder), (1632, 1632));
}

#[test]
fn nk_sizes_match_a_real_handshake() {
    let handshake = ClientHandshake::for_group(false);
    assert_eq!(handshake.pattern(), "Noise_NK_25519_ChaChaPoly_SHA256");
    let keys = snow::Builder::new(handshake.params())
        .generate_keypair()
        .unwrap();
    let initiator = snow::Builder::new(handshake.params())
        .remote_public_key(&keys.public)
        .unwrap()
        .build_initiator()
        .unwrap();
    let responder = snow::Builder::new(handshake.params())
        .local_private_key(&keys.private)
        .unwrap()
        .build_responder()
        .unwrap();
    assert_eq!(run(initiator, responder), (48, 48));
    assert_eq!(
        (handshake.message_1_bytes(), handshake.message_2_bytes()),
        (48, 48)
    );
    assert_eq!(ClientHandshake::HANDSHAKE_MESSAGE_BYTES_MAX, 1632);
}
