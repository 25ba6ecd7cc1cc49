//! The bus's metrics: names and descriptions in one place.

/// Updates published, by channel.
pub const PUBLISHED: &str = "tickwire_bus_published_total";
/// Publishes refused or dropped, by reason.
pub const PUBLISH_ERRORS: &str = "tickwire_bus_publish_errors_total";

/// Registers descriptions with the installed recorder.
pub fn describe() {
    metrics::describe_counter!(PUBLISHED, "Updates published on the bus, by channel");
    metrics::describe_counter!(
        PUBLISH_ERRORS,
        "Bus publishes refused or dropped, by reason"
    );
}
