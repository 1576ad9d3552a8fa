//! Examples of embedding Switchyard's crates, one program per crate; run them with
//! `cargo run -p switchyard-examples --example NAME`. This library is empty.
