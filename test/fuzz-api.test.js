// The seeded fuzzer of the control API and the CLI against a real `wdp start` (test/lib/api-fuzz.js,
// test/lib/cli-fuzz.js), bounded: a fixed corpus of seeds, a few hundred requests and a few dozen
// CLI runs, restarts (SIGTERM and SIGKILL) in between. Invariants after every request: the daemon
// answers, a 2xx or a 4xx with a clear message (never a 5xx for client input), a refused change or
// a dry run changed nothing, an accepted apply round-trips, a restart restores the acknowledged
// state; every CLI run ends with 0/1 (diff 0/1/2) and `error:` lines without a stack or JavaScript
// error text. WDP_FUZZ_API_SEED=n runs that seed instead of the corpus; each problem names its
// seed and case (`node bench/fuzz-api.mjs --seed n --from i --iterations 1` replays one). Plus, in
// process: validation of mutated objects never throws, the fast path and zod agree, messages name
// the value sent, and an accepted object's stored form validates to itself; mutated daemon
// configs are accepted or refused with a clear ConfigError.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootGate } from './lib/root-gate.js';
import { NetnsLab } from '../dist/src/netns.js';
import { validateObject } from '../dist/src/model/schema.js';
import { ConfigError, parseConfig } from '../dist/src/daemon/config.js';
import { FuzzDaemon, fuzz, mutateValue, rng, unclear, validNodeConfig, validService, validSlice } from './lib/api-fuzz.js';
import { fuzzCli } from './lib/cli-fuzz.js';

const gate = rootGate(test);
const given = process.env.WDP_FUZZ_API_SEED ? [Number(process.env.WDP_FUZZ_API_SEED)] : null;
// seeds whose runs found the defects fixed with this test (see each problem's own test)
const CORPUS = given ?? [2, 3, 4, 10, 11];
const CASES = 250;

const report = (t, problems) => {
  for (const p of problems) t.log(`seed ${p.seed} case ${p.i}: ${p.what}\n  ${p.request.slice(0, 600)}\n  -> ${p.extra}`);
  // (the details in the failure itself: a CI log may keep only the summary at its end)
  t.deepEqual(problems.map((p) => `seed ${p.seed} case ${p.i}: ${p.what} -> ${p.extra.slice(0, 700)}`), []);
};

/** A `wdp start` in a namespace of its own lab, removed with its files when the test ends. */
async function daemonFor(t, kind) {
  t.timeout(900_000);
  const lab = new NetnsLab(kind);
  const dir = mkdtempSync(join(tmpdir(), `wdp-fuzz-${kind}-`));
  const d = new FuzzDaemon(lab.namespace('dp'), dir);
  t.teardown(async () => { await d.stop('SIGKILL'); await lab.destroy(); rmSync(dir, { recursive: true, force: true }); });
  await d.start();
  return { d, dir };
}

gate.serial(`the control API of a real daemon: ${CORPUS.length} seeds x ${CASES} mutated requests, with restarts`, async (t) => {
  const { d } = await daemonFor(t, 'fa');
  const problems = [];
  for (const seed of CORPUS) {
    t.log(`seed ${seed}`);
    problems.push(...(await fuzz(d, { seed, iterations: CASES, restartEvery: 75 })).problems);
  }
  report(t, problems);
});

gate.serial('the CLI against a real daemon: mutated flags of every client command', async (t) => {
  const { d, dir } = await daemonFor(t, 'fc');
  const seed = given?.[0] ?? 19; // (its cases 0-39 hold an empty NAME, which listed every object before)
  t.log(`seed ${seed}`);
  report(t, (await fuzzCli({ seed, iterations: 40, server: `unix:${d.sock}`, dir })).problems);
});

