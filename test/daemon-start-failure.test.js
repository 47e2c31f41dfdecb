// A daemon start that fails leaves no thread it booted behind. A first start (nothing saved) boots
// the compile's Maglev thread before anything else (src/daemon/daemon.ts syncThreadsAtStart): the
// thread is unref'd, so it would not keep the process alive, but a process that goes on after the
// failure (a supervisor that retries, a test) would keep it. No packets, no root.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import pino from 'pino';
import { parseConfig } from '../dist/src/daemon/config.js';
import { startDaemon } from '../dist/src/daemon/daemon.js';
import { maglevWorkerRunning, stopMaglevWorker } from '../dist/src/compiler/maglev-pool.js';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test.serial('a first start that fails (here: an unreadable kubeconfig) stops the Maglev thread it booted', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-startfail-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  await stopMaglevWorker();
  t.false(maglevWorkerRunning());
  const cfg = parseConfig({
    node: { name: 'n1' }, stateDir: dir,
    ports: [{ name: 'p', type: 'tap', ifname: 'wdpx0', role: 'pod' }],
    kubernetes: { kubeconfig: join(dir, 'no-such-kubeconfig') },
  });
  await t.throwsAsync(startDaemon(cfg, { logger: pino({ level: 'silent' }) }), { message: /kubernetes/ });
  // the thread's boot is asynchronous (a module import, then the thread): give one that was left
  // running the time to show
  for (let i = 0; i < 40 && !maglevWorkerRunning(); i++) await sleep(25);
  t.false(maglevWorkerRunning(), 'no Maglev thread left running');
});

test.serial('stopping the thread a failed start booted leaves a newer one alone', async (t) => {
  const { startMaglevWorker } = await import('../dist/src/compiler/maglev-pool.js');
  await stopMaglevWorker();
  const first = startMaglevWorker();
  t.truthy(first, 'this call started it');
  t.is(startMaglevWorker(), null, 'one runs already: nothing started');
  await stopMaglevWorker(first);
  t.false(maglevWorkerRunning());
  const second = startMaglevWorker();
  t.truthy(second);
  await stopMaglevWorker(first); // the failed start's thread, long gone: not this one
  t.true(maglevWorkerRunning());
  await stopMaglevWorker();
});
