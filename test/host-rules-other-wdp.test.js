// A start without a host port removes the host port's policy-routing rules a killed daemon left
// (src/daemon/host-stack.ts dropStaleHostRules). Those rules are the network namespace's, not an
// interface's: while another wdp runs in the namespace (a live interface claim there,
// src/daemon/interface-claim.ts otherWdpIn) they may be its host port's, and are left alone; once
// it is gone they are removed. In a namespace of the test's, a run directory of its own.
import test from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootGate } from './lib/root-gate.js';
import { dropStaleHostRules, HOST_NODEPORT_TABLE } from '../dist/src/daemon/host-stack.js';

const gate = rootGate(test);
const MODULE = new URL('../dist/src/daemon/interface-claim.js', import.meta.url).href;
const NS = `wdp-t${process.pid}-hr`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const rules = () => execFileSync('ip', ['-n', NS, '-4', 'rule', 'show'], { encoding: 'utf8' });
const ours = new RegExp(`^50:.*lookup ${HOST_NODEPORT_TABLE}\\b`, 'm');

let dir;
test.after.always(() => {
  try { execFileSync('ip', ['netns', 'del', NS], { stdio: 'ignore' }); } catch { /* not made */ }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

gate.serial('a host port\'s rules are left while another wdp has a port in the namespace, removed once it is gone', async (t) => {
  dir = mkdtempSync(join(tmpdir(), 'wdp-hr-'));
  process.env.WDP_RUN_DIR = dir;
  execFileSync('ip', ['netns', 'add', NS]);
  execFileSync('ip', ['-n', NS, '-4', 'rule', 'add', 'pref', '50', 'table', String(HOST_NODEPORT_TABLE)]);
  const holder = spawn(process.execPath, ['--input-type=module', '-e',
    `const m = await import(${JSON.stringify(MODULE)}); m.claimInterface('up0', ${JSON.stringify(NS)}, 7, '/state/other', 'up'); console.log('held'); setInterval(() => {}, 1000);`],
  { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, WDP_RUN_DIR: dir } });
  t.teardown(() => { if (holder.exitCode === null) holder.kill('SIGKILL'); });
  let out = '';
  holder.stdout.on('data', (d) => { out += d; });
  holder.stderr.on('data', (d) => { out += d; });
  for (let i = 0; i < 200 && !out.includes('held') && holder.exitCode === null; i++) await sleep(50);
  t.true(out.includes('held'), out);

  const logs = [];
  const log = { info: (o, m) => logs.push(['info', m, o]), warn: (o, m) => logs.push(['warn', m, o]) };
  dropStaleHostRules(NS, log);
  t.regex(rules(), ours, 'the other wdp\'s rule stays');
  t.true(logs.some(([lvl, m, o]) => lvl === 'info' && /another wdp runs in this network namespace: left alone/.test(m) && o.pid === holder.pid), JSON.stringify(logs));

  holder.kill('SIGKILL');
  await new Promise((r) => { if (holder.exitCode !== null || holder.signalCode !== null) r(); else holder.once('exit', r); });
  logs.length = 0;
  dropStaleHostRules(NS, log);
  t.notRegex(rules(), ours, 'a killed daemon\'s rule is removed');
  t.true(logs.some(([lvl, m]) => lvl === 'warn' && /left by a daemon that did not stop cleanly: removed/.test(m)), JSON.stringify(logs));
});
