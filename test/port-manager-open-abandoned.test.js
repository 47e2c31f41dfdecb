// A port whose open a worker did not answer in time (src/daemon/port-manager.ts openIn) may still
// open there later: the daemon asks that worker to close it too, and until the worker confirms,
// the port's index is not handed out again and its name and interface are not taken by another
// add (503: try again); a close that failed is asked again at the next link check. The dataplane
// is a stand-in whose worker "opens" until the test lets it; TAP ports without a namespace:
// nothing in the kernel is touched.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { parseConfig } from '../dist/src/daemon/config.js';
import { PortManager } from '../dist/src/daemon/port-manager.js';

const tap = (name) => ({ name, type: 'tap', ifname: `t-${name}`, role: 'pod', gateways: ['10.244.0.1'] });

/** A stand-in worker: an add of `slow` answers with a time-out at once (as WorkerDataplane does
 * after 30 s) while its open goes on until `finish()`; a removal of a port still opening is
 * answered when it ends (as worker.ts does); `failRemoves` makes removals time out instead. */
function standIn() {
  const open = new Map();           // index -> name: open in the worker
  const opening = new Map();        // index -> { waiters: [] }
  let finish;
  const calls = [];
  const dp = {
    slow: undefined, failRemoves: false, calls, open,
    finish: () => finish?.(),
    addPort: async (_w, spec) => {
      calls.push(`add ${spec.name}@${spec.index}`);
      if (spec.name !== dp.slow) { open.set(spec.index, spec.name); return { name: spec.name, index: spec.index, mac: spec.mac, kind: 'stand-in', stats: {} }; }
      const o = { waiters: [] };
      opening.set(spec.index, o);
      // the worker's open ends later: abandoned (a removal came) it is closed, else it stays open
      new Promise((r) => { finish = r; }).then(() => {
        opening.delete(spec.index);
        if (o.waiters.length) for (const w of o.waiters) w(); else open.set(spec.index, spec.name);
      });
      throw new Error(`dataplane worker 0 did not answer addPort within 30000 ms`);
    },
    removePort: async (_w, index) => {
      calls.push(`remove ${index}`);
      if (dp.failRemoves) throw new Error('dataplane worker 0 did not answer removePort within 30000 ms');
      const o = opening.get(index);
      if (o) await new Promise((r) => o.waiters.push(r));
      open.delete(index);
    },
    ports: async () => [...open].map(([index, name]) => ({ name, index, mac: '02:00:00:00:00:01', kind: 'stand-in', stats: {} })),
  };
  return dp;
}

async function manager(t) {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-ports-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cfg = parseConfig({ node: { name: 'node-a', addresses: ['192.168.100.2'] }, stateDir: dir, ports: [tap('cfg-0')] });
  const lines = [];
  const pm = new PortManager(cfg, pino({ level: 'info' }, { write: (s) => lines.push(s) }));
  const dp = standIn();
  await pm.attach(dp);
  return { pm, dp, lines };
}

test('an open that timed out is closed in its worker when it ends; its index, name and interface stay taken until then', async (t) => {
  const { pm, dp } = await manager(t);
  dp.slow = 'a';
  await t.throwsAsync(pm.add(tap('a')), { message: /did not answer addPort/ });
  t.deepEqual(dp.calls, ['add a@1', 'remove 1'], 'the worker that did not answer is asked to close it');
  t.is(pm.byName('a'), undefined, 'the add failed: no such port');
  // the worker still opens it: another add of that pod is refused (its interface is still in use)
  const again = await t.throwsAsync(pm.add(tap('a')));
  t.is(again.statusCode, 503);
  t.regex(again.message, /still being closed/);
  const sameIf = await t.throwsAsync(pm.add({ ...tap('other'), ifname: 't-a' }));
  t.is(sameIf.statusCode, 503);
  // indexes run out (wrapped): the lowest free one is taken, never the one still closing
  pm.nextIndex = 0x10000;
  const b = await pm.add(tap('b'));
  t.is(b.index, 2, 'index 1 is still in use in the worker');
  // the open ends: the worker closes it (never left open), and the index is free again
  dp.slow = undefined;
  dp.finish();
  await pm.checkLinks();
  t.false(dp.open.has(1), 'the port opened late is closed');
  const a = await pm.add(tap('a'));
  t.is(a.index, 1, 'free once the worker confirmed the close');
  t.deepEqual((await pm.list()).map((p) => p.name).sort(), ['a', 'b', 'cfg-0']);
});

test('a close the worker did not confirm is asked again at the next link check', async (t) => {
  const { pm, dp, lines } = await manager(t);
  dp.slow = 'a';
  dp.failRemoves = true;
  await t.throwsAsync(pm.add(tap('a')), { message: /did not answer addPort/ });
  await pm.checkLinks();
  t.true(lines.some((l) => /closing a port whose open was given up failed/.test(l)), lines.join(''));
  t.is((await t.throwsAsync(pm.add(tap('a')))).statusCode, 503, 'still in use');
  dp.failRemoves = false;
  dp.slow = undefined;
  dp.finish();
  await pm.checkLinks();
  await new Promise((r) => setImmediate(r));
  t.is(dp.calls.filter((c) => c === 'remove 1').length, 3, 'asked at the failed add, at the first check, at the second');
  t.false(dp.open.has(1));
  t.is((await pm.add(tap('a'))).name, 'a');
  t.true(lines.some((l) => /its index is free/.test(l)));
});
