//! The gateway's metrics: every name, its description, and the
//! pre-resolved handles the hot path increments (no label lookups per update).

use std::sync::OnceLock;

use metrics::{Counter, Gauge, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tickwire_model::Channel;

/// Open client connections.
pub const CONNECTIONS: &str = "tickwire_gateway_connections";
/// Connections accepted (WebSocket sessions started).
pub const CONNECTIONS_OPENED: &str = "tickwire_gateway_connections_opened_total";
/// Connections closed, by reason.
pub const CONNECTIONS_CLOSED: &str = "tickwire_gateway_connections_closed_total";
/// WebSocket upgrades refused by a limit, by reason.
pub const UPGRADES_REFUSED: &str = "tickwire_gateway_upgrades_refused_total";
/// Reasons of [`UPGRADES_REFUSED`].
pub const REFUSAL_REASONS: [&str; 3] = ["max_connections", "max_connections_per_ip", "origin"];
/// Active subscriptions over all connections.
pub const SUBSCRIPTIONS: &str = "tickwire_gateway_subscriptions";
/// Topics this gateway is subscribed to on the bus.
pub const BUS_TOPICS: &str = "tickwire_gateway_bus_topics";
/// Updates received from the bus, by channel.
pub const UPDATES_IN: &str = "tickwire_gateway_updates_in_total";
/// Updates offered to client outboxes, by channel.
pub const UPDATES_OUT: &str = "tickwire_gateway_updates_out_total";
/// Frames written to sockets.
pub const FRAMES_WRITTEN: &str = "tickwire_gateway_frames_written_total";
/// Unsent values replaced by newer ones.
pub const CONFLATED: &str = "tickwire_gateway_conflated_total";
/// `gap` notices sent.
pub const GAPS: &str = "tickwire_gateway_gaps_total";
/// Trades dropped from full client queues.
pub const TRADES_DROPPED: &str = "tickwire_gateway_trades_dropped_total";
/// Bus subscription lag events (updates skipped before the hub saw them).
pub const BUS_LAGGED: &str = "tickwire_gateway_bus_lagged_total";
/// Frames an outbox still held after a writer pass, when it held any.
pub const OUTBOX_DEPTH: &str = "tickwire_gateway_outbox_depth";
/// Connections closed as slow consumers.
pub const SLOW_CONSUMER_CLOSES: &str = "tickwire_gateway_slow_consumer_closes_total";
/// Client requests, by op.
pub const REQUESTS: &str = "tickwire_gateway_requests_total";
/// Error replies, by code.
pub const ERRORS: &str = "tickwire_gateway_errors_total";
/// Ingest receive to gateway receive, seconds.
pub const INGEST_TO_GATEWAY: &str = "tickwire_gateway_ingest_to_gateway_seconds";
/// First ready frame to its socket flush, seconds.
pub const GATEWAY_TO_SOCKET: &str = "tickwire_gateway_socket_write_seconds";

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// How often recorded histogram samples are folded into their buckets.
/// The recorder keeps every sample until then: without upkeep a gateway
/// nobody scrapes grows by about 16 bytes per sample (about 2 MiB/s at
/// 75 000 deliveries/s).
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Installs the Prometheus recorder for this process (once; later calls
/// return the same handle). `None` if another recorder was installed first.
pub fn install_metrics() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("_seconds".into()),
                    tickwire_metrics::LATENCY_BUCKETS,
                )
                .ok()?;
            let handle = builder.install_recorder().ok()?;
            describe();
            // Series that are otherwise created on first use exist from
            // the start, so a dashboard shows 0 rather than "no data".
            metrics::gauge!(CONNECTIONS).increment(0.0);
            metrics::counter!(CONNECTIONS_OPENED).increment(0);
            metrics::counter!(SLOW_CONSUMER_CLOSES).increment(0);
            for reason in REFUSAL_REASONS {
                metrics::counter!(UPGRADES_REFUSED, "reason" => reason).increment(0);
            }
            for reason in crate::outbox::CloseReason::ALL {
                metrics::counter!(CONNECTIONS_CLOSED, "reason" => reason.as_str()).increment(0);
            }
            let upkeep = handle.clone();
            // A plain thread: the recorder may be installed before (or
            // outlive) any runtime, and upkeep is a short lock-free drain.
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_EVERY);
                        upkeep.run_upkeep();
                    }
                })
                .ok()?;
            Some(handle)
        })
        .as_ref()
}

