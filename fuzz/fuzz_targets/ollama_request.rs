//! Fuzz target `ollama_request`: see `switchyard_fuzz::ollama_request` for the properties checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| switchyard_fuzz::ollama_request(data));
