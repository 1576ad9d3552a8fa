//! Fuzz target `text_recovery`: see `switchyard_fuzz::text_recovery` for the properties checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| switchyard_fuzz::text_recovery(data));
