// The chaos driver: a seeded, bounded run of faults against a real `wdp start` and its state
// directory (test/lib/chaos.js is the rig), checking the promises of docs/api.md ("The
// desired-state store") and docs/running.md ("Restarts and upgrades"):
//
// * an apply, a delete or a port add/remove answered 200/201 is there after any restart; one the
//   daemon was killed in the middle of is there whole or not at all; one answered with an error
//   is not there;
// * a SIGKILL (or SIGSTOP, then SIGKILL: an OOM kill of a stopped process) at any moment — a large
//   apply (staged on the store's writer thread), a small one, a delete, a port add or remove, the
//   periodic checkpoint (every second here), the start-up and restore, the stop — leaves a state
//   directory the next start opens, restoring the last acknowledged state and the runtime ports;
//   a table image is used only after a clean stop, and then equals the catch-up's compile;
// * a full disk and a read-only remount at random points: writes refused with an error, nothing
//   acknowledged lost; a damaged file (store, WAL, table image, checkpoint, ports file: bytes
//   flipped or the file cut short) fails the start with a clear error deleting nothing, or is
//   refused and kept aside — never a start with less than was acknowledged; a legacy state.json
//   migration killed midway; two daemons on one state directory (one live, or both starting over
//   a dead one's lock): exactly one runs.
//
// Each iteration draws its scenario from the seed; a failure throws an Error naming the seed,
// the iteration and the scenario (`WDP_CHAOS_SEED=n` replays the run), with the steps so far.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import { ChaosRig, prng, sleep } from './chaos.js';
import { within } from './bounded-wait.js';

const NS = 'chaos';
/** Service indexes drawn from [0, SLOTS): a large apply writes 500–700 Services and as many slices (≥ 1,000 rows: the writer thread). */
const SLOTS = 900;
const GEN = 'chaos/gen';

const svcKey = (i) => `Service/${NS}/s${i}`;
const sliceKey = (i) => `EndpointSlice/${NS}/s${i}-a`;

function service(i, gen) {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name: `s${i}`, namespace: NS, labels: { [GEN]: String(gen) } },
    spec: { clusterIP: `10.96.${1 + (i >> 8)}.${i & 255}`, ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] } };
}
function slice(i, gen) {
  return { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
    metadata: { name: `s${i}-a`, namespace: NS, labels: { 'kubernetes.io/service-name': `s${i}`, [GEN]: String(gen) } },
    addressType: 'IPv4', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints: [{ addresses: [`10.244.${1 + (i >> 8)}.${(i & 255)}`], conditions: { ready: true }, nodeName: 'node-a' }] };
}
const ref = (key) => { const [kind, ns, name] = key.split('/'); return { apiVersion: kind === 'Service' ? 'v1' : 'discovery.k8s.io/v1', kind, metadata: { name, namespace: ns } }; };

/** What the daemon is expected to hold: objects (key → gen) and runtime port names. */
const cloneModel = (m) => ({ objs: new Map(m.objs), ports: new Set(m.ports) });
const emptyModel = () => ({ objs: new Map(), ports: new Set() });
const sameObjs = (a, b) => a.size === b.size && [...a].every(([k, g]) => b.get(k) === g);
const sameSet = (a, b) => a.size === b.size && [...a].every((x) => b.has(x));
const describe = (objs) => { const gens = {}; for (const g of objs.values()) gens[g] = (gens[g] ?? 0) + 1; return `${objs.size} objects, by gen ${JSON.stringify(gens)}`; };

const SCENARIOS = {
  'kill-apply-large': 6, 'kill-apply-small': 5, 'kill-delete': 4, 'kill-port': 4, 'kill-start': 3, 'kill-stop': 3,
  'disk-full': 3, 'read-only': 2, corrupt: 6, legacy: 2, 'two-daemons': 2,
};

/** With a kube rig: the sync from the API-server double (changes made there while the daemon is
 * killed at random moments of its sync) — after a restart the daemon converges on the double. */
const KUBE_SCENARIOS = { 'kube-sync': 6, 'kill-start': 2, 'kill-stop': 2, corrupt: 2, 'two-daemons': 1 };

export class ChaosFailure extends Error {}

/**
 * Runs `iterations` faults (or until `budgetMs` has passed, whichever is first) from `seed`.
 * `only`: scenario names to draw from (default all); `cover`: each in turn instead of drawn. `log(line)` gets each step. Resolves with
 * { iterations, scenarios: {name: count}, findings } or throws ChaosFailure naming the seed.
 */
