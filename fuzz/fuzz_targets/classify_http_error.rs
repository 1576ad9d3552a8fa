//! Fuzz target `classify_http_error`: see `switchyard_fuzz::classify_http_error` for the properties checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| switchyard_fuzz::classify_http_error(data));
