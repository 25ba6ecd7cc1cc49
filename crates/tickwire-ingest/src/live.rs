//! Live venue feeds: connections, reconnects, rotation and publishing.

use std::sync::Arc;

use tickwire_bus::Bus;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::feed::VenueFeed;

/// Spawns a live venue feed.
pub(crate) fn spawn_venue(
    feed: VenueFeed,
    bus: Arc<dyn Bus>,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    let _ = (feed, bus, shutdown);
    tokio::spawn(async {})
}
