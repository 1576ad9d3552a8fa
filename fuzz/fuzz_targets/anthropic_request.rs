//! Fuzz target `anthropic_request`: see `switchyard_fuzz::anthropic_request` for the properties checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| switchyard_fuzz::anthropic_request(data));
