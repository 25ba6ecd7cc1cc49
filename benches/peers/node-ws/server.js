// Benchmark peer for `tickwire loadgen` (benches/BENCHMARKS.md, S1): a
// plain Node.js `ws` server the way most teams start a market-data fan-out.
// It speaks the subset of tickwire's v1 protocol the load generator uses
// (hello, subscribe -> subscribed, list -> symbols) and generates quote
// updates itself: a map symbol -> Set of sockets, one JSON string per
// update, `send` to each subscriber. No conflation, no backpressure
// handling (ws buffers without bound), as in the typical first version.
// Not product code.
//
// Usage: node server.js [--port P] [--host H] [--symbols N] [--rate R]
//   --rate: total quote updates per second over all symbols (spread
//   evenly, round-robin), like tickwire's synthetic `rate` with a
//   quote-only mix. Prints "node-ws serving on ws://H:P/v1/ws" on stdout.
//   Symbols are sim:S000-USD .. (the names benches/scenarios/s1.sh also
//   gives tickwire's synthetic feed).
'use strict';

const { WebSocketServer } = require('ws');

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1];
  const env = process.env[`NODE_WS_${name.toUpperCase()}`];
  return env !== undefined ? env : fallback;
}

const host = arg('host', '127.0.0.1');
const port = Number(arg('port', '0'));
const nsymbols = Number(arg('symbols', '100'));
const rate = Number(arg('rate', '1000'));
const TICK_MS = 5;

const symbols = [];
for (let i = 0; i < nsymbols; i++) {
  symbols.push(`sim:S${String(i).padStart(3, '0')}-USD`);
}
const known = new Set(symbols);
// symbol -> Set of sockets subscribed to its quotes.
const subscribers = new Map(symbols.map((s) => [s, new Set()]));
const seqs = new Map(symbols.map((s) => [s, 0]));
const mids = new Map(symbols.map((s, i) => [s, 10000 + i * 100]));

function nowUs() {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

const wss = new WebSocketServer({ host, port, path: '/v1/ws', perMessageDeflate: false });

wss.on('connection', (ws) => {
  ws.send(JSON.stringify({
    type: 'hello', version: 1, server: 'node-ws', heartbeat_ms: 15000,
    limits: { max_subscriptions: 1024, max_requests_per_sec: 20, max_message_bytes: 1048576 },
  }));
  const mine = new Set();
  ws.on('message', (data, isBinary) => {
    let req;
    try {
      req = JSON.parse(isBinary ? '' : data.toString());
    } catch {
      ws.send(JSON.stringify({ type: 'error', code: 'bad_request', message: 'not JSON' }));
      return;
    }
    const id = req.id;
    if (req.op === 'list') {
      ws.send(JSON.stringify({ type: 'symbols', id, symbols: symbols.map((symbol) => ({ symbol, channels: ['quote'] })) }));
    } else if (req.op === 'subscribe' || req.op === 'unsubscribe') {
      if (req.channel !== 'quote') {
        ws.send(JSON.stringify({ type: 'error', id, code: 'unknown_channel', message: 'only quote' }));
        return;
      }
      const wanted = Array.isArray(req.symbols) ? req.symbols : [];
      const ok = wanted.filter((s) => known.has(s));
      const bad = wanted.filter((s) => !known.has(s));
      for (const s of ok) {
        if (req.op === 'subscribe') { subscribers.get(s).add(ws); mine.add(s); }
        else { subscribers.get(s).delete(ws); mine.delete(s); }
      }
      if (ok.length > 0 || bad.length === 0) {
        ws.send(JSON.stringify({ type: req.op === 'subscribe' ? 'subscribed' : 'unsubscribed', id, channel: 'quote', symbols: ok }));
      }
      if (bad.length > 0) {
        ws.send(JSON.stringify({ type: 'error', id, code: 'unknown_symbol', message: 'unknown symbol', symbols: bad }));
      }
    } else if (req.op === 'ping') {
      ws.send(JSON.stringify({ type: 'pong', id, ts: nowUs() }));
    } else {
      ws.send(JSON.stringify({ type: 'error', id, code: 'unknown_op', message: 'unknown op' }));
    }
  });
  ws.on('close', () => {
    for (const s of mine) subscribers.get(s).delete(ws);
  });
  ws.on('error', () => {});
});

// The generator: every TICK_MS, emit what is due at `rate`, round-robin
// over the symbols, each update encoded once and sent to each subscriber.
const started = performance.now();
let emitted = 0;
let next = 0;
setInterval(() => {
  const due = Math.floor(((performance.now() - started) / 1000) * rate);
  const rx = nowUs();
  for (; emitted < due; emitted++) {
    const symbol = symbols[next];
    next = (next + 1) % symbols.length;
    const seq = seqs.get(symbol) + 1;
    seqs.set(symbol, seq);
    const mid = mids.get(symbol) + (Math.random() < 0.5 ? -1 : 1);
    mids.set(symbol, mid);
    const frame = JSON.stringify({
      type: 'quote', symbol, seq, epoch: 'node',
      bid: ((mid - 1) / 100).toFixed(2), bid_size: '0.51',
      ask: ((mid + 1) / 100).toFixed(2), ask_size: '1.2',
      ts: rx, rx,
    });
    for (const ws of subscribers.get(symbol)) ws.send(frame);
  }
}, TICK_MS);

wss.on('listening', () => {
  const a = wss.address();
  process.stdout.write(`node-ws serving on ws://${a.address}:${a.port}/v1/ws\n`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
