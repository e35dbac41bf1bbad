//! The plugin chain of one pipeline: parser → filters → detectors, each a sandbox.
//!
//! Filters and parsers read logs only; detectors also observe metric points and spans, which
//! otherwise pass through untouched.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::bail;

use crate::alerts::Alert;
use crate::model::{Batch, LineBatch, LogBatch, MetricBatch, SpanBatch};
use crate::runtime::{
    FlatMetrics, FlatSpans, PluginEngine, PluginKind, PluginSpec, Sandbox, now_nanos,
};

/// What one batch produced.
#[derive(Debug, Default)]
pub struct StageOutput {
    /// What came through every stage (`None` when nothing did).
    pub batch: Option<Batch>,
    /// Batches a plugin faulted on under the `dead-letter` policy, with the plugin's name.
    pub dead_letters: Vec<(String, LogBatch)>,
    /// Alerts from detectors and about plugins.
    pub alerts: Vec<Alert>,
    /// Records dropped by filters or fault policies.
    pub dropped: usize,
}

/// The loaded plugins of one pipeline.
pub struct Stages {
    parser: Option<Sandbox>,
    filters: Vec<Sandbox>,
    detectors: Vec<Sandbox>,
}

impl Stages {
    /// Loads every named plugin and runs its `init`; any problem refuses the whole chain, with
    /// every problem listed and located by `at` (such as `pipelines.main.stages`).
    pub fn build(
        engine: &PluginEngine,
        at: &str,
        names: &[String],
        plugins: &BTreeMap<String, PluginSpec>,
    ) -> anyhow::Result<Stages> {
        let mut stages = Stages {
            parser: None,
            filters: Vec::new(),
            detectors: Vec::new(),
        };
        let mut problems = Vec::new();
        for (position, name) in names.iter().enumerate() {
            let at = format!("{at}[{position}]");
            let Some(spec) = plugins.get(name) else {
                problems.push(format!("{at}: unknown plugin `{name}`"));
                continue;
            };
            let sandbox = match engine.load(spec).and_then(Sandbox::new) {
                Ok(sandbox) => sandbox,
                Err(error) => {
                    problems.push(format!("{at}: plugin `{name}`: {error:#}"));
                    continue;
                }
            };
            match sandbox.plugin().kind {
                PluginKind::Parser if position == 0 => stages.parser = Some(sandbox),
                PluginKind::Parser => problems.push(format!(
                    "{at}: `{name}` is a parser: a parser must be the first stage"
                )),
                PluginKind::Filter if !stages.detectors.is_empty() => problems.push(format!(
                    "{at}: `{name}` is a filter after a detector: filters come before detectors"
                )),
                PluginKind::Filter => stages.filters.push(sandbox),
                PluginKind::Detector => stages.detectors.push(sandbox),
            }
        }
        if !problems.is_empty() {
            bail!("{}", problems.join("\n"));
        }
        Ok(stages)
    }

    /// The detectors, for checkpoints.
    pub fn detectors_mut(&mut self) -> &mut [Sandbox] {
        &mut self.detectors
    }

    /// All sandboxes, for their counters.
    pub fn sandboxes(&self) -> impl Iterator<Item = &Sandbox> {
        self.parser
            .iter()
            .chain(&self.filters)
            .chain(&self.detectors)
    }

    /// Runs one batch through the parser and filters, and through the detectors when `detect`
    /// (not when a batch is run again for a sink that fell behind: detectors saw it already).
    pub fn process(&mut self, batch: Batch, detect: bool) -> StageOutput {
        let mut output = StageOutput::default();
        let logs = match batch {
            Batch::Lines(lines) => self.parse(lines, &mut output),
            Batch::Logs(logs) => logs,
            Batch::Metrics(metrics) => {
                output.batch = self.detect_metrics(metrics, detect, &mut output.alerts);
                return output;
            }
            Batch::Spans(spans) => {
                output.batch = self.detect_spans(spans, detect, &mut output.alerts);
                return output;
            }
        };
        let mut logs = logs;
        for filter in &mut self.filters {
            if logs.is_empty() {
                break;
            }
            let outcome = filter.filter(logs);
            output.dropped += outcome.dropped;
            if let Some(dead) = outcome.dead_letter {
                output
                    .dead_letters
                    .push((filter.plugin().spec.name.clone(), dead));
            }
            output.alerts.extend(filter.take_alerts());
            logs = outcome.output;
        }
        if detect && !logs.is_empty() && !self.detectors.is_empty() {
            let shared = Arc::new(logs);
            for detector in &mut self.detectors {
                output.alerts.extend(detector.observe(&shared).alerts);
                output.alerts.extend(detector.take_alerts());
            }
            logs = Arc::try_unwrap(shared).unwrap_or_else(|shared| (*shared).clone());
        }
        if !logs.is_empty() {
            output.batch = Some(Batch::Logs(logs));
        }
        output
    }

    /// Lets the detectors observe metric points (filters read logs only: points pass through).
    fn detect_metrics(
        &mut self,
        metrics: MetricBatch,
        detect: bool,
        alerts: &mut Vec<Alert>,
    ) -> Option<Batch> {
        if metrics.is_empty() {
            return None;
        }
        if !detect || self.detectors.is_empty() {
            return Some(Batch::Metrics(metrics));
        }
        let shared = Arc::new(metrics);
        let flat = Arc::new(FlatMetrics::new(shared.clone()));
        for detector in &mut self.detectors {
            alerts.extend(detector.observe_metrics(&flat).alerts);
            alerts.extend(detector.take_alerts());
        }
        drop(flat);
        Some(Batch::Metrics(Arc::unwrap_or_clone(shared)))
    }

    /// Lets the detectors observe spans (filters read logs only: spans pass through).
    fn detect_spans(
        &mut self,
        spans: SpanBatch,
        detect: bool,
        alerts: &mut Vec<Alert>,
    ) -> Option<Batch> {
        if spans.is_empty() {
            return None;
        }
        if !detect || self.detectors.is_empty() {
            return Some(Batch::Spans(spans));
        }
        let shared = Arc::new(spans);
        let flat = Arc::new(FlatSpans::new(shared.clone()));
        for detector in &mut self.detectors {
            alerts.extend(detector.observe_spans(&flat).alerts);
            alerts.extend(detector.take_alerts());
        }
        drop(flat);
        Some(Batch::Spans(Arc::unwrap_or_clone(shared)))
    }

    /// Raw lines → records: through the parser, or one record per line (the line as body) when
    /// the pipeline has none.
    fn parse(&mut self, lines: LineBatch, output: &mut StageOutput) -> LogBatch {
        let received = now_nanos();
        let Some(parser) = self.parser.as_mut() else {
            let mut logs = LogBatch::new();
            for line in lines.lines.iter() {
                logs.push_fields(0, received, 0, "", line, &[0; 16], &[0; 8], &lines.resource);
            }
            return logs;
        };
        let parsed = parser.parse(&lines.lines, &lines.source, received, &lines.resource);
        output.dropped += parsed.dropped;
        if let Some(dead) = parsed.dead_letter {
            output
                .dead_letters
                .push((parser.plugin().spec.name.clone(), dead));
        }
        output.alerts.extend(parser.take_alerts());
        parsed.output
    }

    /// Advances detectors' clocks.
    pub fn tick(&mut self, now: i64) -> Vec<Alert> {
        let mut alerts = Vec::new();
        for detector in &mut self.detectors {
            alerts.extend(detector.tick(now).alerts);
            alerts.extend(detector.take_alerts());
        }
        alerts
    }
}
