//! The process-wide plugin engine: one `wasmtime::Engine` with the pooling allocator and epoch
//! interruption, one linker with the host interface and an empty WASI, and the on-disk cache of
//! compiled components keyed by content hash.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::bindings::{detector, filter, parser};
use super::spec::{DETECTOR_DEADLINE_MS, FILTER_DEADLINE_MS, PluginSpec};
use super::state::PluginState;
use super::stats::PluginStats;

/// How often the epoch advances: the granularity of plugin deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Bytes of each linear memory and table a pool slot keeps resident when its instance goes,
/// reset with `memset` instead of `madvise`, so neither the drop nor the next instance in the
/// slot pays for page faults and TLB shootdowns. With the `PAGEMAP_SCAN` ioctl (Linux 6.7+,
/// used when the kernel has it) only the pages the instance dirtied are reset, up to this many
/// bytes; without it, the first this-many bytes. The price: a slot keeps that memory resident
/// after its instance is gone, at most this much per slot ever used (severity-filter: 0.07 MiB,
/// what it touched), so RSS does not shrink back after a peak of instances.
const KEEP_RESIDENT: usize = 256 << 10;

/// Engine-wide settings.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// Where compiled components are cached. `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Most plugin instances alive at once (pooling allocator slots).
    pub max_instances: u32,
    /// Largest memory cap any plugin may have, in MiB (the size of a pool slot).
    pub max_memory_mb: u64,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            cache_dir: default_cache_dir(),
            max_instances: 256,
            max_memory_mb: 512,
        }
    }
}

/// `$SLUICE_CACHE_DIR`, else `$XDG_CACHE_HOME/sluice/components`, else `~/.cache/sluice/components`.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SLUICE_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("sluice").join("components"))
}

/// What a plugin is, by the world its component exports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    Filter,
    Parser,
    Detector,
}

impl std::fmt::Display for PluginKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PluginKind::Filter => "filter",
            PluginKind::Parser => "parser",
            PluginKind::Detector => "detector",
        })
    }
}

/// A pre-linked component of one kind, ready to instantiate.
pub enum PluginPre {
    Filter(filter::FilterPre<PluginState>),
    Parser(parser::ParserPre<PluginState>),
    Detector(detector::DetectorPre<PluginState>),
}

/// A plugin loaded, verified and linked; instances are made from it by a [`Sandbox`](super::Sandbox).
pub struct LoadedPlugin {
    pub spec: PluginSpec,
    pub kind: PluginKind,
    /// SHA-256 of the component file, hex.
    pub sha256: String,
    pub pre: PluginPre,
    pub stats: Arc<PluginStats>,
    pub(super) engine: Engine,
}

/// The process-wide engine.
pub struct PluginEngine {
    engine: Engine,
    linker: Linker<PluginState>,
    options: EngineOptions,
    ticker_stop: Arc<AtomicBool>,
}

