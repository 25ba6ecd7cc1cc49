//! Order-book upkeep for the venue adapters: the L2 [`Book`], Kraken's CRC-32
//! [`kraken_checksum`], and the sequence checkers that say whether a venue's
//! next book message may be applied ([`BinanceSync`], [`OkxSeq`], [`BybitSeq`]).
//!
//! Pure and synchronous: values in, verdicts out; no I/O, no clock, no
//! runtime. Prices and sizes stay `Decimal`s with the scale of the venue's
//! text, so a level reads back, and checksums, exactly as the venue wrote it.

use std::collections::{BTreeMap, VecDeque};

use rust_decimal::Decimal;
use tickwire_model::{BookTop, Level};

/// One instrument's L2 book: price levels per side, each kept exactly as the
/// venue last gave it (price and size with their scale).
///
/// Sizes are absolute (not deltas) and never negative; a zero size, whatever
/// its scale (`0`, `0.00000000`), removes the level.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Book {
    // Keyed by price value for ordering. The level itself is the value, not
    // the key, because a map keeps the first key it was given: a venue
    // re-sending `45283.50` after `45283.5` must be written back (and
    // checksummed) as `45283.50`.
    bids: BTreeMap<Decimal, Level>,
    asks: BTreeMap<Decimal, Level>,
}

impl Book {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }

    /// Removes every level, keeping nothing from before (a snapshot or reset
    /// follows).
    pub fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
    }

    /// Sets the bid at `price` to `size`; a zero size removes it (removing an
    /// absent level is a no-op, as venues send such removals routinely).
    pub fn apply_bid(&mut self, price: Decimal, size: Decimal) {
        apply(&mut self.bids, price, size);
    }

    /// Sets the ask at `price` to `size`; a zero size removes it (removing an
    /// absent level is a no-op).
    pub fn apply_ask(&mut self, price: Decimal, size: Decimal) {
        apply(&mut self.asks, price, size);
    }

    /// Drops every level beyond the best `depth` on each side: Kraken pushes
    /// levels out of the subscribed window without deleting them explicitly.
    pub fn truncate(&mut self, depth: usize) {
        // Usually one level falls out per update, so popping beats splitting.
        while self.bids.len() > depth {
            self.bids.pop_first();
        }
        while self.asks.len() > depth {
            self.asks.pop_last();
        }
    }

    /// The highest bid.
    pub fn best_bid(&self) -> Option<Level> {
        self.bids.values().next_back().copied()
    }

    /// The lowest ask.
    pub fn best_ask(&self) -> Option<Level> {
        self.asks.values().next().copied()
    }

    /// Whether the best bid is at or above the best ask (false when a side is
    /// empty): a sign the book has drifted from the venue's.
    pub fn is_crossed(&self) -> bool {
        match (self.best_bid(), self.best_ask()) {
            (Some((bid, _)), Some((ask, _))) => bid >= ask,
            _ => false,
        }
    }

    /// The best `n` levels per side: bids highest first, asks lowest first.
    pub fn top(&self, n: usize) -> BookTop {
        BookTop {
            bids: self.bids().take(n).collect(),
            asks: self.asks().take(n).collect(),
        }
    }

    /// Bids, highest first.
    pub fn bids(&self) -> impl Iterator<Item = Level> + '_ {
        self.bids.values().rev().copied()
    }

    /// Asks, lowest first.
    pub fn asks(&self) -> impl Iterator<Item = Level> + '_ {
        self.asks.values().copied()
    }

    /// Number of bid levels.
    pub fn bid_len(&self) -> usize {
        self.bids.len()
    }

    /// Number of ask levels.
    pub fn ask_len(&self) -> usize {
        self.asks.len()
    }

    /// Whether both sides are empty.
    pub fn is_empty(&self) -> bool {
        self.bids.is_empty() && self.asks.is_empty()
    }
}

