//! Fuzz target `generate_stream`: see `switchyard_fuzz::generate_stream` for the properties checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| switchyard_fuzz::generate_stream(data));
