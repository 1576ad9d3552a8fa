//! Fuzz target `embed_generate_codecs`: see `switchyard_fuzz::embed_generate_codecs` for the properties checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| switchyard_fuzz::embed_generate_codecs(data));
