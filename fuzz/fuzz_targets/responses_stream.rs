//! Fuzz target `responses_stream`: see `switchyard_fuzz::responses_stream` for the properties checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| switchyard_fuzz::responses_stream(data));
