//! `switchyard demo`: the whole gateway against simulated models, in a few seconds.
//!
//! Starts two scripted upstreams from `switchyard-testkit` in-process (a local Ollama
//! model, and a LAN box that refuses connections), the gateway on `127.0.0.1:0` over a
//! config written for them, then talks to the gateway's HTTP API like any client would:
//! lists models, chats on the OpenAI API, streams on the Ollama API, does a tool-call round
//! trip and shows a fallback. Each step prints which target served it, why, the time to
//! first token and the gateway's own overhead from the response headers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use switchyard_router::MemoryLedger;
use switchyard_testkit::{
    Delays, Fault, ModelSpec, Script, ScriptedCall, TestUpstream, UpstreamConfig,
};
use tokio::net::TcpListener;

use crate::config::{self, Config};
use crate::wiring;

/// The simulated local model.
const LOCAL_MODEL: &str = "qwen2.5:7b-instruct";
/// The model on the LAN box that refuses.
const LAN_MODEL: &str = "qwen2.5:32b-instruct";
/// Bound on every demo request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the demo failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DemoError {
    /// A simulated upstream or the gateway could not start.
    #[error("start-up failed: {0}")]
    Startup(String),
    /// A request through the gateway failed.
    #[error("{step}: {reason}")]
    Step {
        /// The step.
        step: &'static str,
        /// What went wrong.
        reason: String,
    },
}

fn step_err(step: &'static str) -> impl Fn(String) -> DemoError {
    move |reason| DemoError::Step { step, reason }
}

/// Runs the demo; exit code 0 when every step worked.
pub(crate) async fn run() -> u8 {
    match demo().await {
        Ok(()) => 0,
        Err(e) => {
            errln!("switchyard demo failed: {e}");
            1
        }
    }
}

fn local_script() -> Script {
    Script::text([
        "Hello",
        "! I am",
        " a simulated",
        " local model",
        " behind Switchyard.",
    ])
    .with_delays(Delays {
        before_headers: Duration::ZERO,
        before_first_chunk: Duration::from_millis(120),
        between_chunks: Duration::from_millis(25),
    })
    .with_usage(18, 12)
}

