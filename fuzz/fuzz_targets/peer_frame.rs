//! The host peer transport's frame reader (`cloister_host::peer::wire::read_frame`): frames
//! read from one byte stream until it ends or is refused, each checked into a `Frame`
//! (Hello fields, sequence numbers, sizes). Reading from a byte slice never waits, so one
//! poll with a no-op waker runs each read to completion without a runtime.

#![no_main]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use cloister_host::peer::wire::{FRAME_BYTES_MAX, HELLO_BYTES_MAX, read_frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|stream: &[u8]| {
    for bytes_max in [HELLO_BYTES_MAX, FRAME_BYTES_MAX] {
        let mut reader = stream;
        loop {
            let mut read = pin!(read_frame(&mut reader, bytes_max));
            let mut context = Context::from_waker(Waker::noop());
            match read.as_mut().poll(&mut context) {
                Poll::Ready(Ok((_, size))) => assert!(size <= 4 + bytes_max),
                Poll::Ready(Err(_)) => break,
                Poll::Pending => panic!("reading from a byte slice waited"),
            }
        }
    }
});
