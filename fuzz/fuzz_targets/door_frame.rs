//! The out-of-process door's frame codec (`cloister_host::door::frame`): length-prefixed
//! frames read from one byte stream until it ends or fails, each decoded as the enclave
//! side decodes a `HostFrame` and as the host side decodes an `EnclaveFrame`.

#![no_main]

use std::io::Cursor;

use cloister_host::door::frame::{ENCLAVE_FRAME_BYTES_MAX, HOST_FRAME_BYTES_MAX, read_frame};
use cloister_proto::door::{EnclaveFrame, HostFrame};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|stream: &[u8]| {
    for bytes_max in [HOST_FRAME_BYTES_MAX, ENCLAVE_FRAME_BYTES_MAX] {
        let mut reader = Cursor::new(stream);
        while let Ok(Some(body)) = read_frame(&mut reader, bytes_max) {
            assert!(body.len() <= bytes_max, "a frame over its bound was read");
            let _ = HostFrame::decode(body.as_slice());
            let _ = EnclaveFrame::decode(body.as_slice());
        }
    }
});