export async function runChaos({ seed, iterations = 10, budgetMs = 300000, only, cover = false, kube = false, log = () => {}, rig: given } = {}) {
  const rnd = prng(seed);
  const table = kube ? KUBE_SCENARIOS : SCENARIOS;
  const names = Object.keys(table).filter((n) => !only || only.includes(n));
  const weighted = names.flatMap((n) => Array(table[n]).fill(n));
  // cover: every scenario in turn, in an order drawn from the seed (a short run sees them all)
  const order = names.map((n) => [rnd.next(), n]).sort((a, b) => a[0] - b[0]).map(([, n]) => n);
  const steps = [];
  const step = (s) => { steps.push(s); log(s); };
  const rig = given ?? await ChaosRig.create({ kube });
  const ctx = { rig, rnd, step, model: emptyModel(), gen: 0, portNo: 0, daemon: null, cleanStop: false, counts: {}, kube, served: new Map() };
  const started = Date.now();
  let i = 0, scenario = '';
  try {
    await ensureUp(ctx);
    for (; i < iterations && Date.now() - started < budgetMs; i++) {
      scenario = cover ? order[i % order.length] : rnd.pick(weighted);
      ctx.counts[scenario] = (ctx.counts[scenario] ?? 0) + 1;
      step(`#${i} ${scenario}`);
      await RUN[scenario](ctx);
    }
    return { iterations: i, scenarios: ctx.counts };
  } catch (e) {
    const d = ctx.daemon;
    throw new ChaosFailure(`chaos seed ${seed} (WDP_CHAOS_SEED=${seed}), iteration ${i}, ${scenario}: ${e.message}\n` +
      `steps:\n  ${steps.slice(-40).join('\n  ')}${d ? `\ndaemon stderr (tail):\n${d.stderr().slice(-3000)}` : ''}`, { cause: e });
  } finally {
    if (!given) await rig.teardown();
  }
}

// ---- daemon life ----

/** Starts the daemon (expecting it to come up) and checks what it restored against the model. */
async function startAndCheck(ctx, allowed = [ctx.model], opts = {}) {
  const { rig, step } = ctx;
  const d = rig.start();
  const st = await rig.ready(d);
  if (st !== 'ready') throw new Error(`the start failed (exit ${JSON.stringify(st)}): ${d.stderr().slice(-2000)}`);
  ctx.daemon = d;
  await check(ctx, allowed, opts);
  ctx.cleanStop = false;
  step('  up, state as expected');
  return d;
}

async function ensureUp(ctx) {
  if (ctx.daemon && !ctx.daemon.done) return;
  await startAndCheck(ctx);
}

/** The daemon's state against the allowed models (the acknowledged one, and the one an operation
 * in flight would make); the model becomes the one found. */
async function check(ctx, allowed, opts = {}) {
  if (ctx.kube) return converged(ctx);
  return checkModel(ctx, allowed, opts);
}

/** The daemon's objects (key → gen label). */
async function objectsOf(rig) {
  const objs = new Map();
  for (const [path, kind] of [['/api/v1/services', 'Service'], ['/api/v1/endpointslices', 'EndpointSlice']]) {
    for (const o of await rig.list(path)) objs.set(`${kind}/${o.metadata.namespace}/${o.metadata.name}`, Number(o.metadata.labels?.[GEN]));
  }
  return objs;
}

/** Kube mode: within 60 s the daemon holds exactly what the double serves. */
async function converged(ctx) {
  let objs = new Map();
  for (const end = Date.now() + 60000; Date.now() < end;) {
    objs = await objectsOf(ctx.rig);
    if (sameObjs(objs, ctx.served)) return;
    await sleep(250);
  }
  throw new Error(`the daemon did not converge on the API server's objects: it has ${describe(objs)}; served ${describe(ctx.served)}`);
}

