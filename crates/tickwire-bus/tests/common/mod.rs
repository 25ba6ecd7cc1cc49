//! Helpers shared by the Redis bus test binaries.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The longest any single wait in these tests may take.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// Logs of the bus under test, shown for failing tests
/// (`RUST_LOG=tickwire_bus=debug` for more).
pub(crate) fn logs() {
    let _already = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "tickwire_bus=info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// A key prefix no other test of this binary uses (and logging set up).
pub(crate) fn prefix() -> String {
    logs();
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("t{}", NEXT.fetch_add(1, Ordering::Relaxed))
}