impl Drop for PluginEngine {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

impl PluginEngine {
    /// Builds the engine, its linker and its epoch ticker thread.
    pub fn new(options: EngineOptions) -> anyhow::Result<Self> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        // Plugin calls are synchronous: the async machinery costs ≈ 3x per call.
        config.concurrency_support(false);
        let mut pool = PoolingAllocationConfig::default();
        let instances = options.max_instances;
        pool.total_component_instances(instances)
            .total_core_instances(instances * 8)
            .total_memories(instances * 2)
            .total_tables(instances * 4)
            .max_memories_per_component(4)
            .max_memory_size((options.max_memory_mb as usize) << 20)
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT)
            .pagemap_scan(Enabled::Auto);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config)
            .map_err(|error| anyhow::anyhow!("creating the wasm engine: {error}"))?;

        let mut linker = Linker::new(&engine);
        filter::Filter::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, |state| {
            state
        })
        .map_err(|error| anyhow::anyhow!("linking the host interface: {error}"))?;
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|error| anyhow::anyhow!("linking WASI: {error}"))?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        spawn_epoch_ticker(engine.weak(), ticker_stop.clone());
        Ok(PluginEngine {
            engine,
            linker,
            options,
            ticker_stop,
        })
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Reads, verifies, compiles (or fetches from the cache) and links the plugin `spec` names.
    pub fn load(&self, spec: &PluginSpec) -> anyhow::Result<Arc<LoadedPlugin>> {
        let what = format!(
            "loading plugin `{}` from {}",
            spec.name,
            spec.path.display()
        );
        let bytes = std::fs::read(&spec.path).with_context(|| what.clone())?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        if let Some(expected) = &spec.sha256
            && !expected.trim().eq_ignore_ascii_case(&sha256)
        {
            bail!(
                "{what}: sha256 mismatch (expected {}, found {sha256})",
                expected.trim()
            );
        }
        if spec.limits.memory_mb > self.options.max_memory_mb {
            bail!(
                "{what}: limits.memory_mb = {} is above the engine's largest slot of {} MiB",
                spec.limits.memory_mb,
                self.options.max_memory_mb
            );
        }
        if spec.limits.memory_mb == 0 {
            bail!("{what}: limits.memory_mb must be positive");
        }
        let component = self
            .compile_cached(&bytes, &sha256)
            .with_context(|| what.clone())?;
        let kind = component_kind(&self.engine, &component).with_context(|| what.clone())?;
        let instance_pre = self.linker.instantiate_pre(&component).map_err(|error| {
            anyhow::anyhow!("{what}: it imports something the sandbox does not offer: {error}")
        })?;
        let pre = match kind {
            PluginKind::Filter => filter::FilterPre::new(instance_pre).map(PluginPre::Filter),
            PluginKind::Parser => parser::ParserPre::new(instance_pre).map(PluginPre::Parser),
            PluginKind::Detector => {
                detector::DetectorPre::new(instance_pre).map(PluginPre::Detector)
            }
        }
        .map_err(|error| {
            anyhow::anyhow!("{what}: its exports do not match the {kind} world: {error}")
        })?;
        let mut spec = spec.clone();
        if spec.limits.deadline_ms == 0 {
            spec.limits.deadline_ms = match kind {
                PluginKind::Filter | PluginKind::Parser => FILTER_DEADLINE_MS,
                PluginKind::Detector => DETECTOR_DEADLINE_MS,
            };
        }
        Ok(Arc::new(LoadedPlugin {
            spec,
            kind,
            sha256,
            pre,
            stats: Arc::new(PluginStats::default()),
            engine: self.engine.clone(),
        }))
    }

    /// Compiles a component, or deserializes it from the cache when this engine compiled the same
    /// bytes before. Cache entries are written under a temporary name and renamed.
    pub fn compile_cached(&self, bytes: &[u8], sha256: &str) -> anyhow::Result<Component> {
        let Some(dir) = &self.options.cache_dir else {
            return Component::new(&self.engine, bytes)
                .map_err(|error| anyhow::anyhow!("compiling: {error}"));
        };
        let engine_hash = {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            self.engine
                .precompile_compatibility_hash()
                .hash(&mut hasher);
            hasher.finish()
        };
        let path = dir.join(format!("{sha256}-{engine_hash:016x}.cwasm"));
        if path.exists() {
            // SAFETY: the file is one this engine configuration wrote (its name carries the
            // content hash and the engine's compatibility hash) into the gateway's own cache.
            match unsafe { Component::deserialize_file(&self.engine, &path) } {
                Ok(component) => return Ok(component),
                Err(error) => {
                    tracing::warn!(path = %path.display(), "ignoring unreadable cache entry: {error}")
                }
            }
        }
        let component = Component::new(&self.engine, bytes)
            .map_err(|error| anyhow::anyhow!("compiling: {error}"))?;
        if let Err(error) = write_cache_entry(dir, &path, &component) {
            tracing::warn!(path = %path.display(), "could not cache the compiled plugin: {error:#}");
        }
        Ok(component)
    }
}

fn write_cache_entry(dir: &Path, path: &Path, component: &Component) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let serialized = component
        .serialize()
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&temporary, serialized)?;
    std::fs::rename(&temporary, path)?;
    Ok(())
}

fn component_kind(engine: &Engine, component: &Component) -> anyhow::Result<PluginKind> {
    let exports: Vec<String> = component
        .component_type()
        .exports(engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    let has = |name: &str| exports.iter().any(|export| export == name);
    match (has("filter-logs"), has("parse"), has("observe-logs")) {
        (true, false, false) => Ok(PluginKind::Filter),
        (false, true, false) => Ok(PluginKind::Parser),
        (false, false, true) => Ok(PluginKind::Detector),
        _ => bail!(
            "it is not a sluice:plugin@0.2.0 filter, parser or detector (exports: {})",
            exports.join(", ")
        ),
    }
}

fn spawn_epoch_ticker(engine: wasmtime::EngineWeak, stop: Arc<AtomicBool>) {
    let _ = std::thread::Builder::new()
        .name("sluice-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                match engine.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        });
}
