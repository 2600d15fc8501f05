//! Request frame decoding: any bytes after the length prefix must give a request or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ferrolog_broker::server::parse_frame(bytes::Bytes::copy_from_slice(data));
});
