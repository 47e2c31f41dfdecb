// The addon from worker_threads: loaded per environment, ports opened inside a worker, and a port
// opened on the main thread driven from a worker by its handle, with a shared Wasm memory.
import test from 'ava';
import { Worker } from 'node:worker_threads';
import * as L from '../dist/assembly/layout.js';
import { rootOnly, destroyLab, vethPairLab } from './lib/native-area.js';
import { AfPacketPort, nativeAvailable, wait } from '../dist/src/ports/native.js';
import { numberedFrame } from './lib/frames.js';

const { isRoot, rootTest } = rootOnly(test, 'native-worker', 'network namespaces, CAP_NET_RAW');
const NATIVE_URL = new URL('../dist/src/ports/native.js', import.meta.url).href;
const LAYOUT_URL = new URL('../dist/assembly/layout.js', import.meta.url).href;

const frame = (len, seq) => numberedFrame(len, seq);

/** Runs `body` (an async function source taking (m, L, data)) in a worker; resolves its result. */
function inWorker(body, data) {
  const src = `
    import { parentPort, workerData } from 'node:worker_threads';
    const m = await import(${JSON.stringify(NATIVE_URL)});
    const L = await import(${JSON.stringify(LAYOUT_URL)});
    try { parentPort.postMessage({ ok: true, value: await (${body})(m, L, workerData) }); }
    catch (e) { parentPort.postMessage({ ok: false, code: e.code, message: e.message }); }`;
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL(`data:text/javascript,${encodeURIComponent(src)}`), { workerData: data });
    w.once('message', (m) => { resolve(m); void w.terminate(); });
    w.once('error', reject);
  });
}

let lab, nsA, nsB;
test.before(() => {
  if (isRoot) ({ lab, nsA, nsB } = vethPairLab('nw', 'wa', 'wb'));
});
test.after.always(() => destroyLab(lab));

rootTest('a worker loads the addon, opens a port and sends; the main thread receives', async (t) => {
  const b = new AfPacketPort({ ifname: 'wb', netns: nsB, index: 1 });
  t.teardown(() => b.close());
  const r = await inWorker(`async (m, L, d) => {
    if (!m.nativeAvailable().ok) throw new Error(m.nativeAvailable().reason);
    const a = new m.AfPacketPort({ ifname: 'wa', netns: d.ns, index: 4 });
    const mem = new WebAssembly.Memory({ initial: 2 }).buffer;
    const u8 = new Uint8Array(mem), dv = new DataView(mem);
    const arenaOff = 4096, slotSize = 2048;
    d.frames.forEach((f, i) => {
      u8.set(f, arenaOff + i * slotSize);
      dv.setUint16(i * L.DESC_SIZE + L.D_LEN, f.length, true);
      dv.setUint16(i * L.DESC_SIZE + L.D_OUT_PORT, 4, true);
      dv.setUint8(i * L.DESC_SIZE + L.D_VERDICT, L.V_FORWARD);
    });
    const sent = a.txBurst({ memory: mem, arenaOff, slotSize, descOff: 0 }, d.frames.length);
    const stats = a.stats();
    a.close();
    return { sent, txPackets: stats.txPackets };
  }`, { ns: nsA, frames: [frame(64, 1), frame(300, 2), frame(1500, 3)] });
  t.true(r.ok, r.message);
  t.deepEqual(r.value, { sent: 3, txPackets: 3 });

  const mem = new WebAssembly.Memory({ initial: 2 }).buffer;
  const area = { memory: mem, arenaOff: 4096, slotSize: 2048, descOff: 0 };
  let n = 0;
  for (let k = 0; k < 100 && n < 3; k++) { wait([b], 20); n += b.rxBurst(area, n, 3 - n); }
  t.is(n, 3);
  const dv = new DataView(mem);
  [frame(64, 1), frame(300, 2), frame(1500, 3)].forEach((f, i) => {
    const len = dv.getUint16(i * L.DESC_SIZE + L.D_LEN, true);
    t.deepEqual(new Uint8Array(mem, 4096 + i * 2048, len), f);
  });
});

rootTest('a port opened on the main thread is driven from a worker by handle, into a shared Wasm memory', async (t) => {
  const a = new AfPacketPort({ ifname: 'wa', netns: nsA, index: 0 });
  const b = new AfPacketPort({ ifname: 'wb', netns: nsB, index: 6 });
  t.teardown(() => { a.close(); b.close(); });
  const shared = new WebAssembly.Memory({ initial: 2, maximum: 4, shared: true });
  t.true(shared.buffer instanceof SharedArrayBuffer);

  const tx = new WebAssembly.Memory({ initial: 2 }).buffer;
  const frames = [frame(60, 10), frame(999, 11)];
  frames.forEach((f, i) => {
    new Uint8Array(tx).set(f, 4096 + i * 2048);
    const dv = new DataView(tx);
    dv.setUint16(i * 16 + L.D_LEN, f.length, true);
    dv.setUint16(i * 16 + L.D_OUT_PORT, 0, true);
    dv.setUint8(i * 16 + L.D_VERDICT, L.V_REJECT);
  });
  t.is(a.txBurst({ memory: tx, arenaOff: 4096, slotSize: 2048, descOff: 0 }, 2), 2);

  const r = await inWorker(`async (m, L, d) => {
    const p = m.NativePort.fromHandle(d.handle, { index: 6 });
    const area = { memory: d.memory.buffer, arenaOff: 4096, slotSize: 2048, descOff: 0 };
    let n = 0;
    for (let k = 0; k < 100 && n < 2; k++) { m.wait([p], 20); n += p.rxBurst(area, n, 2 - n); }
    return { n, kind: p.kind, ifname: p.ifname };
  }`, { handle: b.handle, memory: shared });
  t.true(r.ok, r.message);
  t.deepEqual(r.value, { n: 2, kind: 'af_packet', ifname: 'wb' });
  // the worker wrote straight into the shared memory this thread sees
  const dv = new DataView(shared.buffer);
  frames.forEach((f, i) => {
    t.is(dv.getUint16(i * 16 + L.D_IN_PORT, true), 6);
    const len = dv.getUint16(i * 16 + L.D_LEN, true);
    t.deepEqual(new Uint8Array(shared.buffer).slice(4096 + i * 2048, 4096 + i * 2048 + len), f);
  });
  t.is(b.stats().rxPackets, 2, 'counters are per port, shared across threads');
});