async function checkModel(ctx, allowed, { portsRelaxed = false, imageExpected } = {}) {
  const { rig } = ctx;
  const objs = new Map();
  for (const [path, kind] of [['/api/v1/services', 'Service'], ['/api/v1/endpointslices', 'EndpointSlice']]) {
    for (const o of await rig.list(path)) {
      const key = `${kind}/${o.metadata.namespace}/${o.metadata.name}`;
      objs.set(key, Number(o.metadata.labels?.[GEN]));
    }
  }
  const match = allowed.find((m) => sameObjs(m.objs, objs));
  if (!match) {
    throw new Error(`restored state is not an acknowledged one: found ${describe(objs)}; allowed ${allowed.map((m) => describe(m.objs)).join(' or ')}`);
  }
  const pr = await rig.req('GET', '/api/v1/ports');
  const ports = new Set(pr.json.items.filter((p) => p.origin === 'api').map((p) => p.name));
  const portMatch = allowed.find((m) => sameObjs(m.objs, objs) && sameSet(m.ports, ports)) ?? allowed.find((m) => sameSet(m.ports, ports));
  if (!portMatch && !portsRelaxed) {
    throw new Error(`restored runtime ports ${JSON.stringify([...ports])} are not an acknowledged set: ${allowed.map((m) => JSON.stringify([...m.ports])).join(' or ')}`);
  }
  if (portsRelaxed) {
    const all = new Set(allowed.flatMap((m) => [...m.ports]));
    const extra = [...ports].filter((p) => !all.has(p));
    if (extra.length) throw new Error(`ports never added came back: ${extra}`);
  }
  const down = pr.json.items.filter((p) => p.state !== 'up').map((p) => `${p.name}:${p.state}`);
  if (down.length) throw new Error(`ports not up after the restart: ${down}`);
  const g = await rig.req('GET', '/api/v1/generation');
  const restore = g.json?.restore ?? {};
  const images = restore.images ?? [];
  for (const im of images) {
    // (a catch-up after incremental changes numbers ids afresh: its tables may differ from the image's)
    if (im.used && imageExpected === false) throw new Error(`a table image was used after an unclean stop: ${JSON.stringify(im)}`);
    if (!im.used && imageExpected === true && im.problem !== 'none') ctx.step(`  (image not used after a clean stop: ${im.problem})`);
  }
  if (restore.problem && !ctx.checkpointDamaged) throw new Error(`the flow checkpoint was refused without having been damaged: ${restore.problem}`);
  ctx.checkpointDamaged = false;
  const names = readdirSync(rig.path());
  const loading = names.filter((n) => n.endsWith('.loading'));
  if (loading.length) throw new Error(`stray files after the start: ${loading}`);
  ctx.model = { objs, ports: portsRelaxed ? ports : portMatch.ports };
}

/** Kills the daemon `how` ('kill' | 'stop-kill' | 'term'), and notes whether the stop was clean. */
async function down(ctx, how) {
  const d = ctx.daemon;
  if (!d || d.done) return;
  const r = await ctx.rig.kill(d, how, ctx.rnd.int(0, 300));
  ctx.cleanStop = how === 'term' && r.code === 0;
  if (how === 'term' && r.code !== 0) throw new Error(`SIGTERM: exit ${JSON.stringify(r)}: ${d.stderr().slice(-1500)}`);
  ctx.step(`  daemon ${how} → ${JSON.stringify(r)}`);
  ctx.daemon = null;
}

const killHow = (rnd) => (rnd.chance(0.25) ? 'stop-kill' : 'kill');

// ---- operations: each returns { body, method, path, next } ----

function opApplyLarge(ctx) {
  const { rnd } = ctx;
  const gen = ++ctx.gen;
  const n = rnd.int(500, 700), from = rnd.int(0, SLOTS - n);
  const objs = [];
  const next = cloneModel(ctx.model);
  for (let i = from; i < from + n; i++) { objs.push(service(i, gen), slice(i, gen)); next.objs.set(svcKey(i), gen); next.objs.set(sliceKey(i), gen); }
  return { what: `apply ${objs.length} objects gen ${gen}`, method: 'POST', path: '/api/v1/apply', body: objs, next };
}

function opApplySmall(ctx) {
  const { rnd } = ctx;
  const gen = ++ctx.gen;
  const objs = [];
  const next = cloneModel(ctx.model);
  const picked = new Set();
  for (let k = rnd.int(1, 10); k > 0; k--) picked.add(rnd.int(0, SLOTS - 1));
  for (const i of picked) {
    if (rnd.chance(0.6)) { objs.push(service(i, gen)); next.objs.set(svcKey(i), gen); }
    if (rnd.chance(0.6)) { objs.push(slice(i, gen)); next.objs.set(sliceKey(i), gen); }
  }
  if (!objs.length) { const i = rnd.int(0, SLOTS - 1); objs.push(service(i, gen)); next.objs.set(svcKey(i), gen); }
  return { what: `apply ${objs.length} objects gen ${gen}`, method: 'POST', path: '/api/v1/apply', body: objs, next };
}

