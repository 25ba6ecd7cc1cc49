// The web ticker board in headless Chromium, for crates/tickwire/tests/board.rs.
//
//   node board.mjs <board url> <output dir> [symbol]
//
// Loads the board, checks prices move, has the Rust side kill and restart
// the fake venue (a line on stdout asks, a line on stdin answers), checks
// the row goes stale with the reason and comes back live, opens the order
// book, has the server itself restarted and checks the board reconnects
// and asks for everything again (the open book included), and saves
// screenshots in <output dir>. Any console error fails it, except
// Chromium's own note of a refused WebSocket while the server is down.
// Progress goes to stderr; stdout carries only the requests and "ok".

import { createInterface } from "node:readline";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [url, outdir, symbol = "coinbase:BTC-USD"] = process.argv.slice(2);
if (!url || !outdir) {
  console.error("usage: node board.mjs <board url> <output dir> [symbol]");
  process.exit(2);
}

const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const PRICES_MOVE_MS = 5000; // the bound
const FIRST_DATA_MS = 20000;
const STATE_CHANGE_MS = 30000; // ingest reconnects with backoff
const OVERALL_MS = 100000;

const started = Date.now();
const log = (...words) => console.error(`[board.mjs +${((Date.now() - started) / 1000).toFixed(1)}s]`, ...words);

// A hung step must still end the process; Playwright kills its browser on exit.
setTimeout(() => {
  log(`gave up after ${OVERALL_MS / 1000} s`);
  process.exit(3);
}, OVERALL_MS).unref();

const replies = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

/** Asks the Rust side to do something and waits for its answer. */
async function ask(request, answer) {
  process.stdout.write(`${request}\n`);
  const next = await Promise.race([
    replies.next(),
    new Promise((_, fail) => setTimeout(() => fail(new Error(`no "${answer}" on stdin`)), 30000)),
  ]);
  if (next.done || next.value.trim() !== answer) {
    throw new Error(`expected "${answer}" on stdin, got ${next.done ? "end of input" : JSON.stringify(next.value)}`);
  }
}

function check(ok, what) {
  if (!ok) throw new Error(what);
}

