//! A well-behaved client that keeps reading quotes in the background
//! (answering the server's pings), so a test can show that abuse by
//! others leaves it untouched: no close, no error, updates still flowing.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use super::raw::{End, PING, PONG, Raw};

/// The longest a watcher runs: past any test's length.
const LIFETIME: Duration = Duration::from_secs(300);

pub struct Watcher {
    quotes: Arc<AtomicU64>,
    /// What went wrong, if anything: a close, an error message, EOF.
    trouble: Arc<Mutex<Option<String>>>,
    task: JoinHandle<()>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Watcher {
    /// Connects from `bind` (an address in 127.0.0.0/8), subscribes to
    /// the quotes of `symbols`, and waits for the first one.
    pub async fn start(addr: &str, bind: &str, symbols: &[&str]) -> Watcher {
        let mut raw = Raw::connect(addr, Some(bind), "")
            .await
            .unwrap_or_else(|e| panic!("watcher connect: {e:?}"));
        let req = serde_json::json!({"op":"subscribe","channel":"quote","symbols":symbols});
        raw.text(req.to_string()).await;
        let quotes = Arc::new(AtomicU64::new(0));
        let trouble = Arc::new(Mutex::new(None));
        let task = tokio::spawn(run(raw, quotes.clone(), trouble.clone()));
        let watcher = Watcher {
            quotes,
            trouble,
            task,
        };
        watcher.assert_flowing("at start").await;
        watcher
    }

    /// Quotes received so far.
    pub fn quotes(&self) -> u64 {
        self.quotes.load(Ordering::Relaxed)
    }

    /// Panics unless a few more quotes arrive (within a generous bound)
    /// and nothing went wrong.
    pub async fn assert_flowing(&self, when: &str) {
        let before = self.quotes();
        let limit = Instant::now() + Duration::from_secs(30);
        while self.quotes() < before + 3 {
            self.assert_untroubled(when);
            assert!(
                Instant::now() < limit,
                "watcher {when}: no new quotes in 30 s (had {before})"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.assert_untroubled(when);
    }

    fn assert_untroubled(&self, when: &str) {
        if let Some(t) = self.trouble.lock().expect("lock").as_ref() {
            panic!("watcher {when}: {t}");
        }
    }
}

async fn run(mut raw: Raw, quotes: Arc<AtomicU64>, trouble: Arc<Mutex<Option<String>>>) {
    let limit = Instant::now() + LIFETIME;
    let report = |t: String| {
        *trouble.lock().expect("lock") = Some(t);
    };
    while Instant::now() < limit {
        match raw.next(Duration::from_secs(60)).await {
            Ok(frame) if frame.opcode == PING => raw.send(true, PONG, &frame.payload).await,
            Ok(frame) => {
                if let Some(code) = frame.close_code() {
                    return report(format!("closed with {code}"));
                }
                match frame.json() {
                    Some(v) if v["type"] == "quote" => {
                        quotes.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(v) if v["type"] == "error" => return report(format!("error {v}")),
                    _ => {}
                }
            }
            Err(End::Timeout) => return report("silent for 60 s".into()),
            Err(end) => return report(format!("ended: {end:?}")),
        }
    }
}
