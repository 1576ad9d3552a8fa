//! Streams one chat answer from an OpenAI-compatible server, with `switchyard-openai`
//! alone; tool calls the model writes as text are recovered into structured calls.
//!
//! ```sh
//! OPENAI_BASE_URL=http://127.0.0.1:11434/v1 \
//!   cargo run -p switchyard-examples --example openai_chat -- qwen2.5:7b "What's the weather in Paris?"
//! ```
//! `OPENAI_BASE_URL` defaults to `https://api.openai.com/v1`; `OPENAI_API_KEY`, when set,
//! is sent as the bearer token.

use std::io::Write;

use futures::StreamExt;
use switchyard_core::{ChatEvent, ChatRequest, Message, Provider, ToolSpec};
use switchyard_openai::{OpenAiClient, OpenAiConfig, TextRecovery};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base_url =
        std::env::var("OPENAI_BASE_URL").unwrap_or_else(|_| "https://api.openai.com/v1".to_owned());
    let mut args = std::env::args().skip(1);
    let model = args.next().unwrap_or_else(|| "gpt-4.1-mini".to_owned());
    let prompt = args
        .next()
        .unwrap_or_else(|| "What's the weather in Paris?".to_owned());

    let mut config = OpenAiConfig::new(base_url);
    // The library reads no environment variables: the key's value is passed in.
    config.client.bearer_token = std::env::var("OPENAI_API_KEY")
        .ok()
        .map(|key| key.trim().to_owned())
        .filter(|key| !key.is_empty());
    config.text_tool_recovery = TextRecovery::On;
    let client = OpenAiClient::new(config)?;

    let mut request = ChatRequest::new(model, vec![Message::user(prompt)]);
    request.tools = vec![ToolSpec {
        name: "get_weather".to_owned(),
        description: Some("The current weather in a city".to_owned()),
        parameters: serde_json::json!({
            "type": "object",
            "properties": { "city": { "type": "string" } },
            "required": ["city"]
        }),
    }];
    let mut stream = client.chat(&request).await?;
    let mut out = std::io::stdout();
    while let Some(event) = stream.next().await {
        match event? {
            ChatEvent::TextDelta { text } => {
                out.write_all(text.as_bytes())?;
                out.flush()?;
            }
            ChatEvent::ToolCallStart { id, name, .. } => print!("\n[tool call {id}: {name}("),
            ChatEvent::ToolCallArgs { fragment, .. } => print!("{fragment}"),
            ChatEvent::ToolCallEnd { .. } => println!(")]"),
            ChatEvent::Done { finish_reason } => println!("\n[done: {}]", finish_reason.as_str()),
            _ => {}
        }
    }
    Ok(())
}
