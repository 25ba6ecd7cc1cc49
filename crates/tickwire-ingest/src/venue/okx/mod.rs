//! Okx adapter (work in progress: being built in this issue).

pub mod fake;
mod messages;
mod parse;

use std::time::Duration;

use crate::adapter::{Adapter, FrameError, Limits, Output};
use crate::feed::VenueFeed;

/// What Okx allows and expects of a connection.
pub const LIMITS: Limits = Limits {
    messages_per_sec: 5,
    max_streams: 1024,
    streams_per_instrument: 4,
    silence: Duration::from_secs(30),
    keepalive: Duration::from_secs(20),
    max_lifetime: None,
};

/// One Okx connection's protocol state.
pub struct OkxAdapter {
    feed: VenueFeed,
}

impl OkxAdapter {
    /// A fresh adapter for a connection of `feed`.
    pub fn new(feed: &VenueFeed) -> Self {
        Self { feed: feed.clone() }
    }
}

impl Adapter for OkxAdapter {
    fn subscribe(&mut self) -> Vec<String> {
        let _ = &self.feed;
        Vec::new()
    }

    fn on_text(&mut self, _frame: &str, _rx: u64, _out: &mut Output) -> Result<(), FrameError> {
        Ok(())
    }
}
