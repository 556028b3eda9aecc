//! Compiles `proto/*.proto` with protox (a pure-Rust protobuf compiler), so a fresh machine
//! needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [
        "client.proto",
        "attest.proto",
        "enclave.proto",
        "log.proto",
        "e2e.proto",
        "transport.proto",
        "door.proto",
    ];
    for file in &files {
        println!("cargo:rerun-if-changed={}", root.join(file).display());
    }
    let descriptors = protox::compile(files, [&root])?;
    let mut config = prost_build::Config::new();
    // Deterministic iteration (and so deterministic encoding) for every map field.
    config.btree_map(["."]);
    config.compile_fds(descriptors)?;
    Ok(())
}
