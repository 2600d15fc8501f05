//! Batch header parsing and validation over arbitrary bytes, as produce requests deliver them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ferrolog_storage::batch::fuzz_batches(data);
});
