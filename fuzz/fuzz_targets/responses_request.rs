//! Fuzz target `responses_request`: see `switchyard_fuzz::responses_request` for the properties checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| switchyard_fuzz::responses_request(data));
