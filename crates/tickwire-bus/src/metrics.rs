//! The bus's metrics: names and descriptions in one place.
//!
//! Labels: `bus` (`memory`, `redis`), `channel`, `reason`, `link`
//! (`data`: commands and publishes; `pubsub`: the subscription connection).

/// Updates published, by channel.
pub const PUBLISHED: &str = "tickwire_bus_published_total";
/// Publishes refused or dropped, by reason (`out_of_order`, `overloaded`,
/// `redis_down`, `redis_error`).
pub const PUBLISH_ERRORS: &str = "tickwire_bus_publish_errors_total";
/// Updates received from a remote bus and handed to local subscribers, by
/// channel.
pub const RECEIVED: &str = "tickwire_bus_received_total";
/// Messages received from a remote bus and skipped, by reason (`malformed`).
pub const RECEIVE_ERRORS: &str = "tickwire_bus_receive_errors_total";
/// Connections to a remote bus re-established after a loss, by link.
pub const RECONNECTS: &str = "tickwire_bus_reconnects_total";
/// Whether a link to a remote bus is up (1) or down (0), by link.
pub const CONNECTED: &str = "tickwire_bus_connected";
/// Updates waiting in the publish queue of a remote bus.
pub const PUBLISH_QUEUE_DEPTH: &str = "tickwire_bus_publish_queue_depth";

/// Registers descriptions with the installed recorder.
pub fn describe() {
    metrics::describe_counter!(PUBLISHED, "Updates published on the bus, by channel");
    metrics::describe_counter!(
        PUBLISH_ERRORS,
        "Bus publishes refused or dropped, by reason"
    );
    metrics::describe_counter!(
        RECEIVED,
        "Updates received from a remote bus for local subscribers, by channel"
    );
    metrics::describe_counter!(
        RECEIVE_ERRORS,
        "Messages from a remote bus that were skipped, by reason"
    );
    metrics::describe_counter!(
        RECONNECTS,
        "Connections to a remote bus re-established after a loss, by link"
    );
    metrics::describe_gauge!(
        CONNECTED,
        "Whether a link to a remote bus is up (1) or down (0), by link"
    );
    metrics::describe_gauge!(
        PUBLISH_QUEUE_DEPTH,
        "Updates waiting to be written to a remote bus"
    );
}
