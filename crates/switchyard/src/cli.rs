//! The command line: global flags and one subcommand per job.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};
use switchyard_core::PrivacyClass;

/// Switchyard: a local-first LLM gateway between your agents and your models.
///
/// Agents talk to it through the OpenAI API (`/v1`) or Ollama's native API; it sends each
/// request to Ollama on this machine or your LAN, to an OpenAI-compatible server, or, only
/// where the config allows, to a cloud API, and says which target served it and why.
#[derive(Debug, Parser)]
#[command(name = "switchyard", version, about, long_about)]
pub(crate) struct Cli {
    /// The config file (JSON5). Without one: Ollama at 127.0.0.1:11434, listening on
    /// 127.0.0.1:4141.
    #[arg(long, global = true, env = "SWITCHYARD_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    /// Log format on stderr. The level comes from SWITCHYARD_LOG (or RUST_LOG), e.g.
    /// `info`, `info,switchyard_router=debug`.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub(crate) log_format: LogFormat,

    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the gateway (reloads its config on SIGHUP and when the file changes).
    Serve(ServeArgs),
    /// Show the gateway at work against simulated models, in a few seconds.
    Demo,
    /// List the models the configured providers offer, with capabilities and context windows.
    Models(ModelsArgs),
    /// Routing questions.
    #[command(subcommand)]
    Route(RouteCommand),
    /// Config file tools.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Decode a captured stream (Ollama NDJSON or OpenAI SSE) and print its normalised
    /// events as JSON lines, or re-encode it as the other API's stream.
    Replay(ReplayArgs),
    /// Probe every configured provider and say what is wrong and how to fix it.
    Doctor(DoctorArgs),
    /// Ask the running gateway (with the config's first admin key) for each caller's
    /// recent tool set, the tools that went missing from it, and the calls of tools a
    /// request did not offer.
    Tools(ToolsArgs),
    /// Run a simulated model server speaking the Ollama API and the OpenAI-compatible `/v1`
    /// API, to try the gateway (or load-test it) without Ollama or any model.
    ///
    /// Point a provider at it, e.g. `{ api: "openai", base_url: "http://127.0.0.1:18080/v1" }`
    /// or `{ api: "ollama", base_url: "http://127.0.0.1:18080" }`. Every chat request for
    /// the model gets the same short text reply, streamed or not as asked. Stops on Ctrl-C.
    Simulate(SimulateArgs),
}

/// `serve` options.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Listen here instead of the config's `server.listen`.
    #[arg(long, value_name = "ADDR")]
    pub(crate) listen: Option<SocketAddr>,
    /// Worker threads of the server. Default: half the CPU cores, at least one: the
    /// gateway waits on sockets most of the time, and the model server it fronts usually
    /// runs on the same machine and needs the cores more.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) threads: Option<u16>,
}

/// `tools` options.
#[derive(Debug, Args)]
pub(crate) struct ToolsArgs {
    /// Only this caller (API key id; `-` for requests without a key).
    #[arg(long, value_name = "ID")]
    pub(crate) caller: Option<String>,
    /// The gateway's address; default: the config's `server.listen` (an unspecified address
    /// as loopback).
    #[arg(long, value_name = "URL")]
    pub(crate) url: Option<String>,
    /// Print the gateway's JSON instead of tables.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `simulate` options.
#[derive(Debug, Args)]
pub(crate) struct SimulateArgs {
    /// Address to listen on, e.g. `127.0.0.1:18080` (port 0: any free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:18080")]
    pub(crate) listen: SocketAddr,
    /// The model it serves (listed by `/api/tags` and `/v1/models`; others are a 404).
    #[arg(long, value_name = "NAME", default_value = "bench")]
    pub(crate) model: String,
    /// Pause before the first chunk and between chunks, in milliseconds. 0 (the default)
    /// is fast mode: no pauses, each answer one precomputed body (for load tests).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub(crate) delay_ms: u64,
    /// Pause between chunks only, in milliseconds (overrides `--delay-ms` between chunks).
    #[arg(long, value_name = "N")]
    pub(crate) chunk_delay_ms: Option<u64>,
    /// Stream N chunks per answer (`tok0 `, `tok1 `, …; at most 100000), as the reference
    /// benchmark upstream does with 20. Without it: a short seven-chunk greeting.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub(crate) chunks: Option<u32>,
}

/// `models` options.
#[derive(Debug, Args)]
pub(crate) struct ModelsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
    /// Model lifecycle on the upstreams; without one, the catalog is listed.
    #[command(subcommand)]
    pub(crate) action: Option<ModelsAction>,
}

