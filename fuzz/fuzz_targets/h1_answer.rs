//! Fuzz target `h1_answer`: see `switchyard_fuzz::h1_answer` for the properties checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| switchyard_fuzz::h1_answer(data));
