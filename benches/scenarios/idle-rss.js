// Idle-connection memory: opens N subscribed, idle WebSocket connections to
// a running server and prints its RSS growth per connection (/proc/PID).
// Usage: node benches/scenarios/idle-rss.js ws://127.0.0.1:PORT/v1/ws N SERVER_PID
// (needs `npm install --prefix benches/peers/node-ws` for the ws client).
const WebSocket = require('../peers/node-ws/node_modules/ws');
const fs = require('fs');
const [url, n, pid] = [process.argv[2], +process.argv[3], process.argv[4]];
const rss = () => +fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1];
const before = rss();
let open = 0; const socks = [];
const t0 = Date.now();
for (let i = 0; i < n; i++) {
  const ws = new WebSocket(url);
  ws.on('open', () => { ws.send(JSON.stringify({op:'subscribe',channel:'ticker',symbols:['kraken:ETH-EUR'],snapshot:false})); if (++open === n) done(); });
  ws.on('error', (e) => { console.error('error', e.message); process.exit(1); });
  socks.push(ws);
}
function done() {
  setTimeout(() => {
    const after = rss();
    console.log(JSON.stringify({connections: n, rss_before_kib: before, rss_after_kib: after, kib_per_conn: ((after - before) / n).toFixed(2), connect_ms: Date.now() - t0}));
    socks.forEach((s) => s.terminate()); process.exit(0);
  }, 2000);
}
setTimeout(() => { console.error('timeout'); process.exit(2); }, 60000);