fn apply(side: &mut BTreeMap<Decimal, Level>, price: Decimal, size: Decimal) {
    // `is_zero` looks at the value, so `0.00000000` removes like `0`.
    if size.is_zero() {
        side.remove(&price);
    } else {
        side.insert(price, (price, size));
    }
}

/// Levels per side that Kraken's book checksum covers, whatever the depth.
pub const KRAKEN_CHECKSUM_LEVELS: usize = 10;

/// Kraken's book checksum (WebSocket v2): CRC-32 (IEEE) over the top 10 asks
/// best first, then the top 10 bids best first, each level written as its
/// price then its size, each without the `.` and without leading zeros.
///
/// Equals the `checksum` of a Kraken book message once all its levels are
/// applied and the book truncated to the subscribed depth. Only right if the
/// levels keep the wire's scale (`0.10000000`, not `0.1`).
pub fn kraken_checksum(book: &Book) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    let asks = book.asks().take(KRAKEN_CHECKSUM_LEVELS);
    let bids = book.bids().take(KRAKEN_CHECKSUM_LEVELS);
    for (price, size) in asks.chain(bids) {
        hash_digits(&mut hasher, price);
        hash_digits(&mut hasher, size);
    }
    hasher.finalize()
}

/// Feeds the checksum text of one number: its wire text without `.` and
/// leading zeros.
fn hash_digits(hasher: &mut crc32fast::Hasher, value: Decimal) {
    // A Decimal parsed from text keeps its scale, so that text without the
    // `.` and leading zeros is exactly the mantissa's digits (`0.00100000` is
    // 100000e-8): no formatting or allocation needed. Zero strips to nothing.
    // Kraken prices and sizes are never negative, so the sign is not written.
    let mut n = value.mantissa().unsigned_abs();
    // A 96-bit mantissa has at most 29 digits.
    let mut digits = [0u8; 40];
    let mut start = digits.len();
    while n > 0 {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    hasher.update(&digits[start..]);
}

/// Diffs buffered by default while a [`BinanceSync`] waits for a REST
/// snapshot: at `@depth@100ms` that is over 15 minutes of one symbol's stream,
/// far more than a snapshot takes, yet a bounded few megabytes.
pub const BINANCE_MAX_BUFFERED: usize = 10_000;

/// One Binance diff-depth event (`<symbol>@depth@100ms`), parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BinanceDiff {
    /// `U`: the first update id in this event.
    pub first_update_id: u64,
    /// `u`: the final update id in this event.
    pub final_update_id: u64,
    /// `b`: bid levels to set, in wire order (size zero removes).
    pub bids: Vec<Level>,
    /// `a`: ask levels to set, in wire order (size zero removes).
    pub asks: Vec<Level>,
}

/// A Binance REST depth snapshot (`GET /api/v3/depth`), parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BinanceSnapshot {
    /// `lastUpdateId`: the last update id the snapshot includes.
    pub last_update_id: u64,
    /// Bid levels.
    pub bids: Vec<Level>,
    /// Ask levels.
    pub asks: Vec<Level>,
}

/// What a [`BinanceSync`] did with a diff or snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinanceVerdict {
    /// The book changed: publish its top.
    Applied,
    /// No book yet: the diff is kept until a snapshot arrives.
    Buffered,
    /// Already in the book (a diff with `u <= local id`, or a snapshot no
    /// newer than the book): ignored.
    Stale,
    /// The book is gone (cleared) and diffs buffer again: fetch a new REST
    /// snapshot. If a book had been published, consumers must learn it
    /// restarted.
    Resync(BinanceResync),
}

/// Why a [`BinanceSync`] needs a new snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinanceResync {
    /// No diff bridges the snapshot: the first one after it starts past
    /// `lastUpdateId + 1` (the snapshot is older than the stream, or the
    /// stream skipped right after it). Routine while starting up.
    SnapshotTooOld {
        /// The snapshot's `lastUpdateId`.
        last_update_id: u64,
        /// `U` of the first diff it had to meet.
        first_update_id: u64,
    },
    /// The stream skipped ids after the book was bridged: a real gap.
    Gap {
        /// The update id the next diff had to cover (`local + 1`).
        expected: u64,
        /// `U` of the diff that came instead.
        first_update_id: u64,
    },
    /// The buffer hit its bound before a usable snapshot came; the older
    /// diffs were dropped and buffering restarted from the newest.
    Overflow {
        /// The bound.
        max_buffered: usize,
    },
}

