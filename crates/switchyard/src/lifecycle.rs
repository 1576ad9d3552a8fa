//! `switchyard models pull NAME [--provider ID]` and `switchyard models ps`: model
//! lifecycle on the configured upstreams, talking to them directly (no running gateway
//! needed).

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt;
use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};
use switchyard_core::{LoadedModel, PullProgress};

use crate::cli::{ModelsAction, PsArgs, PullArgs};
use crate::wiring;

/// How long `ps` waits for each upstream.
const PS_WAIT: Duration = Duration::from_secs(5);

/// Runs a `models` lifecycle subcommand; the exit code.
pub(crate) async fn run(config_path: Option<PathBuf>, action: &ModelsAction) -> u8 {
    let built = match wiring::load_router(config_path.as_ref()) {
        Ok((_config, built)) => built,
        Err(code) => return code,
    };
    match action {
        ModelsAction::Pull(args) => pull(&built.router, args).await,
        ModelsAction::Ps(args) => ps(&built.router, args).await,
    }
}

async fn pull(router: &switchyard_router::Router, args: &PullArgs) -> u8 {
    let (target, model) = match router.local_target(args.provider.as_deref(), &args.name) {
        Ok(t) => t,
        Err(e) => {
            errln!("switchyard: {e}");
            return 2;
        }
    };
    let mut progress = match target.provider.pull(&model).await {
        Ok(p) => p,
        Err(e) => {
            errln!("switchyard: pulling `{model}` onto `{}`: {e}", target.id);
            return 1;
        }
    };
    let mut view = PullView::new(std::io::stderr().is_terminal());
    while let Some(item) = progress.next().await {
        match item {
            Ok(report) => view.show(&report),
            Err(e) => {
                view.finish();
                errln!("switchyard: pulling `{model}` onto `{}`: {e}", target.id);
                return 1;
            }
        }
    }
    view.finish();
    outln!("pulled {model} onto {}", target.id);
    0
}

/// Shows pull progress: a bar with size, speed and ETA on a terminal, otherwise one plain
/// line per status and per tenth of a layer.
struct PullView {
    bar: Option<ProgressBar>,
    status: String,
    tenth: u64,
}

impl PullView {
    fn new(terminal: bool) -> Self {
        let bar = terminal.then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(
                "{msg:24!} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        });
        PullView {
            bar,
            status: String::new(),
            tenth: 0,
        }
    }

    fn show(&mut self, report: &PullProgress) {
        let changed = report.status != self.status;
        if changed {
            self.status.clone_from(&report.status);
            self.tenth = 0;
        }
        match &self.bar {
            Some(bar) => {
                if changed {
                    bar.reset();
                    bar.set_message(report.status.clone());
                }
                bar.set_length(report.total.unwrap_or(0));
                bar.set_position(report.completed.unwrap_or(0));
            }
            None => self.plain(report, changed),
        }
    }

    fn plain(&mut self, report: &PullProgress, changed: bool) {
        match (report.completed, report.total) {
            (Some(done), Some(total)) if total > 0 => {
                let tenth = done.saturating_mul(10) / total;
                if changed || tenth > self.tenth {
                    self.tenth = tenth;
                    errln!(
                        "{}: {}% ({} of {})",
                        report.status,
                        tenth * 10,
                        HumanBytes(done),
                        HumanBytes(total)
                    );
                }
            }
            _ if changed => errln!("{}", report.status),
            _ => {}
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Lists the models loaded on every provider. A provider that fails or does not answer in
/// time gets a `note:` on stderr; when none answers at all (every upstream down) the
/// command fails (exit 1, naming them), so "nothing loaded" (an empty list, exit 0) is
/// never a provider outage.
async fn ps(router: &switchyard_router::Router, args: &PsArgs) -> u8 {
    let calls = router.providers().into_iter().map(|p| async move {
        let loaded = tokio::time::timeout(PS_WAIT, p.provider.loaded_models()).await;
        (p.id, loaded)
    });
    let mut rows: Vec<LoadedModel> = Vec::new();
    let mut silent: Vec<String> = Vec::new();
    let mut answered = 0usize;
    for (id, loaded) in futures::future::join_all(calls).await {
        if !matches!(loaded, Ok(Ok(_))) {
            silent.push(format!("`{id}`"));
        }
        match loaded {
            Ok(Ok(list)) => {
                answered += 1;
                rows.extend(list.into_iter().map(|mut m| {
                    m.name = format!("{id}/{}", m.name);
                    m.model.clone_from(&m.name);
                    m
                }));
            }
            Ok(Err(e)) => errln!("note: provider `{id}`: {e}"),
            Err(_) => errln!("note: provider `{id}` did not answer within {PS_WAIT:?}"),
        }
    }
    if answered == 0 && !silent.is_empty() {
        errln!(
            "switchyard: no provider answered ({}); the loaded models are unknown",
            silent.join(", ")
        );
        return 1;
    }
    if args.json {
        match serde_json::to_string_pretty(&rows) {
            Ok(s) => outln!("{s}"),
            Err(e) => {
                errln!("switchyard: {e}");
                return 1;
            }
        }
        return 0;
    }
    out!("{}", ps_table(&rows));
    0
}

/// The loaded models as an aligned table.
fn ps_table(rows: &[LoadedModel]) -> String {
    let mut cells = vec![[
        "NAME".to_owned(),
        "SIZE".to_owned(),
        "VRAM".to_owned(),
        "CONTEXT".to_owned(),
        "UNTIL".to_owned(),
    ]];
    for m in rows {
        cells.push([
            m.name.clone(),
            HumanBytes(m.size).to_string(),
            HumanBytes(m.size_vram).to_string(),
            m.context_length
                .map_or_else(|| "-".to_owned(), |c| c.to_string()),
            m.expires_at.clone().unwrap_or_else(|| "-".to_owned()),
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|i| cells.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &cells {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}
