//! Folds a hand-made event stream into a whole response with `switchyard-core` alone.

use futures::executor::block_on;
use switchyard_core::{ChatEvent, ChatStream, FinishReason, collect_response};

fn main() -> Result<(), switchyard_core::ProviderError> {
    let events = vec![
        Ok(ChatEvent::text("The weather ")),
        Ok(ChatEvent::text("is fine.")),
        Ok(ChatEvent::done(FinishReason::Stop)),
    ];
    let stream: ChatStream = Box::pin(futures::stream::iter(events));
    let response = block_on(collect_response(stream))?;
    println!("{}", response.content);
    Ok(())
}