/// Keeps a Binance book from the diff-depth stream and REST snapshots (the
/// recipe of the Binance Spot docs, corrected in 2024).
///
/// Rules, in order:
/// 1. Before a snapshot, diffs are buffered (bounded; overflow drops the
///    buffer, keeps the newest diff and asks for a snapshot).
/// 2. A snapshot older than the first buffered diff (`lastUpdateId + 1 < U`)
///    is refused: fetch another; the buffer is kept.
/// 3. Otherwise the book becomes the snapshot (`local := lastUpdateId`) and
///    the buffer replays through the live rules below, so diffs with
///    `u <= lastUpdateId` drop and the first survivor must straddle
///    `U <= lastUpdateId + 1 <= u`.
/// 4. Live, per diff: `u <= local` is stale; `U > local + 1` is a gap (or, for
///    the first diff after the snapshot, a snapshot too old): the book is
///    cleared and this diff starts a new buffer; else every level is applied
///    and `local := u`.
/// 5. A snapshot while synced replaces the book only if newer than `local`.
///
/// Binance's step 3 refuses a snapshot when `lastUpdateId < U`; rule 2 also
/// accepts `lastUpdateId == U - 1`, which the straddle rule allows and which
/// is exactly the state before `U`.
#[derive(Clone, Debug)]
pub struct BinanceSync {
    book: Book,
    /// Diffs waiting for a snapshot, oldest first; empty while synced.
    buffer: VecDeque<BinanceDiff>,
    max_buffered: usize,
    /// Set once a snapshot is loaded; `None` while waiting for one.
    synced: Option<Synced>,
}

#[derive(Clone, Copy, Debug)]
struct Synced {
    /// The update id the book is at.
    local: u64,
    /// Whether a diff has been applied on top of the snapshot yet: until
    /// then a skip means the snapshot was too old, not that the stream lost
    /// updates.
    bridged: bool,
}

impl Default for BinanceSync {
    fn default() -> Self {
        Self::new()
    }
}

impl BinanceSync {
    /// A sync with no book, buffering up to [`BINANCE_MAX_BUFFERED`] diffs.
    pub fn new() -> Self {
        Self::with_max_buffered(BINANCE_MAX_BUFFERED)
    }

    /// A sync buffering up to `max_buffered` diffs (at least 1) while it
    /// waits for a snapshot.
    pub fn with_max_buffered(max_buffered: usize) -> Self {
        Self {
            book: Book::new(),
            buffer: VecDeque::new(),
            max_buffered: max_buffered.max(1),
            synced: None,
        }
    }

    /// The book: empty unless a snapshot is loaded.
    pub fn book(&self) -> &Book {
        &self.book
    }

    /// The update id the book is at, once a snapshot is loaded.
    pub fn last_update_id(&self) -> Option<u64> {
        self.synced.map(|s| s.local)
    }

    /// Diffs waiting for a snapshot.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Forgets the book and the buffer, e.g. after a reconnect: the next
    /// diffs start a new buffer.
    pub fn reset(&mut self) {
        self.book.clear();
        self.buffer.clear();
        self.synced = None;
    }

    /// Feeds one diff from the stream, in arrival order.
    pub fn feed_diff(&mut self, diff: BinanceDiff) -> BinanceVerdict {
        let Some(synced) = self.synced else {
            return self.push(diff);
        };
        let verdict = self.step(synced, &diff);
        if matches!(verdict, BinanceVerdict::Resync(_)) {
            // The diff that revealed the skip is still a valid part of the
            // stream: the next snapshot must meet it.
            self.buffer.push_back(diff);
        }
        verdict
    }

