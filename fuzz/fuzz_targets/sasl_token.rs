//! SASL tokens from a client: PLAIN and both SCRAM client messages must give an answer or a
//! failure, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ferrolog_broker::security::sasl::fuzz_tokens(data);
});
