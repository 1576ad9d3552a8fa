//! Model lifecycle over loopback: pulling with progress, loading a model, listing what is
//! loaded, and the server version, through the `Provider` methods.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use futures::StreamExt;
use switchyard_core::{ErrorKind, KeepAlive, Provider};
use switchyard_testkit::{TestUpstream, UpstreamConfig};

#[tokio::test]
async fn pull_streams_progress_until_success_and_the_model_is_listed() {
    let upstream = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let client = client(&upstream.base_url());
    let stream = guarded(client.pull("qwen3:0.6b")).await.unwrap();
    let reports: Vec<_> = guarded(stream.collect::<Vec<_>>()).await;
    let reports: Vec<_> = reports.into_iter().map(Result::unwrap).collect();
    assert_eq!(reports.first().unwrap().status, "pulling manifest");
    assert!(reports.last().unwrap().is_success());
    let sized: Vec<_> = reports
        .iter()
        .filter_map(|r| r.completed.zip(r.total))
        .collect();
    assert_eq!(sized.len(), 3, "{reports:?}");
    assert!(sized.windows(2).all(|w| w[0].0 <= w[1].0));
    assert_eq!(sized.last().map(|(c, t)| c == t), Some(true));
    let body = String::from_utf8_lossy(&upstream.requests().last().unwrap().body).into_owned();
    assert!(body.contains("\"model\":\"qwen3:0.6b\""), "{body}");
    assert!(
        client
            .tags()
            .await
            .unwrap()
            .iter()
            .any(|m| m.name == "qwen3:0.6b")
    );
    upstream.shutdown().await;
}

#[tokio::test]
async fn a_failed_pull_ends_with_the_servers_error() {
    let upstream = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let client = client(&upstream.base_url());
    let stream = guarded(client.pull("missing-model")).await.unwrap();
    let items = guarded(stream.collect::<Vec<_>>()).await;
    assert_eq!(items.len(), 2, "{items:?}");
    assert!(items[0].is_ok());
    let err = items[1]
        .clone()
        .expect_err("the error line ends the stream");
    assert!(err.message().contains("file does not exist"), "{err}");
    upstream.shutdown().await;
}

#[tokio::test]
async fn warm_loads_with_keep_alive_and_ps_lists_it() {
    let upstream = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let client = client(&upstream.base_url());
    assert!(client.loaded_models().await.unwrap().is_empty());
    let keep = KeepAlive::Seconds(-1.0);
    guarded(client.warm("test-model", Some(&keep)))
        .await
        .unwrap();
    let body: serde_json::Value =
        serde_json::from_slice(&upstream.requests().last().unwrap().body).unwrap();
    assert_eq!(body["keep_alive"], -1.0);
    assert_eq!(body["model"], "test-model");
    assert!(body.get("prompt").is_none(), "{body}");
    let loaded = client.loaded_models().await.unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].name, "test-model");
    assert!(loaded[0].expires_at.is_some());
    let err = guarded(client.warm("nope", None)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ModelNotFound);
    assert_eq!(
        client.server_version().await.unwrap().as_deref(),
        Some("0.12.6")
    );
    upstream.shutdown().await;
}