/// The Prometheus text of every metric: the recorder's (if this process
/// installed ours) and the fixed-bucket histograms of the hot paths.
pub fn render_metrics() -> String {
    let mut text = HANDLE
        .get()
        .and_then(Option::as_ref)
        .map(PrometheusHandle::render)
        .unwrap_or_default();
    tickwire_metrics::render_into(&mut text);
    text
}

fn describe() {
    use metrics::{describe_counter as c, describe_gauge as g};
    g!(CONNECTIONS, "Open client WebSocket connections");
    c!(CONNECTIONS_OPENED, "Client WebSocket connections opened");
    c!(CONNECTIONS_CLOSED, "Client connections closed, by reason");
    c!(
        UPGRADES_REFUSED,
        "WebSocket upgrades refused by a connection limit or the Origin list, by reason"
    );
    g!(SUBSCRIPTIONS, "Active client subscriptions");
    g!(
        BUS_TOPICS,
        "Topics this gateway is subscribed to on the bus"
    );
    c!(UPDATES_IN, "Updates received from the bus, by channel");
    c!(
        UPDATES_OUT,
        "Updates offered to client outboxes, by channel"
    );
    c!(FRAMES_WRITTEN, "Frames written to client sockets");
    c!(
        CONFLATED,
        "Unsent values replaced by a newer one (conflation)"
    );
    c!(GAPS, "gap notices sent to clients");
    c!(
        TRADES_DROPPED,
        "Trades dropped from full client queues, each covered by a gap"
    );
    c!(
        BUS_LAGGED,
        "Updates the hub missed because it lagged behind the bus"
    );
    c!(
        SLOW_CONSUMER_CLOSES,
        "Connections closed because the client did not read"
    );
    c!(REQUESTS, "Client requests, by op");
    c!(ERRORS, "Error replies sent, by code");
}

/// Handles the hub's fan-out uses, one per channel.
pub(crate) struct HubMetrics {
    pub(crate) updates_in: [Counter; 4],
    pub(crate) updates_out: [Counter; 4],
    pub(crate) ingest_to_gateway: Histogram,
    pub(crate) lagged: Counter,
    pub(crate) bus_topics: Gauge,
    pub(crate) subscriptions: Gauge,
}

impl HubMetrics {
    pub(crate) fn new() -> Self {
        let per_channel = |name: &'static str| {
            Channel::ALL.map(|c| metrics::counter!(name, "channel" => c.as_str()))
        };
        Self {
            updates_in: per_channel(UPDATES_IN),
            updates_out: per_channel(UPDATES_OUT),
            ingest_to_gateway: tickwire_metrics::latency(
                INGEST_TO_GATEWAY,
                "Latency from ingest receive (rx) to gateway receive from the bus, seconds",
                &[],
            ),
            lagged: metrics::counter!(BUS_LAGGED),
            bus_topics: metrics::gauge!(BUS_TOPICS),
            subscriptions: metrics::gauge!(SUBSCRIPTIONS),
        }
    }
}

/// Handles a connection's writer uses.
pub(crate) struct WriterMetrics {
    pub(crate) frames: Counter,
    pub(crate) conflated: Counter,
    pub(crate) gaps: Counter,
    pub(crate) trades_dropped: Counter,
    pub(crate) depth: Histogram,
    pub(crate) write_latency: Histogram,
}

impl WriterMetrics {
    pub(crate) fn new() -> Self {
        Self {
            frames: metrics::counter!(FRAMES_WRITTEN),
            conflated: metrics::counter!(CONFLATED),
            gaps: metrics::counter!(GAPS),
            trades_dropped: metrics::counter!(TRADES_DROPPED),
            depth: tickwire_metrics::histogram(
                OUTBOX_DEPTH,
                "Frames left in a connection's outbox after a writer pass that could not send them all (backlog; passes that emptied it are not sampled)",
                &[],
                tickwire_metrics::DEPTH_BUCKETS,
                1.0,
            ),
            write_latency: tickwire_metrics::latency(
                GATEWAY_TO_SOCKET,
                "Latency from a frame becoming ready to its socket flush, seconds",
                &[],
            ),
        }
    }
}
