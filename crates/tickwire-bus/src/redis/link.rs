//! The command link: one reconnecting connection for publishes and
//! queries (a `ConnectionManager` on one server, the cluster connection on
//! a cluster), and the prober that notices outages and brings the link back
//! with backoff. While the link is down every operation fails at once
//! instead of waiting on a dead server.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::future::join_all;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, Value};
use tokio::sync::Notify;

use super::backoff::Backoff;
use super::health::{Health, Link};
use crate::{Error, Result};

/// Longest wait for one connection attempt.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest wait for one command or pipeline: past it the link counts as
/// down (a hung server is as useless as a dead one).
pub(crate) const OP_TIMEOUT: Duration = Duration::from_secs(3);
/// How often an idle, healthy link is checked.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// Where Redis is, validated.
#[derive(Clone, Debug)]
pub(crate) enum Endpoint {
    /// One server.
    Single(redis::Client),
    /// Seed nodes of a cluster, as `redis://` URLs.
    Cluster(Vec<String>),
}

impl Endpoint {
    /// Whether this is a cluster (sharded pub/sub).
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Endpoint::Cluster(_))
    }

    /// A cluster client; `resp3` with a push sender for pub/sub.
    pub(crate) fn cluster_builder(nodes: &[String]) -> redis::cluster::ClusterClientBuilder {
        redis::cluster::ClusterClientBuilder::new(nodes.to_vec())
            .retries(1)
            .connection_timeout(CONNECT_TIMEOUT)
            .response_timeout(OP_TIMEOUT)
    }
}

/// A connection for commands, cheap to clone (both kinds multiplex).
#[derive(Clone)]
pub(crate) enum DataConn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for DataConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            DataConn::Single(c) => c.req_packed_command(cmd),
            DataConn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            DataConn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            DataConn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            DataConn::Single(c) => c.get_db(),
            DataConn::Cluster(c) => c.get_db(),
        }
    }
}

/// Checks that every master of the cluster answers and reports
/// `cluster_state:ok`. A plain PING is not enough: the cluster client
/// routes around nodes it cannot reach, so it would pass with a shard down.
pub(crate) async fn check_cluster(conn: &mut ClusterConnection) -> std::result::Result<(), String> {
    let slots: Value = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async(conn)
        .await
        .map_err(|e| e.to_string())?;
    let masters = cluster_masters(&slots);
    if masters.is_empty() {
        return Err("the cluster has no slots assigned".into());
    }
    let checks = masters.into_iter().map(|(host, port)| {
        let mut conn = conn.clone();
        async move {
            let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                host: host.clone(),
                port,
            });
            let mut info = redis::cmd("CLUSTER");
            info.arg("INFO");
            let reply = conn
                .route_command(info, routing)
                .await
                .map_err(|e| format!("node {host}:{port}: {e}"))?;
            if text(&reply).is_some_and(|t| t.contains("cluster_state:ok")) {
                Ok(())
            } else {
                Err(format!("node {host}:{port} reports the cluster is not ok"))
            }
        }
    });
    join_all(checks).await.into_iter().collect()
}

