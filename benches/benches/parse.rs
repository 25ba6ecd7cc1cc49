//! Venue frame → canonical events: what ingest pays per received frame
//! (`Adapter::on_text`: JSON decode, dispatch, decimals, the `Event`, and
//! for books the sync check, the level updates and the published top),
//! with simd-json and with the serde_json baseline side by side in the
//! same run, over the same wire types.
//!
//! One row per (venue, message type, fixture frame); a venue joins with
//! one line per message type in [`rows`].

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use tickwire_ingest::FeedsConfig;
use tickwire_ingest::adapter::{Adapter, Output};
use tickwire_ingest::feed::VenueFeed;
use tickwire_ingest::json::Backend;
use tickwire_ingest::venue::binance::BinanceAdapter;
use tickwire_ingest::venue::bybit::BybitAdapter;
use tickwire_ingest::venue::coinbase::CoinbaseAdapter;
use tickwire_ingest::venue::kraken::KrakenAdapter;
use tickwire_ingest::venue::okx::OkxAdapter;
use tickwire_model::Instrument;

const BINANCE_FEED: &str = include_str!("../../feeds/binance/feed.toml");
const COINBASE_FEED: &str = include_str!("../../feeds/coinbase/feed.toml");
const KRAKEN_FEED: &str = include_str!("../../feeds/kraken/feed.toml");
const OKX_FEED: &str = include_str!("../../feeds/okx/feed.toml");
const BYBIT_FEED: &str = include_str!("../../feeds/bybit/feed.toml");