    /// Feeds a REST snapshot, then replays the buffered diffs on it.
    pub fn feed_snapshot(&mut self, snapshot: BinanceSnapshot) -> BinanceVerdict {
        if let Some(synced) = self.synced {
            if snapshot.last_update_id <= synced.local {
                return BinanceVerdict::Stale;
            }
        } else if let Some(first) = self.buffer.front() {
            if snapshot.last_update_id.saturating_add(1) < first.first_update_id {
                return BinanceVerdict::Resync(BinanceResync::SnapshotTooOld {
                    last_update_id: snapshot.last_update_id,
                    first_update_id: first.first_update_id,
                });
            }
        }
        self.book.clear();
        apply_levels(&mut self.book, &snapshot.bids, &snapshot.asks);
        self.synced = Some(Synced {
            local: snapshot.last_update_id,
            bridged: false,
        });
        // A resync inside the replay unsets `synced` and returns, so the loop
        // runs on the book just loaded and the diffs applied on it.
        while let Some(synced) = self.synced {
            let Some(diff) = self.buffer.pop_front() else {
                break;
            };
            let verdict = self.step(synced, &diff);
            if matches!(verdict, BinanceVerdict::Resync(_)) {
                // Keep it and the diffs after it, in order, for the next
                // snapshot.
                self.buffer.push_front(diff);
                return verdict;
            }
        }
        BinanceVerdict::Applied
    }

    /// Buffers a diff while no book is loaded.
    fn push(&mut self, diff: BinanceDiff) -> BinanceVerdict {
        if self.buffer.len() >= self.max_buffered {
            // The snapshot is so late that the oldest diffs no longer help:
            // restart from the newest so a fresh snapshot can meet it.
            self.buffer.clear();
            self.buffer.push_back(diff);
            return BinanceVerdict::Resync(BinanceResync::Overflow {
                max_buffered: self.max_buffered,
            });
        }
        self.buffer.push_back(diff);
        BinanceVerdict::Buffered
    }

    /// The live rules (4) for one diff; on a resync the book is cleared and
    /// the caller keeps the diff.
    fn step(&mut self, synced: Synced, diff: &BinanceDiff) -> BinanceVerdict {
        let Synced { local, bridged } = synced;
        if diff.final_update_id <= local {
            return BinanceVerdict::Stale;
        }
        let next = local.saturating_add(1);
        if diff.first_update_id > next {
            self.book.clear();
            self.synced = None;
            return BinanceVerdict::Resync(if bridged {
                BinanceResync::Gap {
                    expected: next,
                    first_update_id: diff.first_update_id,
                }
            } else {
                BinanceResync::SnapshotTooOld {
                    last_update_id: local,
                    first_update_id: diff.first_update_id,
                }
            });
        }
        apply_levels(&mut self.book, &diff.bids, &diff.asks);
        self.synced = Some(Synced {
            local: diff.final_update_id,
            bridged: true,
        });
        BinanceVerdict::Applied
    }
}

fn apply_levels(book: &mut Book, bids: &[Level], asks: &[Level]) {
    for &(price, size) in bids {
        book.apply_bid(price, size);
    }
    for &(price, size) in asks {
        book.apply_ask(price, size);
    }
}

/// What an [`OkxSeq`] or [`BybitSeq`] says to do with a book message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeqVerdict {
    /// Replace the book: clear it, then apply this message's levels.
    Reset,
    /// Apply this message's levels to the book.
    Apply,
    /// Drop the message: there is no book to apply it to (before the first
    /// snapshot, or after a gap until the next one).
    Ignore,
    /// The chain broke here: clear the book and resubscribe for a snapshot;
    /// updates are `Ignore`d until it arrives.
    Gap(SeqGap),
}

/// Where a venue's update chain broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeqGap {
    /// OKX: the update's `prevSeqId` is not the last `seqId`.
    Okx {
        /// The last `seqId` applied.
        last_seq_id: i64,
        /// The update's `prevSeqId`.
        prev_seq_id: i64,
    },
    /// Bybit: the delta's `u` is neither the last `u` + 1 nor 1.
    Bybit {
        /// The last `u` applied.
        last_u: u64,
        /// The delta's `u`.
        u: u64,
    },
}