function opDelete(ctx) {
  const { rnd } = ctx;
  const keys = [...ctx.model.objs.keys()];
  if (!keys.length) return opApplySmall(ctx);
  const n = rnd.chance(0.4) ? Math.min(keys.length, rnd.int(500, 1200)) : rnd.int(1, Math.min(10, keys.length));
  const start = rnd.int(0, keys.length - n);
  const chosen = keys.slice(start, start + n);
  const next = cloneModel(ctx.model);
  for (const k of chosen) next.objs.delete(k);
  return { what: `delete ${chosen.length} objects`, method: 'POST', path: '/api/v1/delete', body: chosen.map(ref), next };
}

function opPort(ctx) {
  const { rnd, rig } = ctx;
  const next = cloneModel(ctx.model);
  const have = [...ctx.model.ports];
  if (have.length && (have.length >= 4 || rnd.chance(0.4))) {
    const name = rnd.pick(have);
    next.ports.delete(name);
    return { what: `port remove ${name}`, method: 'DELETE', path: `/api/v1/ports/${name}`, next };
  }
  const k = ++ctx.portNo;
  const name = `cp${k}`;
  next.ports.add(name);
  return { what: `port add ${name}`, method: 'POST', path: '/api/v1/ports', body: { name, type: 'tap', ifname: `wdpc${process.pid % 10000}r${rig.n}p${k}`.slice(0, 15), role: 'pod' }, next };
}

/** Sends `op`; with `killAfterMs` kills the daemon that many ms after sending. Returns the models
 * a restart may show, and updates ctx.model when the answer was a success. */
async function perform(ctx, op, killAfterMs) {
  const { rig, step } = ctx;
  const sent = rig.req(op.method, op.path, op.body);
  let how = null;
  if (killAfterMs !== undefined) {
    await sleep(killAfterMs);
    how = killHow(ctx.rnd);
    await down(ctx, how);
  }
  const r = await sent;
  const ok = r.status === 200 || r.status === 201;
  step(`  ${op.what}${how ? ` (${how} at ${killAfterMs} ms)` : ''} → ${r.status || r.error}${ok || !r.text ? '' : ` ${r.text.slice(0, 200)}`}`);
  if (ok) { ctx.model = op.next; return [op.next]; }
  if (r.status === 0) return [ctx.model, op.next];        // no answer: it may or may not have happened, whole
  if (r.status >= 500 && /uncertain/.test(r.text ?? '')) return [ctx.model, op.next];
  if (r.status === 503 && how) return [ctx.model];        // refused while stopping
  if (r.status >= 400 && r.status < 500) throw new Error(`${op.what}: refused ${r.status}: ${r.text.slice(0, 400)}`);
  return [ctx.model];
}

// ---- scenarios ----

async function killDuring(ctx, makeOp, maxMs) {
  await ensureUp(ctx);
  const op = makeOp(ctx);
  const allowed = await perform(ctx, op, ctx.rnd.int(0, maxMs));
  await startAndCheck(ctx, allowed, { imageExpected: false });
}