async fn demo() -> Result<(), DemoError> {
    let started = Instant::now();
    let local = TestUpstream::start(
        UpstreamConfig::empty()
            .model(
                ModelSpec::new(LOCAL_MODEL)
                    .family("qwen2")
                    .parameter_size("7.6B")
                    .context_length(32768),
            )
            .script(LOCAL_MODEL, local_script())
            .loaded(LOCAL_MODEL),
    )
    .await
    .map_err(|e| DemoError::Startup(format!("simulated local model: {e}")))?;
    let lan = TestUpstream::start(UpstreamConfig::empty().model(ModelSpec::new(LAN_MODEL)))
        .await
        .map_err(|e| DemoError::Startup(format!("simulated LAN box: {e}")))?;
    lan.set_fault(Some(Fault::Refuse));

    let text = format!(
        r#"{{
  server: {{ listen: "127.0.0.1:0" }},
  providers: {{
    local: {{ api: "ollama", base_url: "{local}", locality: "local",
             timeouts: {{ connect_ms: 1000, first_token_ms: 5000, idle_ms: 5000 }} }},
    lan: {{ api: "openai", base_url: "{lan}", locality: "lan", discover: false,
           models: [ {{ id: "{LAN_MODEL}", context_window: 32768 }} ],
           timeouts: {{ connect_ms: 500, first_token_ms: 5000 }} }},
  }},
  routes: {{
    chat: {{ targets: ["local/{LOCAL_MODEL}"] }},
    big: {{ targets: ["lan/{LAN_MODEL}", "local/{LOCAL_MODEL}"] }},
  }},
  retry: {{ max_retries: 0 }},
}}"#,
        local = local.base_url(),
        lan = lan.openai_base_url(),
    );
    let file = config::parse_str(&text, &|_| None)
        .map_err(|e| DemoError::Startup(format!("demo config: {e}")))?;
    let config = Config {
        file,
        path: None,
        checksum: Some(config::checksum(text.as_bytes())),
    };
    let (stack, _providers) = wiring::new_stack(&config, Arc::new(MemoryLedger::new()), None)
        .map_err(|e| DemoError::Startup(e.to_string()))?;
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(|e| DemoError::Startup(format!("gateway listener: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| DemoError::Startup(e.to_string()))?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let gateway = stack.gateway.clone();
    let server = tokio::spawn(async move {
        let _ = gateway
            .serve(listener, async move {
                let _ = stop_rx.await;
            })
            .await;
    });

    let base = format!("http://{addr}");
    outln!("Switchyard demo: the gateway at {base}, in front of two simulated upstreams:");
    outln!(
        "  local  Ollama on this host, model {LOCAL_MODEL}   ({})",
        local.base_url()
    );
    outln!(
        "  lan    an OpenAI-compatible box that refuses connections ({})",
        lan.base_url()
    );
    outln!(
        "  routes: chat -> local/{LOCAL_MODEL};  big -> lan/{LAN_MODEL}, then local/{LOCAL_MODEL}"
    );

    // Loopback only: never through an environment proxy (HTTP_PROXY).
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .tcp_nodelay(true)
        .build()
        .map_err(|e| DemoError::Startup(e.to_string()))?;
    let result = steps(&http, &base, &local).await;

    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
    local.shutdown().await;
    lan.shutdown().await;
    result?;
    outln!();
    outln!(
        "Done in {:.1} s. Run it for real: `switchyard serve` (Ollama at 127.0.0.1:11434), \
         then point any OpenAI or Ollama client at http://127.0.0.1:4141.",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// What the gateway said about how it served a request.
fn served(headers: &HeaderMap) -> String {
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("?")
            .to_owned()
    };
    format!(
        "served by {} ({}), gateway overhead {} ms",
        h("x-switchyard-target"),
        h("x-switchyard-route-reason"),
        h("x-switchyard-overhead-ms")
    )
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

async fn post_json(
    http: &reqwest::Client,
    url: &str,
    body: &Value,
    step: &'static str,
) -> Result<(HeaderMap, Value, Duration), DemoError> {
    let t0 = Instant::now();
    let resp = http
        .post(url)
        .json(body)
        .send()
        .await
        .map_err(|e| step_err(step)(e.to_string()))?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let value: Value = resp
        .json()
        .await
        .map_err(|e| step_err(step)(e.to_string()))?;
    if !status.is_success() {
        return Err(step_err(step)(format!("HTTP {status}: {value}")));
    }
    Ok((headers, value, t0.elapsed()))
}

async fn steps(http: &reqwest::Client, base: &str, local: &TestUpstream) -> Result<(), DemoError> {
    list_models(http, base).await?;
    chat_openai(http, base).await?;
    stream_ollama(http, base).await?;
    tool_round_trip(http, base, local).await?;
    fallback(http, base).await
}

/// Asks `model` "Hello?" on the OpenAI API: the headers, the body and the time taken.
async fn ask(
    http: &reqwest::Client,
    base: &str,
    model: &str,
    step: &'static str,
) -> Result<(HeaderMap, Value, Duration), DemoError> {
    post_json(
        http,
        &format!("{base}/v1/chat/completions"),
        &json!({"model": model, "messages": [{"role": "user", "content": "Hello?"}]}),
        step,
    )
    .await
}

/// Step 1: the models the gateway lists.
async fn list_models(http: &reqwest::Client, base: &str) -> Result<(), DemoError> {
    // 1. Models.
    outln!();
    outln!("1. List models  (GET /v1/models)");
    let models: Value = http
        .get(format!("{base}/v1/models"))
        .send()
        .await
        .map_err(|e| step_err("models")(e.to_string()))?
        .json()
        .await
        .map_err(|e| step_err("models")(e.to_string()))?;
    let ids: Vec<&str> = models["data"]
        .as_array()
        .map(|a| a.iter().filter_map(|m| m["id"].as_str()).collect())
        .unwrap_or_default();
    if ids.is_empty() {
        return Err(step_err("models")(format!("no models listed: {models}")));
    }
    outln!("   {}", ids.join(", "));
    Ok(())
}

/// Step 2: a chat on the OpenAI API.
async fn chat_openai(http: &reqwest::Client, base: &str) -> Result<(), DemoError> {
    // 2. Chat on the OpenAI API.
    outln!();
    outln!("2. Chat on the OpenAI API  (POST /v1/chat/completions, model \"chat\")");
    let (headers, body, took) = ask(http, base, "chat", "chat").await?;
    let answer = body["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or("");
    if answer.is_empty() {
        return Err(step_err("chat")(format!("no answer: {body}")));
    }
    outln!("   answer: {answer:?}");
    outln!("   {}, whole answer in {}", served(&headers), ms(took));
    Ok(())
}

/// Step 3: a streamed chat on the Ollama API.
async fn stream_ollama(http: &reqwest::Client, base: &str) -> Result<(), DemoError> {
    // 3. Streamed chat on the Ollama API.
    outln!();
    outln!("3. Streamed chat on the Ollama API  (POST /api/chat, stream: true)");
    let t0 = Instant::now();
    let resp = http
        .post(format!("{base}/api/chat"))
        .json(&json!({"model": "chat", "stream": true,
                      "messages": [{"role": "user", "content": "Hello?"}]}))
        .send()
        .await
        .map_err(|e| step_err("stream")(e.to_string()))?;
    if !resp.status().is_success() {
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        return Err(step_err("stream")(format!("HTTP {status}: {text}")));
    }
    let headers = resp.headers().clone();
    let mut body = resp.bytes_stream();
    let mut ttft = None;
    let mut pending = Vec::new();
    let mut text = String::new();
    let mut done = false;
    out!("   ");
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| step_err("stream")(e.to_string()))?;
        ttft.get_or_insert_with(|| t0.elapsed());
        pending.extend_from_slice(&chunk);
        while let Some(pos) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=pos).collect();
            let Ok(v) = serde_json::from_slice::<Value>(&line) else {
                continue;
            };
            if let Some(piece) = v["message"]["content"].as_str() {
                // Shown as it comes (`out!` flushes).
                out!("{piece}");
                text.push_str(piece);
            }
            if v["done"].as_bool() == Some(true) {
                done = true;
            }
        }
    }
    outln!();
    if !done || text.is_empty() {
        return Err(step_err("stream")(
            "the stream ended without its done line".into(),
        ));
    }
    outln!(
        "   {}, first token after {}, whole stream {}",
        served(&headers),
        ms(ttft.unwrap_or_default()),
        ms(t0.elapsed())
    );
    Ok(())
}

/// Step 4: a tool-call round trip.
async fn tool_round_trip(
    http: &reqwest::Client,
    base: &str,
    local: &TestUpstream,
) -> Result<(), DemoError> {
    // 4. Tool-call round trip.
    outln!();
    outln!("4. Tool-call round trip  (OpenAI API, tool get_weather)");
    local.set_script(
        LOCAL_MODEL,
        Script::tool_calls(vec![ScriptedCall::new(
            "get_weather",
            json!({"city": "Oslo"}),
        )])
        .with_delays(Delays {
            before_headers: Duration::ZERO,
            before_first_chunk: Duration::from_millis(80),
            between_chunks: Duration::from_millis(10),
        }),
    );
    let tools = json!([{"type": "function", "function": {
        "name": "get_weather", "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]);
    let question = json!({"role": "user", "content": "What's the weather in Oslo?"});
    let (headers, body, _) = post_json(
        http,
        &format!("{base}/v1/chat/completions"),
        &json!({"model": "chat", "messages": [question], "tools": tools}),
        "tool call",
    )
    .await?;
    let message = &body["choices"][0]["message"];
    let call = &message["tool_calls"][0];
    let (Some(call_id), Some(name), Some(arguments)) = (
        call["id"].as_str(),
        call["function"]["name"].as_str(),
        call["function"]["arguments"].as_str(),
    ) else {
        return Err(step_err("tool call")(format!(
            "the model made no tool call: {body}"
        )));
    };
    outln!("   the model asks: {name}({arguments})   [call id {call_id}]");
    outln!("   {}", served(&headers));
    let result = r#"{"temperature_c": 21, "sky": "sunny"}"#;
    outln!("   the demo runs the tool and answers: {result}");
    local.set_script(
        LOCAL_MODEL,
        Script::text(["It is 21 °C", " and sunny", " in Oslo."]).with_delays(Delays {
            before_headers: Duration::ZERO,
            before_first_chunk: Duration::from_millis(80),
            between_chunks: Duration::from_millis(10),
        }),
    );
    let (headers, body, _) = post_json(
        http,
        &format!("{base}/v1/chat/completions"),
        &json!({"model": "chat", "tools": tools, "messages": [
            question,
            message,
            {"role": "tool", "tool_call_id": call_id, "content": result},
        ]}),
        "tool result",
    )
    .await?;
    let answer = body["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or("");
    if answer.is_empty() {
        return Err(step_err("tool result")(format!("no answer: {body}")));
    }
    outln!("   the model answers: {answer:?}");
    outln!("   {}", served(&headers));
    local.set_script(LOCAL_MODEL, local_script());
    Ok(())
}

/// Step 5: fallback from a refusing provider.
async fn fallback(http: &reqwest::Client, base: &str) -> Result<(), DemoError> {
    // 5. Fallback.
    outln!();
    outln!("5. Fallback  (model \"big\": the LAN box first, it refuses; then the local model)");
    let (headers, body, took) = ask(http, base, "big", "fallback").await?;
    let answer = body["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or("");
    outln!("   answer: {answer:?}");
    outln!("   {}, whole answer in {}", served(&headers), ms(took));
    let attempts = headers
        .get("x-switchyard-attempts")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("?");
    outln!("   attempts: {attempts}");
    Ok(())
}
