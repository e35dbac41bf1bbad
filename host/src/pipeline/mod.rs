//! A pipeline: raw lines → parser → filters → detectors, each stage a plugin sandbox. Records a
//! filter drops are counted; dead-lettered batches and alerts come out beside the records.

use std::sync::Arc;

use anyhow::bail;

use crate::alerts::Alert;
use crate::config::GatewayConfig;
use crate::model::{LogBatch, Resource, StringColumn};
use crate::runtime::{PluginEngine, PluginKind, Sandbox};

/// What one batch produced.
#[derive(Debug, Default)]
pub struct PipelineOutput {
    /// Records that came through every stage.
    pub records: LogBatch,
    /// Batches a plugin faulted on under the `dead-letter` policy, with the plugin's name.
    pub dead_letters: Vec<(String, LogBatch)>,
    /// Alerts from detectors and about plugins.
    pub alerts: Vec<Alert>,
    /// Records dropped by filters or fault policies.
    pub dropped: usize,
}

/// The stages of one pipeline.
pub struct Pipeline {
    parser: Option<Sandbox>,
    filters: Vec<Sandbox>,
    detectors: Vec<Sandbox>,
    resource: Arc<Resource>,
}

impl Pipeline {
    /// Loads every plugin of the pipeline and runs its `init`; any problem refuses the whole
    /// pipeline, with every problem listed.
    pub fn build(engine: &PluginEngine, config: &GatewayConfig) -> anyhow::Result<Pipeline> {
        let mut pipeline = Pipeline {
            parser: None,
            filters: Vec::new(),
            detectors: Vec::new(),
            resource: Arc::new(Resource::default()),
        };
        let mut problems = Vec::new();
        for (position, name) in config.pipeline.stages.iter().enumerate() {
            let Some(spec) = config.plugins.get(name) else {
                problems.push(format!("pipeline stage `{name}` is not defined"));
                continue;
            };
            let sandbox = match engine.load(spec).and_then(Sandbox::new) {
                Ok(sandbox) => sandbox,
                Err(error) => {
                    problems.push(format!("{error:#}"));
                    continue;
                }
            };
            let kind = sandbox.plugin().kind;
            match kind {
                PluginKind::Parser if position == 0 => pipeline.parser = Some(sandbox),
                PluginKind::Parser => problems.push(format!(
                    "stage `{name}` is a parser: a parser must be the first stage"
                )),
                PluginKind::Filter if !pipeline.detectors.is_empty() => problems.push(format!(
                    "stage `{name}` is a filter after a detector: filters come before detectors"
                )),
                PluginKind::Filter => pipeline.filters.push(sandbox),
                PluginKind::Detector => pipeline.detectors.push(sandbox),
            }
        }
        if pipeline.parser.is_none() {
            problems
                .push("the pipeline reads raw lines, so its first stage must be a parser".into());
        }
        if !problems.is_empty() {
            bail!("{}", problems.join("\n"));
        }
        Ok(pipeline)
    }

    /// All sandboxes, for their counters.
    pub fn sandboxes(&self) -> impl Iterator<Item = &Sandbox> {
        self.parser
            .iter()
            .chain(&self.filters)
            .chain(&self.detectors)
    }

    /// Runs raw lines from `source` through every stage.
    pub fn process_lines(&mut self, lines: &StringColumn, source: &str) -> PipelineOutput {
        let mut output = PipelineOutput::default();
        let Some(parser) = self.parser.as_mut() else {
            return output;
        };
        let parsed = parser.parse(lines, source, crate::runtime::now_nanos(), &self.resource);
        output.dropped += parsed.dropped;
        if let Some(dead) = parsed.dead_letter {
            output
                .dead_letters
                .push((parser.plugin().spec.name.clone(), dead));
        }
        output.alerts.extend(parser.take_alerts());
        let mut batch = parsed.output;
        for filter in &mut self.filters {
            let outcome = filter.filter(batch);
            output.dropped += outcome.dropped;
            if let Some(dead) = outcome.dead_letter {
                output
                    .dead_letters
                    .push((filter.plugin().spec.name.clone(), dead));
            }
            output.alerts.extend(filter.take_alerts());
            batch = outcome.output;
        }
        if !batch.is_empty() {
            let shared = Arc::new(batch);
            for detector in &mut self.detectors {
                output.alerts.extend(detector.observe(&shared).alerts);
                output.alerts.extend(detector.take_alerts());
            }
            batch = Arc::try_unwrap(shared).unwrap_or_else(|shared| (*shared).clone());
        }
        output.records = batch;
        output
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
