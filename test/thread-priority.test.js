// The forwarding worker's own priority: setThreadNice changes the calling thread only (Linux keeps
// nice per thread), and a refused change is a reason, never a throw.
import test from 'ava';
import { Worker } from 'node:worker_threads';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { currentTid, setThreadNice } from '../dist/src/daemon/thread-priority.js';

const MODULE = fileURLToPath(new URL('../dist/src/daemon/thread-priority.js', import.meta.url));
const niceOf = (tid) => { const st = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8'); return Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[16]); };

const linux = process.platform === 'linux';
(linux ? test : test.skip)('a worker thread lowers its own priority; the main thread keeps its own (Linux only)', async (t) => {
  const mainTid = currentTid();
  t.is(mainTid, process.pid);
  const before = niceOf(mainTid);
  const w = new Worker(`
    const { parentPort } = require('node:worker_threads');
    import(${JSON.stringify(MODULE)}).then((m) => {
      const tid = m.currentTid();
      const why = m.setThreadNice(Math.min(19, ${before} + 3));
      parentPort.postMessage({ tid, why });
      setTimeout(() => {}, 300);   // alive while the parent reads its nice
    });
  `, { eval: true });
  const { tid, why } = await new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
  try {
    t.is(why, null);
    t.not(tid, mainTid);
    t.is(niceOf(tid), Math.min(19, before + 3));
    t.is(niceOf(mainTid), before);
  } finally { await w.terminate(); }
});

test('bad nice values are a reason, not a throw', (t) => {
  t.regex(setThreadNice(-21), /-20\.\.19/);
  t.regex(setThreadNice(1.5), /integer/);
});