const problems = [];
let serverDown = false; // Chromium logs each refused reconnect as an error
const REFUSED = /^WebSocket connection to '.*' failed/;
const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
let page;
let code = 0;
try {
  page = await browser.newPage({ viewport: { width: 1360, height: 760 } });
  page.on("console", (m) => {
    if (m.type() === "error" && !(serverDown && REFUSED.test(m.text()))) problems.push(`console error: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));

  const row = `tr[data-symbol="${symbol}"]`;
  await page.goto(url);
  log(`loaded ${url}`);

  await page.waitForFunction(
    (sel) => {
      const tr = document.querySelector(sel);
      return tr && tr.querySelector(".bid").textContent !== "—" && tr.querySelector(".last").textContent !== "—";
    },
    row,
    { timeout: FIRST_DATA_MS },
  );
  log("first prices shown");
  check((await page.textContent("#conn-text")) === "live", "the connection indicator says live");
  for (const cell of ["bid", "ask", "last"]) {
    const t = await page.textContent(`${row} .${cell}`);
    check(/^\d+\.\d+$/.test(t), `${symbol} ${cell} is a decimal as the server sent it: ${JSON.stringify(t)}`);
  }

  // Prices move: some displayed price differs from what was first shown.
  const firstPrices = await page.$$eval("#rows td.px", (tds) => tds.map((td) => td.textContent));
  const t0 = Date.now();
  await page.waitForFunction(
    (before) => [...document.querySelectorAll("#rows td.px")].some((td, i) => td.textContent !== before[i]),
    firstPrices,
    { timeout: PRICES_MOVE_MS },
  );
  log(`a price changed after ${Date.now() - t0} ms`);

  // Exact decimals, in the browser that runs the board.
  const exact = await page.evaluate(() => {
    const D = globalThis.TickwireDecimal;
    return [
      D.cmp("0.10", "0.1"),
      D.cmp("64000.12", "64000.119999999999999999"),
      D.add("0.1", "0.2"),
      D.sub("84150.00", "84149.97"),
      String(D.changeBp("101", "100")),
      String(D.changeBp("99.995", "100")),
      D.text(D.changeBp("83098.28", "84150.00"), 2),
    ];
  });
  check(
    JSON.stringify(exact) === JSON.stringify([0, 1, "0.3", "0.03", "100", "-1", "-1.25"]),
    `exact decimal helpers: ${JSON.stringify(exact)}`,
  );

  await page.waitForFunction((sel) => document.querySelector(`${sel} polyline`).getAttribute("points") !== "", row, {
    timeout: FIRST_DATA_MS,
  });
  await page.waitForTimeout(1500); // a few more points on the sparklines
  await page.screenshot({ path: join(outdir, "board.png") });
  log("board.png saved");

  await ask("kill-venue", "venue-killed");
  const t1 = Date.now();
  await page.waitForFunction(
    (sel) => {
      const tr = document.querySelector(sel);
      return tr.classList.contains("stale") && tr.querySelector(".st").textContent.includes("feed_disconnected");
    },
    row,
    { timeout: STATE_CHANGE_MS },
  );
  log(`${symbol} stale (feed_disconnected) after ${Date.now() - t1} ms`);
  check((await page.textContent("#conn-text")) === "live", "the board's own socket stays live while a feed is down");
  await page.screenshot({ path: join(outdir, "stale.png") });

  await ask("start-venue", "venue-started");
  const t2 = Date.now();
  await page.waitForFunction(
    (sel) => {
      const tr = document.querySelector(sel);
      return !tr.classList.contains("stale") && tr.dataset.state === "live" && tr.querySelector(".st").textContent === "live";
    },
    row,
    { timeout: STATE_CHANGE_MS },
  );
  log(`${symbol} live again after ${Date.now() - t2} ms`);
  const afterReturn = await page.$$eval(`${row} td.px`, (tds) => tds.map((td) => td.textContent));
  await page.waitForFunction(
    ([sel, before]) => [...document.querySelectorAll(`${sel} td.px`)].some((td, i) => td.textContent !== before[i]),
    [row, afterReturn],
    { timeout: STATE_CHANGE_MS },
  );
  log(`${symbol} prices moving again`);

  // The order book: opened by the row's button, levels on both sides.
  await page.click(`${row} .depth-btn`);
  await page.waitForFunction(
    (sym) => {
      const panel = document.getElementById("depth");
      const prices = (id) => [...document.querySelectorAll(`#${id} td.price`)].map((td) => td.textContent).filter(Boolean);
      return !panel.hidden && document.getElementById("depth-title").textContent === sym && prices("bids").length >= 3 && prices("asks").length >= 3;
    },
    symbol,
    { timeout: FIRST_DATA_MS },
  );
  const book = await page.evaluate(() => {
    const D = globalThis.TickwireDecimal;
    const side = (id) =>
      [...document.querySelectorAll(`#${id} tr`)]
        .map((tr) => [tr.querySelector(".price").textContent, tr.querySelector(".size").textContent])
        .filter(([p]) => p);
    const bids = side("bids"); // best first
    const asks = side("asks").reverse(); // shown best last, next to the spread
    const descending = bids.every((l, i) => i === 0 || D.cmp(bids[i - 1][0], l[0]) > 0);
    const ascending = asks.every((l, i) => i === 0 || D.cmp(asks[i - 1][0], l[0]) < 0);
    return { bids: bids.length, asks: asks.length, descending, ascending, crossed: D.cmp(bids[0][0], asks[0][0]) >= 0 };
  });
  check(book.descending && book.ascending && !book.crossed, `book levels in order: ${JSON.stringify(book)}`);
  check(await page.$eval(row, (tr) => tr.classList.contains("sel")), "the open book's row is marked");
  log(`depth view: ${book.bids} bids, ${book.asks} asks`);
  await page.waitForTimeout(600); // let the bars settle into the screenshot
  await page.screenshot({ path: join(outdir, "depth.png") });
  log("depth.png saved");

  // The server drains (SIGTERM: close 1012, service restart) and comes back on the same
  // port: the board says so, greys every row, reconnects by itself and
  // subscribes everything again, the open book included.
  const bookTime = await page.textContent("#depth-time");
  serverDown = true;
  await ask("stop-server", "server-stopped");
  await page.waitForFunction(
    (sel) =>
      document.getElementById("conn").classList.contains("conn-reconnecting") &&
      document.getElementById("conn-text").textContent.startsWith("closed 1012") &&
      document.querySelector(sel).dataset.state === "unknown",
    row,
    { timeout: STATE_CHANGE_MS },
  );
  log(`board shows: ${await page.textContent("#conn-text")}`);
  await page.screenshot({ path: join(outdir, "disconnected.png") });
  await ask("start-server", "server-started");
  const t3 = Date.now();
  await page.waitForFunction(
    ([sel, before]) =>
      document.getElementById("conn-text").textContent === "live" &&
      document.querySelector(sel).dataset.state === "live" &&
      document.getElementById("depth-time").textContent !== before &&
      document.querySelectorAll("#bids td.price:not(:empty)").length >= 3,
    [row, bookTime],
    { timeout: STATE_CHANGE_MS },
  );
  serverDown = false;
  log(`reconnected and resubscribed (book included) ${Date.now() - t3} ms after the server was back`);
  const afterReconnect = await page.$$eval(`${row} td.px`, (tds) => tds.map((td) => td.textContent));
  await page.waitForFunction(
    ([sel, before]) => [...document.querySelectorAll(`${sel} td.px`)].some((td, i) => td.textContent !== before[i]),
    [row, afterReconnect],
    { timeout: STATE_CHANGE_MS },
  );

  await page.keyboard.press("Escape");
  await page.waitForFunction(() => document.getElementById("depth").hidden, null, { timeout: 5000 });
  check(!(await page.$eval(row, (tr) => tr.classList.contains("sel"))), "closing the book unmarks the row");

  check(problems.length === 0, `the page reported problems:\n  ${problems.join("\n  ")}`);
  process.stdout.write("ok\n");
  log("ok");
} catch (e) {
  code = 1;
  log(`FAILED: ${e && e.stack ? e.stack : e}`);
  if (problems.length) log(`page problems:\n  ${problems.join("\n  ")}`);
  if (page) {
    try {
      await page.screenshot({ path: join(outdir, "failure.png") });
      log(`failure.png saved in ${outdir}`);
    } catch {
      // The page itself may be what failed.
    }
  }
} finally {
  await browser.close();
}
process.exit(code);
