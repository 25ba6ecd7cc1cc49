//! The one place that chooses the bus implementation: `[bus]` in, a
//! running bus out. Everything else in the binary only sees the trait.

use std::sync::Arc;

use anyhow::{Context as _, anyhow};
use tickwire_bus::{Bus, MemoryBus, RedisBus};
use tracing::warn;

use crate::config::{BusConfig, BusKind};

/// A running bus, shared as the trait, plus what only a publisher that is
/// about to exit needs from its implementation.
pub(crate) struct Connected {
    /// The bus, for ingest and gateway.
    pub(crate) bus: Arc<dyn Bus>,
    /// The Redis bus, whose queued publishes must be flushed before exit.
    redis: Option<Arc<RedisBus>>,
}

/// Builds the bus `config` describes. The Redis bus does not wait for
/// Redis beyond its first attempts: it connects (and reconnects) in the
/// background, so a Redis that is down at start-up delays data, never
/// start-up. Fails only on settings that can never work (a malformed URL).
pub(crate) async fn connect(config: &BusConfig) -> anyhow::Result<Connected> {
    match config.kind {
        BusKind::Memory => Ok(Connected {
            bus: Arc::new(MemoryBus::new(config.memory())),
            redis: None,
        }),
        BusKind::Redis => {
            let settings = config
                .redis()
                .map_err(|message| anyhow!("`bus.url`: {message}"))?;
            let bus = RedisBus::connect(settings)
                .await
                .with_context(|| format!("cannot use the Redis bus {}", config.describe()))?;
            let bus = Arc::new(bus);
            Ok(Connected {
                bus: bus.clone(),
                redis: Some(bus),
            })
        }
    }
}

impl Connected {
    /// Waits (briefly, bounded by the bus) until what was published so
    /// far reached the bus, so the last statuses of a stopping ingest are
    /// not lost with the process. Never fails: what cannot be flushed is
    /// logged.
    pub(crate) async fn flush(&self) {
        if let Some(redis) = &self.redis {
            if let Err(e) = redis.flush().await {
                warn!(error = %e, "not every queued publish reached Redis before exit");
            }
        }
    }
}
