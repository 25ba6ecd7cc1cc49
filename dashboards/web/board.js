// tickwire ticker board: the v1 WebSocket protocol to a live table and an
// order book view. Plain script, no build step, no dependency.
//
// Prices are shown exactly as the server's decimal strings; every
// comparison and sum on them is exact (decimal.js), floats only place
// pixels (sparklines, depth bars).
"use strict";

(() => {
  const THROTTLE_MS = 250; // "4 updates/s per tile is enough"
  const SPARK_POINTS = 60; // last price changes kept per row
  const PING_EVERY_MS = 10000;
  const SILENCE_MS = 25000; // no pong nor data this long: the socket is dead
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 15000;
  const STABLE_MS = 10000; // a connection this old resets the backoff
  const TOASTS_MAX = 4;
  const TOAST_MS = 8000;

  const { cmp, sub, changeBp, text } = globalThis.TickwireDecimal;

  // ---- page parts -------------------------------------------------------

  const $ = (id) => document.getElementById(id);
  const tbody = $("rows");
  const rowTpl = $("row-tpl");
  const connEl = $("conn");
  const connText = $("conn-text");
  const connWait = $("conn-wait");
  const connRetry = $("conn-retry");
  const statsEl = $("stats");
  const filterEl = $("filter");
  const emptyEl = $("empty");
  const toastsEl = $("toasts");

  const VENUE_NAMES = { binance: "Binance", bybit: "Bybit", coinbase: "Coinbase", kraken: "Kraken", okx: "OKX" };

  const rows = new Map(); // symbol -> row model, in list order
  const dirty = new Set(); // rows to redraw on the next frame
  let frameQueued = false;
  let statesChanged = false; // the live/stale counts need redrawing
  let filterWords = [];
  let sortKey = "venue";
  let sortDir = 1;

  // The order book panel (book.js); it draws in this file's frames.
  const depth = globalThis.TickwireBook.create({
    request: (op, fields) => request(op, fields),
    connected: () => ws !== null && ws.readyState === WebSocket.OPEN,
    rowOf: (symbol) => rows.get(symbol),
    schedule: () => queueFrame(),
    throttleMs: THROTTLE_MS,
  });

  // ---- connection ---------------------------------------------------------

  const CLOSE_CODES = {
    1000: "normal closure",
    1001: "going away",
    1006: "connection lost",
    1008: "policy violation",
    1009: "message too big",
    1011: "server error",
    1012: "service restart",
    4001: "unauthorized",
    4008: "slow consumer",
    4029: "rate limited",
  };

  let ws = null;
  let attempt = 0; // failed connections in a row
  let restarts = 0; // 1012s in a row
  let retryTimer = 0;
  let retryAt = 0;
  let lastClose = null;
  let openedAt = 0;
  let lastHeard = 0;
  let limits = { max_subscriptions: 1024, max_requests_per_sec: 20 };
  let serverName = "";
  let reqId = 0;
  let pingSent = null; // [id, time]
  let rttMs = null;
  let received = 0; // objects since the last stats tick
  let rate = 0;

  // Requests leave through a token bucket a little under the server's, so
  // quick clicking through books never earns a rate_limited close.
  const outbox = [];
  const OUTBOX_MAX = 256;
  let tokens = 0;
  let tokenRate = 16;
  let refilledAt = 0;
  let drainTimer = 0;

  function wsUrl() {
    // Relative, so the board also works behind a path-prefixing proxy.
    const u = new URL("v1/ws?batch=1", location.href);
    u.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    u.hash = "";
    return u.href;
  }

  function request(op, fields) {
    reqId += 1;
    const id = `${op}:${reqId}`;
    if (outbox.length >= OUTBOX_MAX) outbox.shift();
    outbox.push(JSON.stringify({ op, id, ...fields }));
    drain();
    return id;
  }

  function drain() {
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    const now = performance.now();
    tokens = Math.min(tokenRate, tokens + ((now - refilledAt) * tokenRate) / 1000);
    refilledAt = now;
    while (outbox.length && tokens >= 1) {
      ws.send(outbox.shift());
      tokens -= 1;
    }
    if (outbox.length && !drainTimer) {
      drainTimer = setTimeout(() => {
        drainTimer = 0;
        drain();
      }, Math.ceil(1000 / tokenRate));
    }
  }

  function connect() {
    clearTimeout(retryTimer);
    retryTimer = 0;
    retryAt = 0;
    showConn("connecting", "connecting…");
    let sock;
    try {
      sock = new WebSocket(wsUrl());
    } catch (e) {
      closed(1006, String(e && e.message ? e.message : e));
      return;
    }
    ws = sock;
    outbox.length = 0; // everything is asked again on hello
    sock.onopen = () => {
      if (ws !== sock) return;
      openedAt = performance.now();
      lastHeard = openedAt;
      refilledAt = openedAt;
      tokens = tokenRate;
      drain();
    };
    sock.onmessage = (ev) => {
      if (ws !== sock || typeof ev.data !== "string") return;
      lastHeard = performance.now();
      // ?batch=1: several objects per frame, one per line.
      for (const line of ev.data.split("\n")) {
        if (!line) continue;
        let m;
        try {
          m = JSON.parse(line);
        } catch {
          toast("the server sent a line that is not JSON", "error");
          continue;
        }
        received += 1;
        onMessage(m);
      }
    };
    sock.onclose = (ev) => {
      if (ws !== sock) return;
      closed(ev.code, ev.reason);
    };
    // An error is always followed by close, which says more.
    sock.onerror = () => {};
  }

  /** The socket is gone: every row turns unknown and a retry is planned. */
  function closed(code, reason) {
    const lived = openedAt ? performance.now() - openedAt : 0;
    if (ws) {
      const old = ws;
      ws = null;
      old.onopen = old.onmessage = old.onclose = old.onerror = null;
      try {
        old.close(4000, "client gives up");
      } catch {
        // Already closed.
      }
    }
    openedAt = 0;
    clearTimeout(drainTimer);
    drainTimer = 0;
    pingSent = null;
    rttMs = null;
    lastClose = { code, reason: reason || CLOSE_CODES[code] || "" };
    for (const r of rows.values()) {
      r.state = "unknown";
      r.reason = "disconnected";
      dirty.add(r);
    }
    depth.touch();
    queueFrame();

    if (lived > STABLE_MS) {
      attempt = 0;
      restarts = 0;
    }
    let delay;
    if (code === 1012 && restarts < 3) {
      // A draining gateway: come back promptly, spread out so the whole
      // desk does not land on the next gateway in the same millisecond.
      restarts += 1;
      delay = 100 + Math.random() * 900;
    } else {
      if (code !== 1012) restarts = 0;
      const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt);
      delay = cap / 2 + Math.random() * (cap / 2);
      attempt += 1;
      // Being told off (rate, policy, auth) is no reason to hammer back.
      if (code === 4029 || code === 1008) delay = Math.max(delay, 5000);
      if (code === 4001) delay = Math.max(delay, 30000);
    }
    retryAt = performance.now() + delay;
    retryTimer = setTimeout(connect, delay);
    showRetry();
  }

  function showRetry() {
    if (!retryAt) return;
    const left = Math.max(0, retryAt - performance.now()) / 1000;
    const c = lastClose;
    const why = c ? `closed ${c.code}${c.reason ? ` ${c.reason}` : ""} · ` : "";
    // The countdown sits outside the live region: a screen reader hears
    // "closed … reconnecting" once, not every tick.
    showConn("reconnecting", `${why}reconnecting`, `in ${left < 1 ? left.toFixed(1) : Math.ceil(left)} s`);
  }

  function showConn(state, words, wait) {
    const cls = `conn conn-${state}`;
    if (connEl.className !== cls) connEl.className = cls;
    if (connText.textContent !== words) connText.textContent = words;
    const w = wait || "";
    if (connWait.textContent !== w) connWait.textContent = w;
    connRetry.hidden = state !== "reconnecting";
  }

  connRetry.addEventListener("click", () => {
    attempt = 0;
    connect();
  });

  // ---- protocol ---------------------------------------------------------

  function onMessage(m) {
    switch (m.type) {
      case "quote":
        return onQuote(m);
      case "ticker":
        return onTicker(m);
      case "book":
        return depth.onBook(m);
      case "status":
        return onStatus(m);
      case "hello":
        return onHello(m);
      case "symbols":
        return onSymbols(m);
      case "subscribed":
        return onSubscribed(m);
      case "pong":
        if (pingSent && m.id === pingSent[0]) {
          rttMs = performance.now() - pingSent[1];
          pingSent = null;
        }
        return undefined;
      case "error":
        return onError(m);
      default:
        // unsubscribed, gap (trades only), and whatever a newer server adds.
        return undefined;
    }
  }

  function onHello(m) {
    if (m.limits && typeof m.limits === "object") limits = { ...limits, ...m.limits };
    tokenRate = Math.max(1, Math.floor((limits.max_requests_per_sec || 20) * 0.8));
    tokens = Math.min(tokens, tokenRate);
    serverName = typeof m.server === "string" ? m.server : "";
    showConn("live", "live");
    request("list", {});
  }

  function onSymbols(m) {
    if (!Array.isArray(m.symbols)) return;
    const listed = new Map();
    for (const s of m.symbols) {
      if (s && typeof s.symbol === "string") listed.set(s.symbol, Array.isArray(s.channels) ? s.channels : []);
    }
    for (const [symbol, r] of rows) {
      if (!listed.has(symbol)) {
        r.tr.remove();
        rows.delete(symbol);
        dirty.delete(r);
        if (depth.symbol === symbol) depth.close();
      }
    }
    for (const [symbol, channels] of listed) {
      let r = rows.get(symbol);
      if (!r) {
        r = makeRow(symbol);
        rows.set(symbol, r);
      }
      r.channels = channels;
      r.depthBtn.disabled = !channels.includes("book");
      r.state = "pending";
      r.reason = "";
      dirty.add(r);
    }
    placeRows();

    // One subscription per row and channel; what does not fit under the
    // server's limit is said, not silently dropped.
    const budget = Math.max(0, (limits.max_subscriptions || 1024) - 1); // one for the book
    const quotes = [];
    const tickers = [];
    let leftOut = 0;
    for (const [symbol, channels] of listed) {
      if (quotes.length + tickers.length + 2 > budget) {
        const r = rows.get(symbol);
        r.state = "unknown";
        r.reason = "over max_subscriptions";
        leftOut += 1;
        continue;
      }
      if (channels.includes("quote")) quotes.push(symbol);
      if (channels.includes("ticker")) tickers.push(symbol);
    }
    if (leftOut) {
      toast(`${leftOut} of ${listed.size} instruments not shown: max_subscriptions is ${limits.max_subscriptions}`, "error");
    }
    if (quotes.length) request("subscribe", { channel: "quote", symbols: quotes, snapshot: true, throttle_ms: THROTTLE_MS });
    if (tickers.length) request("subscribe", { channel: "ticker", symbols: tickers, snapshot: true, throttle_ms: THROTTLE_MS });
    depth.resubscribe();
    queueFrame();
  }

  function onSubscribed(m) {
    if (!Array.isArray(m.symbols)) return;
    // The server tells a stale instrument right after the ack; no word
    // means live.
    for (const symbol of m.symbols) {
      const r = rows.get(symbol);
      if (r && r.state === "pending") {
        r.state = "live";
        dirty.add(r);
      }
    }
    queueFrame();
  }

  function fresh(r, key, m) {
    // Conflation skips seqs; an older one than shown is never drawn.
    const seen = r.seqs[key];
    if (seen && seen.epoch === m.epoch && typeof m.seq === "number" && m.seq < seen.seq) return false;
    r.seqs[key] = { epoch: m.epoch, seq: m.seq };
    return true;
  }

  function onQuote(m) {
    const r = rows.get(m.symbol);
    if (!r || !fresh(r, "quote", m)) return;
    r.bid = m.bid;
    r.ask = m.ask;
    r.bidSize = m.bid_size;
    r.askSize = m.ask_size;
    dirty.add(r);
    queueFrame();
  }

  function onTicker(m) {
    const r = rows.get(m.symbol);
    if (!r || !fresh(r, "ticker", m)) return;
    if (typeof m.last === "string" && m.last !== r.last) {
      const v = Number(m.last); // only to place a point on the sparkline
      if (Number.isFinite(v)) {
        r.hist.push(v);
        if (r.hist.length > SPARK_POINTS) r.hist.shift();
        r.histVersion += 1;
      }
    }
    r.last = m.last;
    r.open = m.open_24h;
    r.high = m.high_24h;
    r.low = m.low_24h;
    r.vol = m.volume_24h;
    r.chg = changeBp(m.last, m.open_24h);
    dirty.add(r);
    queueFrame();
  }

  function onStatus(m) {
    const r = rows.get(m.symbol);
    if (!r) return;
    const state = m.state === "stale" ? "stale" : "live";
    const reason = state === "stale" ? String(m.reason || "stale") : "";
    if (r.state !== state || r.reason !== reason) r.since = new Date();
    r.state = state;
    r.reason = reason;
    dirty.add(r);
    if (depth.symbol === m.symbol) depth.touch();
    queueFrame();
  }

  function onError(m) {
    const code = String(m.code || "error");
    const syms = Array.isArray(m.symbols) && m.symbols.length ? ` (${m.symbols.join(", ")})` : "";
    toast(`${code}: ${m.message || ""}${syms}`, "error");
    if (pingSent && m.id === pingSent[0]) pingSent = null;
    depth.onError(m);
  }

  // Pings keep a quiet socket honest: a dead one is noticed within
  // SILENCE_MS instead of whenever TCP gives up.
  setInterval(() => {
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    if (performance.now() - lastHeard > SILENCE_MS) {
      closed(1006, `nothing heard for ${SILENCE_MS / 1000} s`);
      return;
    }
    if (!pingSent) pingSent = [request("ping", {}), performance.now()];
  }, PING_EVERY_MS);

  setInterval(() => {
    rate = received;
    received = 0;
    drawStats();
  }, 1000);

  setInterval(showRetry, 200);

  // ---- rows ---------------------------------------------------------------

  function makeRow(symbol) {
    const tr = rowTpl.content.firstElementChild.cloneNode(true);
    const colon = symbol.indexOf(":");
    const venue = colon > 0 ? symbol.slice(0, colon) : "";
    const name = colon > 0 ? symbol.slice(colon + 1) : symbol;
    tr.dataset.symbol = symbol;
    const q = (sel) => tr.querySelector(sel);
    q(".venue").textContent = VENUE_NAMES[venue] || venue;
    q(".sym").textContent = name;
    const depthBtn = q(".depth-btn");
    depthBtn.setAttribute("aria-label", `Order book of ${symbol}`);
    const r = {
      symbol,
      venue,
      name,
      tr,
      depthBtn,
      cells: {
        bid: valueCell(q(".bid")),
        ask: valueCell(q(".ask")),
        last: valueCell(q(".last")),
        chg: valueCell(q(".chg")),
        vol: valueCell(q(".vol")),
        st: q(".st"),
        spark: q("polyline"),
      },
      channels: [],
      seqs: {},
      bid: null,
      ask: null,
      bidSize: null,
      askSize: null,
      last: null,
      open: null,
      high: null,
      low: null,
      vol: null,
      chg: null,
      hist: [],
      histVersion: 0,
      state: "pending",
      reason: "",
      since: new Date(),
      shown: { histVersion: 0 },
    };
    tr.hidden = !matches(r);
    return r;
  }

  /** A cell whose value sits in a size-contained span: a new value
   * re-lays out that span only, never the table. */
  function valueCell(td) {
    const el = td.querySelector(".v");
    return { td, el, node: el.firstChild };
  }

  function queueFrame() {
    if (frameQueued) return;
    frameQueued = true;
    requestAnimationFrame(frame);
  }

  // All DOM writes happen here, once per frame, only for what changed.
  function frame() {
    frameQueued = false;
    statesChanged = false;
    for (const r of dirty) drawRow(r);
    dirty.clear();
    if (unflashDue) unflash();
    depth.draw();
    if (statesChanged) drawStats();
  }

  // A flash is a class held for FLASH_MS, not a running animation: two
  // style changes per flash however many cells move at once (a CSS
  // animation per cell costs style work on every frame).
  const FLASH_MS = 450;
  const flashes = []; // [cell, token, until], oldest first (constant hold)
  let flashTimer = 0;
  let unflashDue = false;

  function flash(c, dir) {
    c.flashes = (c.flashes || 0) + 1;
    c.el.className = `v flash-${dir} on`;
    const until = performance.now() + FLASH_MS;
    flashes.push([c, c.flashes, until]);
    if (!flashTimer) flashTimer = setTimeout(flashesDue, FLASH_MS);
  }

  function flashesDue() {
    flashTimer = 0;
    unflashDue = true;
    queueFrame();
  }

  /** Ends the flashes whose time is up (in a frame, like every DOM write). */
  function unflash() {
    unflashDue = false;
    const soon = performance.now() + 8;
    while (flashes.length && flashes[0][2] <= soon) {
      const [c, token] = flashes.shift();
      // A cell flashed again since keeps its newer flash.
      if (c.flashes === token) c.el.classList.remove("on");
    }
    if (flashes.length && !flashTimer) {
      flashTimer = setTimeout(flashesDue, Math.max(0, flashes[0][2] - performance.now()));
    }
  }

  function drawPrice(r, key) {
    const v = r[key];
    const before = r.shown[key];
    if (v === before) return;
    const c = r.cells[key];
    c.node.nodeValue = v == null ? "—" : v;
    if (before != null && v != null) {
      const d = cmp(v, before);
      if (d !== 0) {
        flash(c, d > 0 ? "up" : "dn");
        if (key === "last") {
          c.td.classList.toggle("up", d > 0);
          c.td.classList.toggle("dn", d < 0);
        }
      }
    }
    r.shown[key] = v;
  }

  /** Tooltips (sizes, 24 h range, stale since) are written when the
   * pointer reaches a row, not on every update. */
  function drawTitles(r) {
    const c = r.cells;
    c.bid.td.title = r.bidSize ? `size ${r.bidSize}` : "";
    c.ask.td.title = r.askSize ? `size ${r.askSize}` : "";
    const abs = sub(r.last, r.open);
    c.chg.td.title = r.open
      ? `open ${r.open} · high ${r.high} · low ${r.low} · change ${abs && abs[0] !== "-" ? "+" : ""}${abs ?? "—"}`
      : "";
    c.st.title = r.state === "stale" ? `stale since ${clock(r.since)}: ${r.reason}` : "";
  }

  function drawRow(r) {
    const c = r.cells;
    drawPrice(r, "bid");
    drawPrice(r, "ask");
    drawPrice(r, "last");
    if (r.chg !== r.shown.chg) {
      c.chg.node.nodeValue = r.chg == null ? "—" : `${r.chg > 0n ? "+" : ""}${text(r.chg, 2)}%`;
      c.chg.td.classList.toggle("up", r.chg != null && r.chg > 0n);
      c.chg.td.classList.toggle("dn", r.chg != null && r.chg < 0n);
      r.shown.chg = r.chg;
    }
    if (r.vol !== r.shown.vol) {
      c.vol.node.nodeValue = r.vol == null ? "—" : r.vol;
      r.shown.vol = r.vol;
    }
    if (r.histVersion !== r.shown.histVersion) {
      drawSpark(r);
      r.shown.histVersion = r.histVersion;
    }
    if (r.state !== r.shown.state || r.reason !== r.shown.reason) {
      const tr = r.tr;
      tr.classList.toggle("stale", r.state === "stale");
      tr.classList.toggle("unknown", r.state === "unknown" || r.state === "pending");
      tr.dataset.state = r.state;
      c.st.textContent = r.state === "live" ? "live" : r.state === "pending" ? "…" : r.reason;
      c.st.className = `st st-${r.state}`;
      r.shown.state = r.state;
      r.shown.reason = r.reason;
      statesChanged = true;
      if (depth.symbol === r.symbol) depth.touch();
    }
    if (r === hovered) drawTitles(r);
  }

  function drawSpark(r) {
    const h = r.hist;
    if (h.length < 2) {
      r.cells.spark.setAttribute("points", "");
      return;
    }
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of h) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    const span = hi - lo;
    // Until the history is full its points share the whole width.
    const step = 80 / (h.length - 1);
    let pts = "";
    for (let i = 0; i < h.length; i += 1) {
      const y = span > 0 ? 16 - ((h[i] - lo) / span) * 14 : 9;
      pts += `${(i * step).toFixed(1)},${y.toFixed(1)} `;
    }
    const line = r.cells.spark;
    line.setAttribute("points", pts);
    const trend = h[h.length - 1] - h[0];
    line.setAttribute("class", trend > 0 ? "up" : trend < 0 ? "dn" : "");
  }

  /** Every word of the filter is in the symbol ("coinbase btc"). */
  function matches(r) {
    const s = r.symbol.toLowerCase();
    return filterWords.every((w) => s.includes(w));
  }

  function sortValue(r) {
    switch (sortKey) {
      case "symbol":
        return r.name;
      case "chg":
        return r.chg == null ? null : Number(r.chg);
      case "vol":
        return r.vol == null ? null : Number(r.vol); // order only, never shown
      default:
        return r.venue;
    }
  }

  /** Orders the rows (on demand, never under a trader's cursor by itself). */
  function placeRows() {
    const list = [...rows.values()];
    list.sort((a, b) => {
      const x = sortValue(a);
      const y = sortValue(b);
      if (x !== y) {
        if (x == null) return 1;
        if (y == null) return -1;
        return (x < y ? -1 : 1) * sortDir;
      }
      return a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0;
    });
    const frag = document.createDocumentFragment();
    let venue = null;
    for (const r of list) {
      r.tr.classList.toggle("group", sortKey === "venue" && venue !== null && r.venue !== venue);
      venue = r.venue;
      frag.appendChild(r.tr);
    }
    tbody.appendChild(frag);
    drawEmpty();
  }

  function drawEmpty() {
    let shown = 0;
    for (const r of rows.values()) if (!r.tr.hidden) shown += 1;
    emptyEl.hidden = shown > 0;
    emptyEl.textContent = rows.size ? "No instrument matches the filter." : "Waiting for the instrument list…";
  }

  for (const btn of document.querySelectorAll("th button[data-sort]")) {
    btn.addEventListener("click", () => {
      const key = btn.dataset.sort;
      sortDir = key === sortKey ? -sortDir : key === "chg" || key === "vol" ? -1 : 1;
      sortKey = key;
      for (const th of document.querySelectorAll("th[aria-sort]")) {
        const mine = th.querySelector("button").dataset.sort === key;
        th.setAttribute("aria-sort", mine ? (sortDir > 0 ? "ascending" : "descending") : "none");
      }
      placeRows();
    });
  }

  filterEl.addEventListener("input", () => {
    filterWords = filterEl.value.toLowerCase().split(/\s+/).filter(Boolean);
    for (const r of rows.values()) r.tr.hidden = !matches(r);
    drawEmpty();
  });

  let hovered = null;
  tbody.addEventListener("mouseover", (ev) => {
    const tr = ev.target.closest("tr[data-symbol]");
    const r = tr ? rows.get(tr.dataset.symbol) : null;
    if (r && r !== hovered) drawTitles(r);
    hovered = r || null;
  });

  tbody.addEventListener("click", (ev) => {
    const tr = ev.target.closest("tr[data-symbol]");
    if (!tr) return;
    const r = rows.get(tr.dataset.symbol);
    if (r && r.channels.includes("book")) depth.open(r.symbol, ev.target.closest("button"));
  });

  document.addEventListener("keydown", (ev) => {
    if (ev.key === "/" && document.activeElement !== filterEl) {
      ev.preventDefault();
      filterEl.focus();
    } else if (ev.key === "Escape") {
      if (document.activeElement === filterEl && filterEl.value) return; // the search box clears itself
      if (depth.symbol) depth.close();
    }
  });

  function drawStats() {
    let live = 0;
    let stale = 0;
    for (const r of rows.values()) {
      if (r.state === "live") live += 1;
      else if (r.state === "stale") stale += 1;
    }
    const parts = [`${rows.size} instruments`, `${live} live`];
    if (stale) parts.push(`${stale} stale`);
    if (ws && openedAt) {
      parts.push(`${rate} msg/s`);
      if (rttMs != null) parts.push(`rtt ${rttMs < 10 ? rttMs.toFixed(1) : Math.round(rttMs)} ms`);
    }
    if (serverName) parts.push(serverName);
    const words = parts.join(" · ");
    if (statsEl.textContent !== words) statsEl.textContent = words;
  }

  // ---- notices ------------------------------------------------------------

  function toast(words, kind) {
    const el = document.createElement("div");
    el.className = `toast toast-${kind || "info"}`;
    el.textContent = words;
    toastsEl.appendChild(el);
    while (toastsEl.childElementCount > TOASTS_MAX) toastsEl.firstElementChild.remove();
    setTimeout(() => el.remove(), TOAST_MS);
  }

  function clock(d) {
    return d.toLocaleTimeString([], { hour12: false });
  }

  drawStats();
  drawEmpty();
  connect();
})();
