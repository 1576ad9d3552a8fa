//! Fuzz target `ollama_stream`: see `switchyard_fuzz::ollama_stream` for the properties checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| switchyard_fuzz::ollama_stream(data));