test('validation of mutated objects: no throw, fast path = zod, messages name the value, stored objects validate to themselves', (t) => {
  const sorted = (v) => Array.isArray(v) ? v.map(sorted) : v && typeof v === 'object' ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted(v[k])])) : v;
  const J = (v) => JSON.stringify(sorted(v));
  const seed = given?.[0] ?? 5;
  const problems = [];
  for (let i = 0; i < 2000 && problems.length < 20; i++) {
    const r = rng((seed * 1000003 + i) >>> 0);
    let o = r.pick([validService, validSlice, validNodeConfig])(r);
    for (let k = 1 + r.int(3); k > 0; k--) o = mutateValue(r, o);
    const text = JSON.stringify(o);
    let fast, zod;
    try { fast = validateObject(JSON.parse(text), true); zod = validateObject(JSON.parse(text), false); } catch (e) { problems.push(`${i}: threw ${e.message}: ${text.slice(0, 300)}`); continue; }
    if (fast.ok !== zod.ok) { problems.push(`${i}: fast path ${fast.ok} but zod ${zod.ok}: ${text.slice(0, 300)}`); continue; }
    if (!fast.ok) {
      for (const e of fast.errors) {
        const why = unclear(e.message) ?? (/\[object |: undefined:|Invalid value: undefined/.test(e.message) ? 'JavaScript rendering of the value' : null);
        if (why) problems.push(`${i}: ${why}: ${e.message.slice(0, 200)} <- ${text.slice(0, 200)}`);
      }
      continue;
    }
    if (J(fast.obj.raw) !== J(zod.obj.raw)) problems.push(`${i}: fast path and zod store different objects: ${text.slice(0, 300)}`);
    const again = validateObject(JSON.parse(JSON.stringify(fast.obj.raw)));
    if (!again.ok) problems.push(`${i}: the stored object is refused: ${again.errors[0].message}`);
    else if (J(again.obj.raw) !== J(fast.obj.raw)) problems.push(`${i}: the stored object validates to another`);
  }
  t.deepEqual(problems, [], `seed ${seed}`);
});

test('the daemon config: mutated configs are accepted or refused with a ConfigError whose lines are clear; an accepted one holds only finite numbers', (t) => {
  const base = () => ({
    node: { name: 'n1', addresses: ['192.168.50.2', 'fd00:50::2'], serviceCIDRs: ['10.96.0.0/12'], clusterCIDRs: ['10.244.0.0/16'], zone: 'z', masqueradeAll: false },
    ports: [{ name: 'up', type: 'afpacket', ifname: 'eth1', role: 'uplink', gateways: ['10.0.0.1'], ring: 'v2' },
      { name: 'pa', type: 'tap', ifname: 'tap-a', role: 'pod', gateways: ['10.244.0.1'], pods: [{ ip: '10.244.1.11', mac: '02:aa:00:00:00:0b' }, { ip: '10.244.1.12' }], mtu: 1450 }],
    routes: [{ prefix: '0.0.0.0/0', port: 'up', via: '10.0.0.254' }, { prefix: '10.244.2.0/24', port: 'up', mac: '02:00:00:00:00:fe' }],
    masquerade: { ipv4: '192.168.50.2' }, api: { listen: '127.0.0.1:9440', healthz: '127.0.0.1:10256' }, stateDir: '/var/lib/wdp', workers: 1, logLevel: 'info',
    conntrack: { flows: 65536, tcpEstablishedSeconds: 86400, udpSeconds: 30, checkpointSeconds: 30 }, probeIntervalMs: 1000, neighbourReachableMs: 30000,
    announce: { loadBalancerIPs: false, externalIPs: false }, hugePages: false, workerNice: 0, workerRealtimePriority: 0, controlNice: 0, helperNice: 5, busyPollUs: 0,
    kubernetes: { minSyncPeriod: '1s', syncPeriod: '30s', hostnameOverride: 'n1' },
  });
  const seed = given?.[0] ?? 1;
  const problems = [];
  let accepted = 0;
  for (let i = 0; i < 1000 && problems.length < 20; i++) {
    const r = rng((seed * 7919 + i) >>> 0);
    let o = base();
    for (let k = 1 + r.int(3); k > 0; k--) o = mutateValue(r, o);
    const text = JSON.stringify(o);
    let c;
    try { c = parseConfig(JSON.parse(text)); accepted++; } catch (e) {
      if (!(e instanceof ConfigError)) { problems.push(`${i}: threw ${e.constructor.name}: ${e.message.slice(0, 200)} <- ${text.slice(0, 200)}`); continue; }
      const why = unclear(e.message) ?? (/\[object |: undefined\b/.test(e.message) ? 'JavaScript rendering of a value' : null);
      if (why) problems.push(`${i}: ${why}: ${e.message.slice(0, 300)}`);
      continue;
    }
    // what the daemon reads from an accepted one: no number it cannot use
    const stack = [c];
    while (stack.length) {
      const v = stack.pop();
      if (typeof v === 'number' && !Number.isFinite(v)) { problems.push(`${i}: an accepted config holds ${v}: ${text.slice(0, 300)}`); break; }
      if (v && typeof v === 'object') stack.push(...Object.values(v));
    }
  }
  t.deepEqual(problems, [], `seed ${seed}`);
  t.true(accepted > 50, `accepted ${accepted}`);
});