/// The frames one row feeds.
enum Frames {
    /// The same frame every iteration (stateless message types).
    Fixed(&'static str),
    /// Frame `n` of a sequence (book diffs whose update ids must rise to
    /// keep the book synced), built outside the measured time.
    Sequence(fn(u64) -> String),
}

/// One measured message type.
struct Row {
    venue: &'static str,
    message: &'static str,
    /// A fresh adapter with this backend, in the state the frames need
    /// (e.g. its book already synced from a snapshot).
    adapter: fn(Backend) -> Box<dyn Adapter>,
    frames: Frames,
}

fn row(
    venue: &'static str,
    message: &'static str,
    adapter: fn(Backend) -> Box<dyn Adapter>,
    frames: Frames,
) -> Row {
    Row {
        venue,
        message,
        adapter,
        frames,
    }
}

/// The measured table. A venue joins with one line per message type, e.g.
/// `row("okx", "trade", |b| Box::new(OkxAdapter::with_backend(&feed(OKX_FEED), b)), Fixed(include_str!("../../feeds/okx/fixtures/trade.json"))),`
/// (with `const OKX_FEED: &str = include_str!("../../feeds/okx/feed.toml");`).
#[rustfmt::skip]
fn rows() -> Vec<Row> {
    use Frames::*;
    vec![
        row("binance", "trade", binance, Fixed(include_str!("../../feeds/binance/fixtures/trade.json"))),
        row("binance", "agg_trade", binance, Fixed(include_str!("../../feeds/binance/fixtures/agg_trade.json"))),
        row("binance", "combined_trade", binance, Fixed(include_str!("../../feeds/binance/fixtures/combined_trade.json"))),
        row("binance", "book_ticker", binance, Fixed(include_str!("../../feeds/binance/fixtures/book_ticker.json"))),
        row("binance", "ticker", binance, Fixed(include_str!("../../feeds/binance/fixtures/ticker.json"))),
        row("binance", "depth_update", binance_synced, Sequence(binance_diff)),
        row("coinbase", "match", |b| Box::new(CoinbaseAdapter::with_backend(&feed(COINBASE_FEED), b)), Fixed(include_str!("../../feeds/coinbase/fixtures/match.json"))),
        row("coinbase", "ticker", |b| Box::new(CoinbaseAdapter::with_backend(&feed(COINBASE_FEED), b)), Fixed(include_str!("../../feeds/coinbase/fixtures/ticker.json"))),
        row("coinbase", "heartbeat", |b| Box::new(CoinbaseAdapter::with_backend(&feed(COINBASE_FEED), b)), Fixed(include_str!("../../feeds/coinbase/fixtures/heartbeat.json"))),
        row("kraken", "trade", |b| Box::new(KrakenAdapter::with_backend(&feed(KRAKEN_FEED), b)), Fixed(include_str!("../../feeds/kraken/fixtures/trade.json"))),
        row("kraken", "ticker", |b| Box::new(KrakenAdapter::with_backend(&feed(KRAKEN_FEED), b)), Fixed(include_str!("../../feeds/kraken/fixtures/ticker.json"))),
        row("okx", "trade", |b| Box::new(OkxAdapter::with_backend(&feed(OKX_FEED), b)), Fixed(include_str!("../../feeds/okx/fixtures/trade.json"))),
        row("okx", "ticker", |b| Box::new(OkxAdapter::with_backend(&feed(OKX_FEED), b)), Fixed(include_str!("../../feeds/okx/fixtures/ticker.json"))),
        row("bybit", "trade", |b| Box::new(BybitAdapter::with_backend(&feed(BYBIT_FEED), b)), Fixed(include_str!("../../feeds/bybit/fixtures/trade.json"))),
        row("bybit", "tickers", |b| Box::new(BybitAdapter::with_backend(&feed(BYBIT_FEED), b)), Fixed(include_str!("../../feeds/bybit/fixtures/tickers.json"))),
    ]
}

/// A venue's feed definition from its feed file.
fn feed(text: &str) -> VenueFeed {
    FeedsConfig::parse(text)
        .ok()
        .and_then(|c| c.venue().cloned())
        .unwrap_or_else(|| unreachable!("the committed feed file is valid"))
}

fn binance(backend: Backend) -> Box<dyn Adapter> {
    Box::new(BinanceAdapter::with_backend(&feed(BINANCE_FEED), backend))
}

/// The first update id [`binance_diff`] uses; the snapshot is just before.
const BINANCE_FIRST_ID: u64 = 58_392_217_000;

/// A Binance adapter whose BTCUSDT book is synced from a 50-level REST
/// snapshot at `BINANCE_FIRST_ID - 1`.
fn binance_synced(backend: Backend) -> Box<dyn Adapter> {
    let mut a = binance(backend);
    let mut out = Output::default();
    let level = |px: u64, qty: u64| {
        format!(
            r#"["{}.{:02}000000","{}.{:08}"]"#,
            px / 100,
            px % 100,
            qty / 100_000_000,
            qty % 100_000_000
        )
    };
    let bids: Vec<String> = (0..50)
        .map(|k| level(7_021_344 - k * 3, 10_000_000 + k * 1_234_567))
        .collect();
    let asks: Vec<String> = (0..50)
        .map(|k| level(7_021_345 + k * 3, 20_000_000 + k * 7_654_321))
        .collect();
    let snapshot = format!(
        r#"{{"lastUpdateId":{},"bids":[{}],"asks":[{}]}}"#,
        BINANCE_FIRST_ID - 1,
        bids.join(","),
        asks.join(",")
    );
    let btc = Instrument::parse("binance:BTC-USDT").unwrap_or_else(|_| unreachable!("literal"));
    let buffered = a.on_text(&binance_diff(0), 1, &mut out);
    let synced = a.on_rest(&btc, &snapshot, 2, &mut out);
    assert!(
        buffered.is_ok() && synced.is_ok() && out.books.len() == 1,
        "book synced"
    );
    a
}

/// Diff `n` of a contiguous stream: one id each; it resizes the best bid
/// and a level below, removes and re-adds one, and resizes an ask, so the
/// published top changes every frame (the worst case: a book event per
/// diff).
fn binance_diff(n: u64) -> String {
    let id = BINANCE_FIRST_ID + n;
    let qty = 100_000 + n % 1000;
    let gone = if n % 2 == 0 {
        "0.00000000"
    } else {
        "0.25000000"
    };
    format!(
        r#"{{"e":"depthUpdate","E":1730419200200,"s":"BTCUSDT","U":{id},"u":{id},"b":[["70213.44000000","1.{qty:08}"],["70213.35000000","{gone}"],["70213.20000000","0.{qty:08}"]],"a":[["70213.45000000","0.{qty:08}"]]}}"#
    )
}

fn parse(c: &mut Criterion) {
    for row in rows() {
        let mut group = c.benchmark_group(format!("parse/{}/{}", row.venue, row.message));
        group.throughput(Throughput::Elements(1));
        for (name, backend) in [("simd", Backend::Simd), ("serde", Backend::Serde)] {
            let mut adapter = (row.adapter)(backend);
            let mut out = Output::default();
            match &row.frames {
                Frames::Fixed(frame) => {
                    // Same checks the benches rely on: the frame is good.
                    assert!(
                        adapter.on_text(frame, 1, &mut out).is_ok(),
                        "{}",
                        row.message
                    );
                    group.bench_function(name, |b| {
                        b.iter(|| {
                            out.clear();
                            let r =
                                adapter.on_text(black_box(frame), 1_730_419_200_125_777, &mut out);
                            black_box((&r, &out.events));
                        })
                    });
                }
                Frames::Sequence(make) => {
                    // Frame 0 was buffered before the snapshot; ids go on
                    // rising through criterion's warm-up and samples.
                    let mut n = 0u64;
                    group.bench_function(name, |b| {
                        b.iter_batched_ref(
                            || {
                                n += 1;
                                make(n)
                            },
                            |frame| {
                                out.clear();
                                let r = adapter.on_text(frame, 1_730_419_200_125_777, &mut out);
                                black_box((&r, &out.events));
                            },
                            BatchSize::SmallInput,
                        )
                    });
                    // Every diff applied: the next one still publishes.
                    out.clear();
                    let r = adapter.on_text(&make(n + 1), 1, &mut out);
                    assert!(
                        r.is_ok() && out.books.is_empty() && out.events.len() == 1,
                        "{}: the book did not stay synced",
                        row.message
                    );
                }
            }
        }
        group.finish();
    }
}

criterion_group!(benches, parse);
criterion_main!(benches);