/// The `(host, port)` of every slot range's master in a `CLUSTER SLOTS`
/// reply.
fn cluster_masters(slots: &Value) -> BTreeSet<(String, u16)> {
    let Value::Array(ranges) = slots else {
        return BTreeSet::new();
    };
    ranges
        .iter()
        .filter_map(|range| match range {
            Value::Array(parts) => match parts.get(2) {
                Some(Value::Array(master)) => {
                    let host = master.first().and_then(text)?;
                    let port = match master.get(1) {
                        Some(Value::Int(p)) => u16::try_from(*p).ok()?,
                        _ => return None,
                    };
                    Some((host, port))
                }
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        _ => None,
    }
}

/// Whether an error means the server (or the way to it) is gone, as
/// opposed to a command the server refused.
pub(crate) fn is_connection_error(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
        || e.is_cluster_error()
        || e.kind() == ErrorKind::ClusterConnectionNotFound
}

/// The command link and its health.
pub(crate) struct DataLink {
    endpoint: Endpoint,
    /// Always `Some` on one server (the manager reconnects by itself); on a
    /// cluster, `None` until the prober has built a connection.
    conn: RwLock<Option<DataConn>>,
    /// Operations fail fast while this is false.
    up: AtomicBool,
    /// Wakes the prober when an operation found the link broken.
    failed: Notify,
    health: Arc<Health>,
}

impl DataLink {
    pub(crate) fn new(endpoint: Endpoint, health: Arc<Health>) -> Result<Self> {
        let conn = match &endpoint {
            Endpoint::Single(client) => {
                // One attempt per command: the prober paces the retries.
                let config = ConnectionManagerConfig::new()
                    .set_number_of_retries(0)
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(OP_TIMEOUT));
                let manager = ConnectionManager::new_lazy_with_config(client.clone(), config)
                    .map_err(|e| Error::Config(format!("redis client: {e}")))?;
                Some(DataConn::Single(manager))
            }
            Endpoint::Cluster(_) => None,
        };
        Ok(Self {
            endpoint,
            conn: RwLock::new(conn),
            up: AtomicBool::new(false),
            failed: Notify::new(),
            health,
        })
    }

    /// Whether operations are attempted now.
    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// The connection, or `Unavailable` at once while the link is down.
    pub(crate) fn conn(&self) -> Result<DataConn> {
        if !self.is_up() {
            return Err(Error::Unavailable("redis is unreachable".into()));
        }
        read(&self.conn)
            .clone()
            .ok_or_else(|| Error::Unavailable("redis is unreachable".into()))
    }

    /// Records a failed operation: a connection-level failure takes the
    /// link down until the prober sees it back.
    pub(crate) fn report(&self, e: &RedisError) {
        if is_connection_error(e) {
            self.set_down(e);
        }
    }

    /// Records an operation that got no answer in time.
    pub(crate) fn report_timeout(&self) {
        self.set_down(&format_args!("no answer within {OP_TIMEOUT:?}"));
    }

    fn set_down(&self, why: &dyn std::fmt::Display) {
        self.up.store(false, Ordering::Release);
        self.health.down(Link::Data, why);
        self.failed.notify_one();
    }

    /// Runs one operation on the link, bounded by [`OP_TIMEOUT`].
    pub(crate) async fn call<T, F, Fut>(&self, op: F) -> Result<T>
    where
        F: FnOnce(DataConn) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let conn = self.conn()?;
        match tokio::time::timeout(OP_TIMEOUT, op(conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                self.report(&e);
                Err(Error::Unavailable(e.to_string()))
            }
            Err(_) => {
                self.report_timeout();
                Err(Error::Unavailable(format!(
                    "redis did not answer within {OP_TIMEOUT:?}"
                )))
            }
        }
    }

    /// Keeps the link's health true to the server's: checks a healthy link
    /// every second (or at once when an operation failed), and retries a
    /// down one with backoff. Runs until the bus is dropped.
    pub(crate) async fn probe_forever(self: Arc<Self>) {
        let mut backoff = Backoff::default();
        let mut first = true;
        loop {
            if self.is_up() {
                tokio::select! {
                    () = tokio::time::sleep(PROBE_EVERY) => {}
                    () = self.failed.notified() => {}
                }
                if !self.is_up() {
                    continue;
                }
            } else if !first {
                tokio::time::sleep(backoff.next_delay()).await;
            }
            first = false;
            match self.probe().await {
                Ok(()) => {
                    backoff.reset();
                    if !self.up.swap(true, Ordering::AcqRel) {
                        self.health.up(Link::Data);
                    }
                }
                Err(why) => self.set_down(&why),
            }
        }
    }

    /// One check: builds the cluster connection if there is none, then
    /// PINGs the server, or checks every master of the cluster.
    async fn probe(&self) -> std::result::Result<(), String> {
        let current = read(&self.conn).clone();
        let conn = match (&self.endpoint, current) {
            (_, Some(conn)) => conn,
            (Endpoint::Cluster(nodes), None) => {
                let client = Endpoint::cluster_builder(nodes)
                    .build()
                    .map_err(|e| e.to_string())?;
                let conn = tokio::time::timeout(CONNECT_TIMEOUT * 3, client.get_async_connection())
                    .await
                    .map_err(|_| "cluster connection timed out".to_string())?
                    .map_err(|e| e.to_string())?;
                let conn = DataConn::Cluster(conn);
                *write(&self.conn) = Some(conn.clone());
                conn
            }
            (Endpoint::Single(_), None) => return Err("no connection".into()),
        };
        let check = async {
            match conn {
                DataConn::Cluster(mut c) => check_cluster(&mut c).await,
                mut single => redis::cmd("PING")
                    .query_async::<Value>(&mut single)
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string()),
            }
        };
        let outcome = tokio::time::timeout(OP_TIMEOUT, check)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {OP_TIMEOUT:?}")));
        if outcome.is_err() {
            self.forget_cluster_conn();
        }
        outcome
    }

    /// A cluster connection that failed a check is rebuilt from the seed
    /// nodes on the next one (the topology may have changed).
    fn forget_cluster_conn(&self) {
        if self.endpoint.is_cluster() {
            *write(&self.conn) = None;
        }
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}