const RUN = {
  'kill-apply-large': (ctx) => killDuring(ctx, opApplyLarge, 2500),
  'kill-apply-small': (ctx) => killDuring(ctx, opApplySmall, 40),
  'kill-delete': (ctx) => killDuring(ctx, opDelete, 1500),
  'kill-port': (ctx) => killDuring(ctx, opPort, 150),

  async 'kube-sync'(ctx) {
    const { rig, rnd, step } = ctx;
    await ensureUp(ctx);
    const gen = ++ctx.gen;
    const large = rnd.chance(0.5);
    const n = large ? rnd.int(500, 700) : rnd.int(1, 10), from = rnd.int(0, SLOTS - n);
    const del = !large && ctx.served.size && rnd.chance(0.3);
    // the changes go to the API server; the daemon is killed at a random moment of their sync
    const killAt = rnd.int(0, large ? 4000 : 600);
    const changes = (async () => {
      for (let i = from; i < from + n; i++) {
        for (const [key, obj, path] of [[svcKey(i), service(i, gen), `/api/v1/namespaces/${NS}/services`], [sliceKey(i), slice(i, gen), `/apis/discovery.k8s.io/v1/namespaces/${NS}/endpointslices`]]) {
          const name = obj.metadata.name;
          if (del) {
            if (ctx.served.has(key)) { await rig.double('DELETE', `${path}/${name}`); ctx.served.delete(key); }
            continue;
          }
          const r = ctx.served.has(key) ? await rig.double('PUT', `${path}/${name}`, obj) : await rig.double('POST', path, obj);
          if (r.status >= 300) throw new Error(`the double refused ${key}: ${r.status} ${r.text}`);
          ctx.served.set(key, gen);
        }
      }
    })();
    await sleep(killAt);
    const how = killHow(rnd);
    await down(ctx, how);
    await changes;
    step(`  ${del ? 'deleted' : 'changed'} ${n} Services and slices on the API server (gen ${gen}), ${how} at ${killAt} ms`);
    await startAndCheck(ctx);
  },

  async 'kill-start'(ctx) {
    await ensureUp(ctx);
    // a clean stop first half the time: the start then reads the table image and the checkpoint
    await down(ctx, ctx.rnd.chance(0.5) ? 'term' : 'kill');
    const d = ctx.rig.start();
    ctx.daemon = d;
    const at = ctx.rnd.int(0, 2500);
    await sleep(at);
    await down(ctx, killHow(ctx.rnd));
    ctx.step(`  killed ${at} ms into the start`);
    // (an image the killed start had not taken yet is still the clean stop's, and may be used)
    await startAndCheck(ctx, [ctx.model]);
  },

  async 'kill-stop'(ctx) {
    await ensureUp(ctx);
    if (!ctx.kube && ctx.rnd.chance(0.5)) await perform(ctx, (ctx.rnd.chance(0.5) ? opApplyLarge : opApplySmall)(ctx));
    const d = ctx.daemon;
    process.kill(d.pid, 'SIGTERM');
    const at = ctx.rnd.int(0, 1500);
    await sleep(at);
    await down(ctx, killHow(ctx.rnd));
    ctx.step(`  SIGTERM, then killed ${at} ms into the stop`);
    await startAndCheck(ctx, [ctx.model]);
  },

  async 'disk-full'(ctx) {
    const { rig, rnd, step } = ctx;
    await ensureUp(ctx);
    const leave = rnd.chance(0.7) ? rnd.int(0, 256 << 10) : rnd.int(0, 3 << 20);
    const free = () => { const s = statfsSync(rig.path()); return s.bavail * s.bsize; };
    writeFileSync(rig.path('filler'), Buffer.alloc(Math.max(0, free() - leave)));
    step(`  disk filled, ${free()} bytes left`);
    try {
      for (let k = rnd.int(2, 5); k > 0; k--) {
        const op = rnd.pick([opApplyLarge, opApplySmall, opApplySmall, opDelete, opPort])(ctx);
        await perform(ctx, op);
      }
      const h = await rig.req('GET', '/healthz');
      step(`  healthz ${h.status}`);
      if (rnd.chance(0.5)) {
        // a start on the full disk: it comes up with the acknowledged state, or fails clearly
        await down(ctx, killHow(rnd));
        const d = rig.start();
        const st = await rig.ready(d);
        if (st === 'ready') { ctx.daemon = d; await check(ctx, [ctx.model]); step('  started on the full disk'); }
        else {
          step(`  start on the full disk: exit ${JSON.stringify(st)}: ${lastLine(d.stderr())}`);
          if (!/ENOSPC|full|space/i.test(d.stderr())) throw new Error(`a start on a full disk failed without saying why: ${d.stderr().slice(-1500)}`);
        }
      }
      await down(ctx, rnd.pick(['kill', 'stop-kill', 'term']));
    } finally { rmSync(rig.path('filler'), { force: true }); }
    await startAndCheck(ctx, [ctx.model]);
  },

  async 'read-only'(ctx) {
    const { rig, rnd, step } = ctx;
    await ensureUp(ctx);
    if (rig.fs === 'ext4' && rnd.chance(0.6)) {
      // the filesystem fails under the running daemon (ext4 errors=remount-ro): writes refused
      if (rnd.chance(0.5)) {
        const op = rnd.pick([opApplySmall, opApplyLarge, opDelete])(ctx);
        const sent = perform(ctx, op);
        await sleep(rnd.int(0, 300));
        rig.injectFsError();
        step('  filesystem error injected during an apply');
        await sent;
      } else { rig.injectFsError(); step('  filesystem error injected'); }
      const op = rnd.pick([opApplySmall, opApplyLarge, opDelete, opPort])(ctx);
      const allowed = await perform(ctx, op);
      if (allowed.includes(op.next)) throw new Error(`${op.what} acknowledged on a failed (read-only) filesystem`);
      const h = await rig.req('GET', '/healthz');
      step(`  healthz ${h.status}`);
      await down(ctx, rnd.pick(['kill', 'term']));
      rig.repairFs();
      step('  filesystem repaired');
      return startAndCheck(ctx, [ctx.model]);
    }
    // read-only while stopped: the start fails saying so, or comes up with the acknowledged state
    await down(ctx, rnd.pick(['kill', 'term']));
    rig.remount('ro');
    try {
      const d = rig.start();
      const st = await rig.ready(d, 30000);
      if (st === 'ready') { ctx.daemon = d; await check(ctx, [ctx.model]); step('  started on the read-only directory'); await down(ctx, 'kill'); }
      else {
        step(`  start read-only: exit ${JSON.stringify(st)}: ${lastLine(d.stderr())}`);
        if (!/read-only|EROFS|readonly/i.test(d.stderr())) throw new Error(`a start on a read-only state directory failed without saying why: ${d.stderr().slice(-1500)}`);
      }
    } finally { rig.remount('rw'); }
    await startAndCheck(ctx, [ctx.model]);
  },

  async corrupt(ctx) {
    const { rig, rnd, step } = ctx;
    await ensureUp(ctx);
    for (let k = ctx.kube ? 0 : rnd.int(0, 4); k > 0; k--) await perform(ctx, (rnd.chance(0.8) ? opApplySmall : opApplyLarge)(ctx));
    await down(ctx, rnd.chance(0.5) ? 'term' : 'kill');
    const candidates = ['state.db', 'state.db-wal', 'tables.0.img', 'flows.ckpt', 'ports.json'].filter((f) => existsSync(rig.path(f)) && statSync(rig.path(f)).size > 0);
    const target = rnd.pick(candidates);
    const before = snapshot(rig);
    const orig = before.get(target);
    const bad = Buffer.from(orig);
    let how;
    if (rnd.chance(0.4)) { const len = rnd.int(0, orig.length - 1); how = `cut to ${len} of ${orig.length} bytes`; writeFileSync(rig.path(target), bad.subarray(0, len)); }
    else {
      const at = [];
      for (let k = rnd.int(1, 4); k > 0; k--) { const p = rnd.int(0, bad.length - 1); bad[p] ^= rnd.int(1, 255); at.push(p); }
      how = `bytes flipped at ${at.join(',')} of ${orig.length}`;
      writeFileSync(rig.path(target), bad);
    }
    step(`  ${target}: ${how}`);
    const store = target.startsWith('state.db');
    if (target === 'flows.ckpt') ctx.checkpointDamaged = true;
    const d = rig.start();
    const st = await rig.ready(d);
    if (st === 'ready') {
      ctx.daemon = d;
      await check(ctx, [ctx.model], { portsRelaxed: target === 'ports.json' });
      step(`  started on the damaged ${target}: state as acknowledged`);
      ctx.checkpointDamaged = false;
      await down(ctx, 'kill');
      return startAndCheck(ctx, [ctx.model]);
    }
    step(`  start refused: exit ${JSON.stringify(st)}: ${lastLine(d.stderr())}`);
    if (!store) throw new Error(`a damaged ${target} failed the start (it must be refused and kept aside): ${d.stderr().slice(-1500)}`);
    if (!/state\.db/.test(d.stderr())) throw new Error(`the start failed on a damaged store without naming it: ${d.stderr().slice(-1500)}`);
    // nothing deleted: every file that was there is still there (the -shm is SQLite's index, rebuilt)
    const after = snapshot(rig);
    for (const [name, buf] of before) {
      // (the -shm is SQLite's index, rebuilt; a table image is taken at once by a start and never read twice)
      if (name.endsWith('-shm') || name === 'wdp.lock' || /^tables\.\d+\.img$/.test(name)) continue;
      if (!after.has(name)) throw new Error(`the refused start deleted ${name}`);
      if (name !== target && !after.get(name).equals(buf)) throw new Error(`the refused start changed ${name}`);
    }
    // the operator puts the good file back: everything acknowledged is there
    writeFileSync(rig.path(target), orig);
    rmSync(rig.path('state.db-shm'), { force: true });
    await startAndCheck(ctx, [ctx.model]);
  },

  async legacy(ctx) {
    const { rig, rnd, step } = ctx;
    await down(ctx, 'kill');
    for (const f of readdirSync(rig.path())) rmSync(rig.path(f), { recursive: true, force: true });
    const gen = ++ctx.gen;
    const model = emptyModel();
    const services = [], slices = [];
    const n = rnd.int(1, 300), from = rnd.int(0, SLOTS - n);
    for (let i = from; i < from + n; i++) {
      services.push(service(i, gen)); model.objs.set(svcKey(i), gen);
      if (rnd.chance(0.7)) { slices.push(slice(i, gen)); model.objs.set(sliceKey(i), gen); }
    }
    writeLegacy(rig.path('state.json'), { services, endpointSlices: slices, node: null });
    writeLegacy(rig.path('state.json.bak'), { services: services.slice(0, 1), endpointSlices: [], node: null });
    step(`  state.json of ${model.objs.size} objects`);
    ctx.model = model;
    const d = rig.start();
    ctx.daemon = d;
    const at = rnd.int(0, 1500);
    await sleep(at);
    await down(ctx, killHow(rnd));
    step(`  killed ${at} ms into the migration`);
    await startAndCheck(ctx, [model]);
    const names = readdirSync(rig.path());
    if (!names.includes('state.json.migrated') || names.includes('state.json')) throw new Error(`after the migration: ${names}`);
  },

  async 'two-daemons'(ctx) {
    const { rig, rnd, step } = ctx;
    await ensureUp(ctx);
    const ended = (d, ms) => within(d.exited, ms).then(() => d.done);
    if (rnd.chance(0.5)) {
      const d2 = rig.start();
      if (!await ended(d2, 30000)) { await rig.kill(d2, 'kill'); throw new Error('a second daemon runs on a live daemon\'s state directory'); }
      if (!/in use by another wdp/.test(d2.stderr())) throw new Error(`the second daemon failed without saying why: ${d2.stderr().slice(-1500)}`);
      step(`  a second daemon refused: ${lastLine(d2.stderr())}`);
      await check(ctx, [ctx.model]);
      return;
    }
    // over a dead daemon's lock, two starts at once: exactly one runs
    await down(ctx, 'kill');
    const a = rig.start(), b = rig.start();
    await within(Promise.race([a.exited, b.exited]), 30000);
    await sleep(2000);
    const alive = [a, b].filter((d) => !d.done);
    step(`  two starts: ${JSON.stringify(a.done)} / ${JSON.stringify(b.done)}`);
    if (alive.length !== 1) {
      for (const d of alive) await rig.kill(d, 'kill');
      throw new Error(`${alive.length} daemons running on one state directory after two starts at once (stderr: ${a.stderr().slice(-300)} | ${b.stderr().slice(-300)})`);
    }
    const loser = a.done ? a : b;
    if (!/in use by another wdp/.test(loser.stderr())) throw new Error(`the second start failed without saying why: ${loser.stderr().slice(-1500)}`);
    ctx.daemon = alive[0];
    if (await rig.ready(ctx.daemon) !== 'ready') throw new Error(`the start that won did not come up: ${ctx.daemon.stderr().slice(-1500)}`);
    await check(ctx, [ctx.model]);
  },
};

function snapshot(rig) {
  const m = new Map();
  for (const f of readdirSync(rig.path())) { try { const p = rig.path(f); if (statSync(p).isFile()) m.set(f, readFileSync(p)); } catch { /* gone meanwhile */ } }
  return m;
}

const lastLine = (s) => s.trim().split('\n').pop()?.slice(0, 300) ?? '';

function writeLegacy(path, state) {
  const payload = JSON.stringify(state);
  const sha = createHash('sha256').update(payload).digest('hex');
  writeFileSync(path, `{"format":"wdp-desired-state","version":1,"savedAt":"2026-01-01T00:00:00.000Z","sha256":"${sha}","state":${payload}}\n`);
}
