//! Whole streamed chats through `OpenAiClient` against the testkit's fast upstream on
//! loopback: request encoding, HTTP, SSE decoding and the timed stream, per request.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{Criterion, criterion_group, criterion_main};
use futures::StreamExt;
use switchyard_core::{ChatRequest, Message, Provider};
use switchyard_openai::{OpenAiClient, OpenAiConfig};
use switchyard_testkit::{TestUpstream, UpstreamConfig};

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let upstream = runtime
        .block_on(TestUpstream::start(UpstreamConfig::bench()))
        .unwrap();
    let client = OpenAiClient::new(OpenAiConfig::new(upstream.openai_base_url())).unwrap();
    let request = ChatRequest::new("bench", vec![Message::user("hi")]);
    c.bench_function("openai_streamed_chat_loopback", |b| {
        b.to_async(&runtime).iter(|| async {
            let mut stream = client.chat(&request).await.unwrap();
            let mut events = 0usize;
            while let Some(event) = stream.next().await {
                event.unwrap();
                events += 1;
            }
            events
        });
    });
    runtime.block_on(upstream.shutdown());
}

criterion_group!(benches, bench);
criterion_main!(benches);
