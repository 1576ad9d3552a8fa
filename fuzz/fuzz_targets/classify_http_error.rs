//! Any status and body classify without panicking, and the message stays bounded.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let status = u16::from_le_bytes([data[0], data[1]]);
    let body = &data[2..];
    let err = switchyard_core::classify_http_error(status, body, std::str::from_utf8(body).ok());
    let _ = err.reason_code();
    let parsed = switchyard_core::ErrorBody::parse(body);
    let _ = switchyard_core::classify_stream_error(&parsed);
});
