//! Fuzz target `sse_framer`: see `switchyard_fuzz::sse_framer` for the properties checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| switchyard_fuzz::sse_framer(data));
