//! Lists an Ollama server's models and streams one chat answer, with `switchyard-ollama`
//! alone.
//!
//! ```sh
//! cargo run -p switchyard-examples --example ollama_chat -- [MODEL] [PROMPT]
//! ```
//! The server is `OLLAMA_HOST` (default `http://127.0.0.1:11434`); the model defaults to
//! the first chat model the server lists.

use std::io::Write;
use std::time::Duration;

use futures::StreamExt;
use switchyard_core::{ChatEvent, ChatRequest, Message, Provider};
use switchyard_ollama::{OllamaClient, OllamaConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base_url =
        std::env::var("OLLAMA_HOST").unwrap_or_else(|_| "http://127.0.0.1:11434".to_owned());
    let mut args = std::env::args().skip(1);
    let model = args.next();
    let prompt = args
        .next()
        .unwrap_or_else(|| "Say hello in five words.".to_owned());

    let mut config = OllamaConfig::new(base_url);
    // A cold model load on CPU can take minutes; a stall of a minute mid-answer is a failure.
    config.client.timeouts.first_token = Duration::from_secs(600);
    config.client.timeouts.idle = Duration::from_secs(60);
    let client = OllamaClient::new(config)?;

    println!(
        "Ollama {} at {}",
        client.version().await?,
        client.base_url()
    );
    let catalog = client.refresh_catalog().await?;
    for model in &catalog.chat_models {
        let tools = model.capabilities.map(|c| c.tools);
        println!(
            "  {:<40} context {:>8}  tools {}",
            model.id,
            model
                .context_window
                .map_or("?".to_owned(), |n| n.to_string()),
            tools.map_or("?", |t| if t { "yes" } else { "no" }),
        );
    }
    for model in &catalog.embedding_models {
        println!("  {:<40} (embedding only)", model.id);
    }
    let Some(model) = model.or_else(|| catalog.chat_models.first().map(|m| m.id.clone())) else {
        println!("The server has no chat model; pull one with `ollama pull`.");
        return Ok(());
    };

    let request = ChatRequest::new(model, vec![Message::user(prompt)]);
    let mut stream = client.chat(&request).await?;
    let mut out = std::io::stdout();
    while let Some(event) = stream.next().await {
        match event? {
            ChatEvent::TextDelta { text } => {
                out.write_all(text.as_bytes())?;
                out.flush()?;
            }
            ChatEvent::Usage(usage) => {
                println!(
                    "\n[{} prompt + {} completion tokens]",
                    usage.prompt_tokens, usage.completion_tokens
                );
            }
            ChatEvent::Done { finish_reason } => println!("[done: {}]", finish_reason.as_str()),
            _ => {}
        }
    }
    Ok(())
}
