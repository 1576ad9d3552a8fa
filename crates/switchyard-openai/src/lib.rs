//! A client for OpenAI-compatible chat-completions servers (OpenAI, vLLM, llama.cpp,
//! Ollama's `/v1`, OpenRouter, LM Studio).
//!
//! Nothing is public yet; see the workspace README for the plan.
