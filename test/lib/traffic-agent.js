// Traffic programs the robustness e2e tests (test/robust-daemon.test.js) run inside their network
// namespaces, one process each (`ip netns exec NS node traffic-agent.js MODE ...`). The client
// modes run until SIGTERM (or at most MAX_MS), then print one JSON line with what they saw and
// exit, so a test can bracket exactly the phase it is measuring.
//
//   echo-server PORT
//       TCP echo on [::]:PORT (both families) until killed. Prints "ready".
//   echo-clients HOST PORT CONNS MAX_MS
//       CONNS long-lived TCP connections to HOST:PORT, each sending a numbered line and waiting for
//       its echo, back to back. Prints per connection: round trips, whether it stayed open (no
//       error, no close, every echo right), the largest gap between two echoes, and the round trips
//       per wall-clock second ({ "<unix second>": n }), so a test can count them in any phase.
//       Prints "connected" once every connection is up.
//   http-prober URL MAX_MS PARALLEL [GAP_MS]
//       PARALLEL loops, each doing one GET on a NEW connection after another (GAP_MS apart, default
//       0). Prints every request: start and end time (Date.now()), the client's source port, the
//       pod that answered (x-pod) or the error.
import net from 'node:net';
import http from 'node:http';

const [mode, ...args] = process.argv.slice(2);
let stopAt = Infinity;
process.on('SIGTERM', () => { stopAt = Date.now(); });
const running = () => Date.now() < stopAt;

function echoServer(port) {
  const srv = net.createServer((s) => { s.on('error', () => {}); s.pipe(s); });
  srv.listen({ port: Number(port), host: '::', ipv6Only: false }, () => process.stdout.write('ready\n'));
}

async function echoClients(host, port, conns, maxMs) {
  stopAt = Date.now() + Number(maxMs);
  let connected = 0;
  const one = (id) => new Promise((resolve) => {
    const r = { id, roundTrips: 0, open: true, error: undefined, maxGapMs: 0, perSecond: {} };
    const s = net.connect({ host, port: Number(port) });
    let last = Date.now(), buf = '', n = 0, done = false;
    const finish = () => { if (done) return; done = true; clearInterval(watch); s.destroy(); resolve(r); };
    // a connection that stalls still reports, 3 s after the stop (its gap shows the stall)
    const watch = setInterval(() => { if (Date.now() > stopAt + 3000) { r.maxGapMs = Math.max(r.maxGapMs, Date.now() - last); finish(); } }, 200);
    const send = () => { if (!running()) { finish(); return; } s.write(`${id}:${++n}\n`); };
    s.setNoDelay(true);
    s.on('connect', () => { last = Date.now(); if (++connected === Number(conns)) process.stdout.write('connected\n'); send(); });
    s.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i); buf = buf.slice(i + 1);
        if (line !== `${id}:${n}`) { r.open = false; r.error = `echo mismatch: ${line} (want ${id}:${n})`; finish(); return; }
        const now = Date.now();
        r.maxGapMs = Math.max(r.maxGapMs, now - last);
        last = now;
        r.roundTrips++;
        const sec = Math.floor(now / 1000);
        r.perSecond[sec] = (r.perSecond[sec] ?? 0) + 1;
        send();
      }
    });
    s.on('error', (e) => { r.open = false; r.error = e.code || e.message; finish(); });
    s.on('close', () => { if (!done) { r.open = false; r.error ??= 'closed by peer'; finish(); } });
  });
  const res = await Promise.all(Array.from({ length: Number(conns) }, (_, i) => one(i)));
  process.stdout.write(`${JSON.stringify(res)}\n`);
}

async function httpProber(url, maxMs, parallel, gapMs = '0') {
  stopAt = Date.now() + Number(maxMs);
  const u = new URL(url);
  const out = [];
  const get = () => new Promise((resolve) => {
    const t0 = Date.now();
    let cport;
    const req = http.get({ host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port || 80, path: u.pathname, agent: false, timeout: 3000 }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ t0, t1: Date.now(), cport, pod: String(res.headers['x-pod'] ?? body.trim()) }));
      res.on('error', (e) => resolve({ t0, t1: Date.now(), cport, error: e.code || e.message }));
    });
    req.on('socket', (sock) => sock.on('connect', () => { cport = sock.localPort; }));
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ t0, t1: Date.now(), cport, error: e.code || e.message }));
  });
  process.stdout.write('started\n');
  await Promise.all(Array.from({ length: Number(parallel) }, async () => {
    while (running()) {
      out.push(await get());
      if (Number(gapMs)) await new Promise((r) => setTimeout(r, Number(gapMs)));
    }
  }));
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

if (mode === 'echo-server') echoServer(...args);
else if (mode === 'echo-clients') echoClients(...args);
else if (mode === 'http-prober') httpProber(...args);
else { process.stderr.write(`unknown mode ${mode}\n`); process.exit(2); }