/// `prevSeqId` of an OKX book snapshot.
pub const OKX_SNAPSHOT_PREV_SEQ_ID: i64 = -1;

/// Checks the `seqId`/`prevSeqId` chain of an OKX `books` channel.
///
/// Rules:
/// 1. `prevSeqId == -1` is a snapshot: reset, remember its `seqId`.
/// 2. Before any snapshot (or after a gap), updates are ignored.
/// 3. An update applies iff `prevSeqId` equals the last `seqId` (ids are not
///    consecutive: compare identity, not +1). This covers the empty
///    keep-alive (`prevSeqId == seqId == last`) and the post-maintenance
///    reset (`seqId < prevSeqId`), after which the chain continues from the
///    new `seqId`.
/// 4. Anything else is a gap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OkxSeq {
    last: Option<i64>,
}

impl OkxSeq {
    /// A checker waiting for a snapshot.
    pub fn new() -> Self {
        Self::default()
    }

    /// The last `seqId` applied, while the chain holds.
    pub fn last_seq_id(&self) -> Option<i64> {
        self.last
    }

    /// Forgets the chain, e.g. on resubscribe: updates are ignored until a
    /// snapshot.
    pub fn reset(&mut self) {
        self.last = None;
    }

    /// Checks one `books` message by its `prevSeqId` and `seqId`.
    pub fn feed(&mut self, prev_seq_id: i64, seq_id: i64) -> SeqVerdict {
        if prev_seq_id == OKX_SNAPSHOT_PREV_SEQ_ID {
            self.last = Some(seq_id);
            return SeqVerdict::Reset;
        }
        match self.last {
            None => SeqVerdict::Ignore,
            Some(last) if prev_seq_id == last => {
                self.last = Some(seq_id);
                SeqVerdict::Apply
            }
            Some(last) => {
                self.last = None;
                SeqVerdict::Gap(SeqGap::Okx {
                    last_seq_id: last,
                    prev_seq_id,
                })
            }
        }
    }
}

/// Checks the `u` update ids of a Bybit `orderbook.{depth}` stream.
///
/// Rules:
/// 1. Every snapshot resets the book (depth 1 re-sends one every 3 s with the
///    same `u`, which is therefore fine).
/// 2. A delta with `u == 1` means the venue's service restarted: reset
///    (overwrite the book with its levels).
/// 3. Before any snapshot (or after a gap), deltas are ignored.
/// 4. A delta applies iff `u == last + 1`; anything else, a repeat included,
///    is a gap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BybitSeq {
    last: Option<u64>,
}

impl BybitSeq {
    /// A checker waiting for a snapshot.
    pub fn new() -> Self {
        Self::default()
    }

    /// The last `u` applied, while the chain holds.
    pub fn last_u(&self) -> Option<u64> {
        self.last
    }

    /// Forgets the chain, e.g. on resubscribe: deltas are ignored until a
    /// snapshot.
    pub fn reset(&mut self) {
        self.last = None;
    }

    /// Checks a `type: "snapshot"` message by its `u`.
    pub fn feed_snapshot(&mut self, u: u64) -> SeqVerdict {
        self.last = Some(u);
        SeqVerdict::Reset
    }

    /// Checks a `type: "delta"` message by its `u`.
    pub fn feed_delta(&mut self, u: u64) -> SeqVerdict {
        if u == 1 {
            self.last = Some(u);
            return SeqVerdict::Reset;
        }
        match self.last {
            None => SeqVerdict::Ignore,
            Some(last) if last.checked_add(1) == Some(u) => {
                self.last = Some(u);
                SeqVerdict::Apply
            }
            Some(last) => {
                self.last = None;
                SeqVerdict::Gap(SeqGap::Bybit { last_u: last, u })
            }
        }
    }
}

#[cfg(test)]
mod tests;
