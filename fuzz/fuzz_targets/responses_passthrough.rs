//! Fuzz target `responses_passthrough`: see `switchyard_fuzz::responses_passthrough` for the properties checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| switchyard_fuzz::responses_passthrough(data));
