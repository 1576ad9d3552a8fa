//! Replays every file of the checked-in fuzz corpus (`fuzz/corpus/<target>/*`) through the
//! same harness functions the cargo-fuzz targets run, on every `cargo test`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

#[allow(unreachable_pub)]
#[path = "../../../fuzz/src/lib.rs"]
mod harness;

fn target(name: &str) -> Option<fn(&[u8])> {
    Some(match name {
        "classify_http_error" => harness::classify_http_error,
        "ollama_stream" => harness::ollama_stream,
        "openai_stream" => harness::openai_stream,
        "sse_framer" => harness::sse_framer,
        "ndjson_framer" => harness::ndjson_framer,
        "ollama_request" => harness::ollama_request,
        "openai_request" => harness::openai_request,
        "text_recovery" => harness::text_recovery,
        "anthropic_stream" => harness::anthropic_stream,
        "anthropic_request" => harness::anthropic_request,
        "responses_request" => harness::responses_request,
        "responses_stream" => harness::responses_stream,
        "responses_passthrough" => harness::responses_passthrough,
        "generate_stream" => harness::generate_stream,
        "embed_generate_codecs" => harness::embed_generate_codecs,
        "h1_answer" => harness::h1_answer,
        _ => return None,
    })
}

#[test]
fn every_corpus_file_replays_without_panic() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let mut replayed = 0;
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|d| d.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let run = target(&name)
            .unwrap_or_else(|| panic!("corpus {name} has no harness function in fuzz/src/lib.rs"));
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|f| f.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "corpus {name} is empty");
        for file in files {
            let data = std::fs::read(&file).unwrap();
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(outcome.is_ok(), "{} panicked", file.display());
            replayed += 1;
        }
    }
    assert!(replayed >= 8, "replayed only {replayed} files");
}

#[test]
fn every_fuzz_target_has_a_corpus() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    for entry in std::fs::read_dir(root.join("fuzz_targets")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        assert!(
            target(&name).is_some(),
            "fuzz target {name} is not replayed"
        );
        assert!(
            root.join("corpus").join(&name).is_dir(),
            "fuzz target {name} has no corpus"
        );
    }
}

#[test]
fn the_harness_catches_a_broken_property() {
    // The split helper covers the input exactly, so a split-dependent decoder would differ.
    let data: Vec<u8> = (0..=255).collect();
    for seed in [0u8, 1, 77, 255] {
        let parts = harness::chunks(&data, seed);
        assert!(parts.len() > 1);
        assert_eq!(parts.concat(), data);
    }
}
