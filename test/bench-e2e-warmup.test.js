// The latency and connection chunks' clients (src/bench/e2e.ts CONN_JS, RTT_JS) leave their
// warm-up out of the figures: run on loopback against servers that count what they get.
import test from 'ava';
import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONN_JS, RTT_JS } from '../dist/src/bench/e2e.js';

function script(t, name, text) {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-warmup-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}
const run = (file, args) => new Promise((resolve, reject) => {
  execFile(process.execPath, [file, ...args], { timeout: 60_000 }, (e, stdout, stderr) => (e ? reject(new Error(`${e.message} ${stderr}`)) : resolve(JSON.parse(stdout.trim().split('\n').pop()))));
});

test('connections: those of the warm-up are made but not counted, and the seconds are the counted ones', async (t) => {
  let accepted = 0;
  const server = createServer((s) => { accepted++; s.on('error', () => {}); s.destroy(); });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const { port } = server.address();
  const file = script(t, 'conn.mjs', CONN_JS);
  const t0 = performance.now();
  const r = await run(file, ['127.0.0.1', String(port), '0.2', '4', '0.3']);
  const wall = (performance.now() - t0) / 1000;
  t.true(r.ok > 0, JSON.stringify(r));
  t.is(r.fail, 0);
  t.true(r.seconds >= 0.2, JSON.stringify(r));
  t.true(r.seconds <= wall - 0.3, `counted over ${r.seconds} s of the process's ${wall} s: not the warm-up's 0.3 s too`);
  // the server saw the warm-up's connections as well (every counted one was accepted; the
  // warm-up ran 0.3 s at the same loops)
  await new Promise((res) => setTimeout(res, 100));
  t.true(accepted > r.ok, `accepted ${accepted}, counted ${r.ok}`);
  const cold = await run(file, ['127.0.0.1', String(port), '0.2', '4', '0']);
  t.true(cold.seconds >= 0.2 && cold.ok > 0, JSON.stringify(cold));
});

test('round trips: the warm-up ones are sent and answered but not among the samples', async (t) => {
  let got = 0;
  const echo = createSocket('udp4');
  echo.on('message', (m, from) => { got++; echo.send(m, from.port, from.address); });
  await new Promise((r) => echo.bind(0, '127.0.0.1', r));
  t.teardown(() => echo.close());
  const file = script(t, 'rtt.mjs', RTT_JS);
  const r = await run(file, ['127.0.0.1', String(echo.address().port), '50', 'raw', '0', '20']);
  t.is(r.samples, 50);
  t.is(r.rtts.length, 50);
  t.is(r.warmed, 20);
  t.is(r.lost, 0);
  t.is(got, 70, 'the echo server answered the warm-up too');
  const cold = await run(file, ['127.0.0.1', String(echo.address().port), '30', 'raw', '0']);
  t.is(cold.samples, 30);
  t.is(cold.warmed, 0);
});
