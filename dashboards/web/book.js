// tickwire ticker board: the order book panel (one instrument's `book`
// channel as a ladder with exact running totals and depth bars).
// Exposed as globalThis.TickwireBook for board.js (no modules, no build).
"use strict";

(() => {
  const ROWS = 10; // levels shown per side

  /**
   * The panel. `request(op, fields)` sends a request and returns its id;
   * `connected()` says whether the socket is up; `rowOf(symbol)` is the
   * board's row model ({tr, state, reason}); `schedule()` asks for a frame,
   * in which board.js calls `draw()`.
   */
  function create({ request, connected, rowOf, schedule, throttleMs }) {
    const { add, sub } = globalThis.TickwireDecimal;
    const $ = (id) => document.getElementById(id);
    const panel = $("depth");
    const closeBtn = $("depth-close");

    let symbol = null;
    let requestId = null;
    let book = null;
    let receivedAt = null;
    let note = "";
    let dirty = false;
    let opener = null;

    function ladder(tbodyId) {
      const body = $(tbodyId);
      const cells = [];
      for (let i = 0; i < ROWS; i += 1) {
        const tr = document.createElement("tr");
        const c = { tr, shown: {} };
        for (const k of ["price", "size", "total"]) {
          const td = document.createElement("td");
          td.className = `num ${k}`;
          tr.appendChild(td);
          c[k] = td;
        }
        body.appendChild(tr);
        cells.push(c);
      }
      return cells;
    }
    // Asks read upwards from the spread: the best ask is the bottom row.
    const askCells = ladder("asks").reverse();
    const bidCells = ladder("bids");

    function touch() {
      dirty = true;
      schedule();
    }

    function subscribe() {
      requestId = request("subscribe", { channel: "book", symbols: [symbol], snapshot: true, throttle_ms: throttleMs });
    }

    function mark(sym, on) {
      const r = sym && rowOf(sym);
      if (r) r.tr.classList.toggle("sel", on);
    }

    /** Shows `sym`'s book; `from` gets the focus back on close. */
    function open(sym, from) {
      if (symbol === sym) return;
      if (symbol) {
        if (connected()) request("unsubscribe", { channel: "book", symbols: [symbol] });
        mark(symbol, false);
      }
      symbol = sym;
      book = null;
      receivedAt = null;
      note = "";
      opener = from || null;
      mark(sym, true);
      if (connected()) subscribe();
      panel.hidden = false;
      document.body.classList.add("with-depth");
      touch();
      if (from) closeBtn.focus();
    }

    function close() {
      if (!symbol) return;
      if (connected()) request("unsubscribe", { channel: "book", symbols: [symbol] });
      mark(symbol, false);
      symbol = null;
      book = null;
      requestId = null;
      panel.hidden = true;
      document.body.classList.remove("with-depth");
      const back = opener;
      opener = null;
      if (back && back.isConnected) back.focus();
    }

    closeBtn.addEventListener("click", close);

    /** A new connection: the open book is asked for again. */
    function resubscribe() {
      if (symbol) subscribe();
    }

    function onBook(m) {
      if (m.symbol !== symbol) return; // a late one after a switch
      book = m;
      receivedAt = new Date();
      note = "";
      touch();
    }

    /** An `error` reply; shown in the panel when it answers the book's
     * subscription. */
    function onError(m) {
      if (typeof m.id !== "string" || m.id !== requestId) return;
      note = `${m.code || "error"}: ${m.message || ""}`;
      touch();
    }

    function setText(c, key, v) {
      if (c.shown[key] === v) return;
      c[key].textContent = v;
      c.shown[key] = v;
    }

    /** Running totals of the sizes, exact, one per row (null past the book). */
    function totalsOf(levels) {
      const totals = [];
      let total = "0";
      for (let i = 0; i < ROWS; i += 1) {
        const lv = levels[i];
        if (Array.isArray(lv) && lv.length >= 2) {
          total = add(total, lv[1]) ?? total;
          totals.push(total);
        } else {
          totals.push(null);
        }
      }
      return totals;
    }

    function fill(cells, levels, totals, deepest) {
      for (let i = 0; i < cells.length; i += 1) {
        const c = cells[i];
        const lv = levels[i];
        const has = Array.isArray(lv) && lv.length >= 2;
        setText(c, "price", has ? String(lv[0]) : "");
        setText(c, "size", has ? String(lv[1]) : "");
        setText(c, "total", has && totals[i] ? totals[i] : "");
        // The bar's width is the only float here; it places pixels.
        const w = has && deepest > 0 ? `${((Number(totals[i]) / deepest) * 100).toFixed(1)}%` : "0%";
        if (c.shown.w !== w) {
          c.tr.style.setProperty("--w", w);
          c.shown.w = w;
        }
        c.tr.classList.toggle("empty", !has);
      }
    }

    /** Redraws the panel if anything changed since the last frame. */
    function draw() {
      if (!dirty) return;
      dirty = false;
      if (!symbol) return;
      const r = rowOf(symbol);
      $("depth-title").textContent = symbol;
      const st = $("depth-state");
      const state = r ? r.state : "unknown";
      st.textContent = state === "live" ? "live" : state === "pending" ? "…" : r ? r.reason : "";
      st.className = `st st-${state}`;
      panel.classList.toggle("stale", state !== "live");

      const bids = book && Array.isArray(book.bids) ? book.bids : [];
      const asks = book && Array.isArray(book.asks) ? book.asks : [];
      const bidTotals = totalsOf(bids);
      const askTotals = totalsOf(asks);
      const bidAll = bidTotals.filter(Boolean).pop();
      const askAll = askTotals.filter(Boolean).pop();
      const deepest = Math.max(Number(bidAll || 0), Number(askAll || 0));
      fill(bidCells, bids, bidTotals, deepest);
      fill(askCells, asks, askTotals, deepest);

      const bestBid = bids[0] && bids[0][0];
      const bestAsk = asks[0] && asks[0][0];
      const spread = sub(bestAsk, bestBid);
      const mid = Number(bestBid) / 2 + Number(bestAsk) / 2;
      $("depth-spread").textContent = spread ?? "—";
      $("depth-spread-bp").textContent =
        spread && mid > 0 ? `spread · ${((Number(spread) / mid) * 10000).toPrecision(2)} bp` : "spread";
      $("depth-bidsum").textContent = bidAll || "—";
      $("depth-asksum").textContent = askAll || "—";
      $("depth-time").textContent = receivedAt
        ? `${receivedAt.toLocaleTimeString([], { hour12: false })} · seq ${book.seq}`
        : "—";
      $("depth-note").textContent = note || (book ? "" : connected() ? "waiting for the book…" : "disconnected");
    }

    return {
      get symbol() {
        return symbol;
      },
      open,
      close,
      resubscribe,
      onBook,
      onError,
      touch,
      draw,
    };
  }

  globalThis.TickwireBook = Object.freeze({ create });
})();