/// `models` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum ModelsAction {
    /// Pull (download) a model onto a local provider, showing progress (size, speed, ETA;
    /// plain lines when stderr is not a terminal).
    Pull(PullArgs),
    /// List the models the upstreams hold in memory now.
    Ps(PsArgs),
}

/// `models pull` options.
#[derive(Debug, Args)]
pub(crate) struct PullArgs {
    /// The model, as the provider names it (`qwen3:8b`), or `provider/model`.
    pub(crate) name: String,
    /// The provider to pull onto; needed when several local providers are configured.
    #[arg(long, value_name = "ID")]
    pub(crate) provider: Option<String>,
}

/// `models ps` options.
#[derive(Debug, Args)]
pub(crate) struct PsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `route` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum RouteCommand {
    /// Show how a request would be routed, and why, without sending it.
    Explain(ExplainArgs),
}

/// `route explain` options.
#[derive(Debug, Args)]
pub(crate) struct ExplainArgs {
    /// The model the request names: a route alias, `provider/model`, or a bare model.
    #[arg(long)]
    pub(crate) model: String,
    /// The caller (API key id) whose policy applies.
    #[arg(long)]
    pub(crate) caller: Option<String>,
    /// The request's privacy class.
    #[arg(long, value_parser = privacy_class())]
    pub(crate) privacy: Option<PrivacyClass>,
    /// Whether the request offers tools (routes may prefer tool-capable targets).
    #[arg(long)]
    pub(crate) tools: bool,
    /// A tool the request offers, by name (repeatable; implies `--tools`): the tool
    /// policy (`never_to_cloud`) applies to these names.
    #[arg(long = "tool", value_name = "NAME")]
    pub(crate) tool: Vec<String>,
    /// The task the request names (the `x-switchyard-task` header), for task rules.
    #[arg(long)]
    pub(crate) task: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Parses `--privacy` straight into core's [`PrivacyClass`], by the names the config and the
/// `x-switchyard-privacy` header use (`any`, `local-only`), listed in the help.
fn privacy_class() -> impl TypedValueParser<Value = PrivacyClass> {
    PossibleValuesParser::new([
        PossibleValue::new(PrivacyClass::Any.as_str()).help("Any target the route allows"),
        PossibleValue::new(PrivacyClass::LocalOnly.as_str()).help("Never a cloud target"),
    ])
    .try_map(|name| PrivacyClass::parse(&name).ok_or("not a privacy class"))
}

/// `config` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Parse and validate a config file: prints its checksum, or the path and line of the
    /// mistake (exit code 2).
    Check(CheckArgs),
}

/// `config check` options.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// The file to check (default: --config / SWITCHYARD_CONFIG).
    pub(crate) file: Option<PathBuf>,
}

/// Which API's stream format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum WireApi {
    /// Ollama's native `/api/chat` NDJSON.
    Ollama,
    /// OpenAI's `/v1/chat/completions` server-sent events.
    Openai,
    /// Anthropic's `/v1/messages` server-sent events.
    Anthropic,
}

/// `replay` options.
#[derive(Debug, Args)]
pub(crate) struct ReplayArgs {
    /// The format of the captured stream.
    #[arg(long, value_enum)]
    pub(crate) from: WireApi,
    /// Re-encode the stream in this API's format instead of printing events.
    #[arg(long, value_enum)]
    pub(crate) to: Option<WireApi>,
    /// The model name written into re-encoded chunks.
    #[arg(long, default_value = "replay")]
    pub(crate) model: String,
    /// The captured response body (`-` for stdin).
    pub(crate) file: PathBuf,
}

/// `doctor` options.
#[derive(Debug, Args)]
pub(crate) struct DoctorArgs {
    /// Print the report as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// Probe only this provider.
    #[arg(long, value_name = "ID")]
    pub(crate) provider: Option<String>,
}
