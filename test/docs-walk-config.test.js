// docs/running.md's configuration examples, read by the daemon's own loader (src/daemon/config.ts)
// as an operator would paste them, and the documented rule that a non-loopback API listener needs
// a token checked with the rest of the file (exit 2 before any port opens).
import test from 'ava';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { parse } from 'yaml';
import { loadConfigFile, parseConfig } from '../dist/src/daemon/config.js';

const ROOT = new URL('../', import.meta.url).pathname;
const running = readFileSync(join(ROOT, 'docs/running.md'), 'utf8');
const yamlBlocks = [...running.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]);
const block = (re) => { const b = yamlBlocks.find((x) => re.test(x)); if (!b) throw new Error(`no yaml block matching ${re}`); return b; };
const CONFIG_SRC = readFileSync(join(ROOT, 'src/daemon/config.ts'), 'utf8');

function load(text) {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-walk-cfg-'));
  try { const f = join(dir, 'wdp.yaml'); writeFileSync(f, text); return loadConfigFile(f); } finally { rmSync(dir, { recursive: true, force: true }); }
}

test('running.md "Configuration": the annotated file loads as written; every option it mentions in a comment is one the schema has', (t) => {
  const text = block(/^node:\n\s+name: node-a/);
  const cfg = load(text);
  t.is(cfg.node.name, 'node-a');
  t.is(cfg.ports.length, 2);
  t.is(cfg.ports[1].netns, 'pod-a');
  const commented = [...text.matchAll(/^\s*#\s+([a-zA-Z]+):\s/gm)].map((m) => m[1]);
  t.true(commented.length > 10);
  for (const k of new Set(commented)) t.true(new RegExp(`\\b${k}: `).test(CONFIG_SRC), `the documented option ${k} is not in src/daemon/config.ts`);
});

test('running.md "host port": the node recipe loads once the router\'s MAC is filled in', (t) => {
  const text = block(/role: host/).replace('<the router\'s MAC>', '02:00:00:00:10:01');
  const cfg = load(text);
  t.is(cfg.ports[1].role, 'host');
});

test('running.md "Running in a cluster": the kubernetes: section loads with the ports above', (t) => {
  const ports = parse(block(/^node:\n\s+name: node-a/)).ports;
  const raw = parse(block(/^kubernetes:|\nkubernetes:/).replace('ports: [...]', ''));
  const cfg = parseConfig({ ...raw, ports });
  t.is(cfg.kubernetes.detectLocalMode, 'ClusterCIDR');
});

test('api.listen on a non-loopback address without a token is a config error (api.token), with a token it loads', (t) => {
  const base = { node: { name: 'n1', addresses: ['192.168.1.3'] }, ports: [{ name: 'up', type: 'afpacket', ifname: 'eth1', role: 'uplink' }] };
  for (const listen of ['0.0.0.0:9440', '192.168.1.3:9440', '[::]:9440']) {
    const e = t.throws(() => parseConfig({ ...base, api: { listen } }), undefined, listen);
    t.regex(e.message, /api\.token: required when api\.listen .* is not a loopback address/);
  }
  t.notThrows(() => parseConfig({ ...base, api: { listen: '0.0.0.0:9440', token: 'a-token-of-16-chars+' } }));
  for (const listen of ['127.0.0.1:9440', '[::1]:9440', 'localhost:9440', 'unix:/run/wdp/api.sock']) t.notThrows(() => parseConfig({ ...base, api: { listen } }), listen);
});

test('wdp start with such a listener exits 2 naming api.token, before opening any port', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-walk-cfg-'));
  try {
    const f = join(dir, 'wdp.yaml');
    writeFileSync(f, JSON.stringify({ node: { name: 'n1', addresses: ['192.168.1.3'] }, ports: [{ name: 'up', type: 'afpacket', ifname: 'nosuch-if', role: 'uplink' }], api: { listen: '0.0.0.0:9440' }, stateDir: join(dir, 'state') }));
    const r = spawnSync(process.execPath, [join(ROOT, 'bin/wdp.js'), 'start', '--config', f], { encoding: 'utf8', timeout: 30000 });
    t.is(r.status, 2, r.stderr);
    t.regex(r.stderr, /api\.token: required/);
    t.notRegex(r.stderr, /nosuch-if/, 'no port was tried');
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('running.md "Configuration": the values the annotated file sets are the defaults a file without them gets', async (t) => {
  const { DEFAULT_TIMEOUTS } = await import('../dist/src/core/timeouts.js');
  const text = block(/^node:\n\s+name: node-a/);
  const doc = parse(text);
  const def = parseConfig({ node: { name: 'n' }, ports: [{ name: 'u', type: 'afpacket', ifname: 'e', role: 'uplink' }] });
  for (const k of ['stateDir', 'workers', 'logLevel', 'probeIntervalMs', 'neighbourReachableMs', 'announce', 'hugePages',
    'workerNice', 'workerRealtimePriority', 'controlNice', 'helperNice', 'busyPollUs']) t.deepEqual(doc[k], def[k], k);
  t.is(doc.api.listen, def.api.listen, 'api.listen');
  t.is(doc.api.healthz, def.api.healthz, 'api.healthz');
  t.is(doc.conntrack.flows, def.conntrack.flows, 'conntrack.flows');
  t.is(doc.conntrack.checkpointSeconds, def.conntrack.checkpointSeconds, 'conntrack.checkpointSeconds');
  t.is(doc.conntrack.tcpEstablishedSeconds * 1000, DEFAULT_TIMEOUTS.tcpEstablishedMs, 'conntrack.tcpEstablishedSeconds');
  t.is(doc.conntrack.udpSeconds * 1000, DEFAULT_TIMEOUTS.udpMs, 'conntrack.udpSeconds');
  // the defaults the comments name: "tcpSynSeconds (60)", ...
  for (const [k, ms] of [['tcpSynSeconds', 'tcpSynMs'], ['tcpUnconfirmedSeconds', 'tcpUnconfirmedMs'], ['tcpHalfClosedSeconds', 'tcpHalfClosedMs'], ['sctpEstablishedSeconds', 'sctpMs']]) {
    const m = new RegExp(`${k} \\((\\d+)\\)`).exec(text);
    t.truthy(m, `the comment names ${k}'s default`);
    t.is(Number(m?.[1]) * 1000, DEFAULT_TIMEOUTS[ms], k);
  }
  t.regex(text, /role: uplink +# uplink \| pod \| host\b/, 'every role is listed');
});
