// wdp-cni (src/cni/plugin.ts) against the CNI spec, with the daemon's ports API replaced by a
// recording fake: commands, environment checks, error codes and JSON, chained prevResult.
import test from 'ava';
import { runCni, portName, SUPPORTED_VERSIONS } from '../dist/src/cni/plugin.js';
import { ApiError } from '../dist/src/cli/client.js';

const prevResult = {
  cniVersion: '1.0.0',
  interfaces: [{ name: 'veth1a2b', mac: '0a:00:00:00:00:01' }, { name: 'eth0', mac: '0A:00:00:00:00:02', sandbox: '/var/run/netns/pod1' }],
  ips: [{ address: '10.244.1.20/32', gateway: '10.244.0.1', interface: 1 }, { address: 'fd00:244::20/128', gateway: 'fd00:244::1', interface: 1 }],
  routes: [{ dst: '0.0.0.0/0' }], dns: {},
};
const conf = (o = {}) => JSON.stringify({ cniVersion: '1.0.0', name: 'k8s', type: 'wdp-cni', server: 'unix:/nonexistent.sock', prevResult, ...o });
const env = (cmd, o = {}) => ({ CNI_COMMAND: cmd, CNI_CONTAINERID: 'c0ffee', CNI_NETNS: '/var/run/netns/pod1', CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin', ...o });

/** The host's interfaces as `ip -d link` would describe them: the pod's veth, a bridge and its
 * port, the IFB device `bandwidth` creates. */
const LINKS = { veth1a2b: { kind: 'veth' }, cni0: { kind: 'bridge' }, vethbr01: { kind: 'veth', master: 'cni0' }, bwp5f3a9c: { kind: 'ifb' } };

function fakeDeps(handler) {
  const calls = [], flushed = [];
  return {
    calls, flushed,
    deps: {
      api: () => ({ call: async (method, path, body) => { calls.push({ method, path, body: body && JSON.parse(body) }); return handler(method, path, body && JSON.parse(body)); } }),
      flushAddresses: (ifname) => flushed.push(ifname),
      linkInfo: (ifname) => LINKS[ifname],
    },
  };
}

test('VERSION prints the supported versions', async (t) => {
  const r = await runCni({ CNI_COMMAND: 'VERSION' }, '{"cniVersion":"1.0.0"}');
  t.is(r.exitCode, 0);
  t.deepEqual(JSON.parse(r.stdout), { cniVersion: '1.0.0', supportedVersions: SUPPORTED_VERSIONS });
});

test('spec 1.1.0 (a list\'s cniVersion, or the highest of its cniVersions, which libcni sends without asking the plugin): ADD, DEL, CHECK served; VERSION lists it and answers in the version asked', async (t) => {
  const f = fakeDeps((m) => (m === 'GET' ? { ifname: 'veth1a2b', pods: [{ ip: '10.244.1.20' }, { ip: 'fd00:244::20' }] } : {}));
  const add = await runCni(env('ADD'), conf({ cniVersion: '1.1.0' }), f.deps);
  t.is(add.exitCode, 0, add.stdout);
  t.deepEqual(JSON.parse(add.stdout), { ...prevResult, cniVersion: '1.1.0' });
  t.deepEqual(await runCni(env('CHECK'), conf({ cniVersion: '1.1.0' }), f.deps), { stdout: '', exitCode: 0 });
  t.deepEqual(await runCni(env('DEL'), conf({ cniVersion: '1.1.0' }), f.deps), { stdout: '', exitCode: 0 });
  t.deepEqual(f.calls.map((c) => c.method), ['POST', 'GET', 'DELETE']);
  const v = JSON.parse((await runCni({ CNI_COMMAND: 'VERSION' }, '{"cniVersion":"1.1.0"}')).stdout);
  t.deepEqual(v, { cniVersion: '1.1.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
  t.is(JSON.parse((await runCni({ CNI_COMMAND: 'VERSION' }, '{"cniVersion":"0.4.0"}')).stdout).cniVersion, '0.4.0');
});

test('STATUS (1.1.0): success when the daemon\'s health check answers; code 50 when the daemon is not answering or not forwarding; refused before 1.1.0', async (t) => {
  const statusConf = JSON.stringify({ cniVersion: '1.1.0', name: 'k8s', type: 'wdp-cni', server: 'unix:/nonexistent.sock' });
  const up = fakeDeps(() => ({ nodeEligible: true }));
  t.deepEqual(await runCni({ CNI_COMMAND: 'STATUS', CNI_PATH: '/opt/cni/bin' }, statusConf, up.deps), { stdout: '', exitCode: 0 });
  t.deepEqual(up.calls.map((c) => `${c.method} ${c.path}`), ['GET /healthz']);
  const down = fakeDeps(() => { throw new ApiError('cannot reach', 0, null); });
  let r = await runCni({ CNI_COMMAND: 'STATUS' }, statusConf, down.deps);
  t.is(r.exitCode, 1);
  t.like(JSON.parse(r.stdout), { cniVersion: '1.1.0', code: 50 });
  const unhealthy = fakeDeps(() => { throw new ApiError('HTTP 503', 503, null); });
  r = await runCni({ CNI_COMMAND: 'STATUS' }, statusConf, unhealthy.deps);
  t.is(JSON.parse(r.stdout).code, 50);
  r = await runCni({ CNI_COMMAND: 'STATUS' }, statusConf.replace('1.1.0', '1.0.0'), up.deps);
  t.is(JSON.parse(r.stdout).code, 1, 'STATUS does not exist before 1.1.0');
});

const gcConf = (o = {}) => JSON.stringify({ cniVersion: '1.1.0', name: 'k8s', type: 'wdp-cni', server: 'unix:/nonexistent.sock', 'cni.dev/valid-attachments': [{ containerID: 'c0ffee', ifname: 'eth0' }], ...o });
const gcEnv = { CNI_COMMAND: 'GC', CNI_PATH: '/opt/cni/bin' };

test('GC (1.1.0) asks the daemon to remove this network\'s ports whose attachment is not in cni.dev/valid-attachments; no output on success', async (t) => {
  const f = fakeDeps(() => ({ kind: 'CniGcResult', network: 'k8s', removed: ['cni-1'], failed: [] }));
  const logged = [];
  t.deepEqual(await runCni(gcEnv, gcConf(), f.deps, (s) => logged.push(s)), { stdout: '', exitCode: 0 });
  t.deepEqual(f.calls, [{ method: 'POST', path: '/api/v1/cni/gc', body: { network: 'k8s', validAttachments: [{ containerID: 'c0ffee', ifname: 'eth0' }] } }]);
  t.regex(logged.join('\n'), /removed ports cni-1/);
  // libcni sends the list under both names (an early spec text said cni.dev/attachments)
  const g = fakeDeps(() => ({ removed: [], failed: [] }));
  t.is((await runCni(gcEnv, gcConf({ 'cni.dev/valid-attachments': undefined, 'cni.dev/attachments': [{ containerID: 'x', ifname: 'net1', extra: 1 }] }), g.deps)).exitCode, 0);
  t.deepEqual(g.calls[0].body.validAttachments, [{ containerID: 'x', ifname: 'net1' }]);
  // an empty list: nothing of this network is valid any more
  const e = fakeDeps(() => ({ removed: [], failed: [] }));
  t.is((await runCni(gcEnv, gcConf({ 'cni.dev/valid-attachments': [] }), e.deps)).exitCode, 0);
  t.deepEqual(e.calls[0].body, { network: 'k8s', validAttachments: [] });
  // only what GC uses is checked: a config whose gateways went bad does not stop it
  t.is((await runCni(gcEnv, gcConf({ gateways: ['nope'] }), e.deps)).exitCode, 0);
});

test('GC with a null valid list (libcni as CRI-O calls it when no pod of the network is left: Go\'s nil slice) is an empty list: every port of the network goes', async (t) => {
  const f = fakeDeps(() => ({ removed: ['cni-1'], failed: [] }));
  const r = await runCni(gcEnv, gcConf({ 'cni.dev/valid-attachments': null, 'cni.dev/attachments': null }), f.deps);
  t.deepEqual(r, { stdout: '', exitCode: 0 });
  t.deepEqual(f.calls.map((c) => c.body), [{ network: 'k8s', validAttachments: [] }]);
  // one name null, the other a list (not what libcni sends, but not a reason to lose the list)
  const g = fakeDeps(() => ({ removed: [], failed: [] }));
  t.is((await runCni(gcEnv, gcConf({ 'cni.dev/valid-attachments': null, 'cni.dev/attachments': [{ containerID: 'c1', ifname: 'eth0' }] }), g.deps)).exitCode, 0);
  t.deepEqual(g.calls[0].body.validAttachments, [{ containerID: 'c1', ifname: 'eth0' }]);
});

test('GC errors: a missing or malformed valid list or network name is refused whole (7), nothing asked of the daemon; stale ports left behind (102); daemon down (11); before 1.1.0 (1)', async (t) => {
  const f = fakeDeps(() => ({ removed: [], failed: [] }));
  const code = async (stdin, deps = f.deps) => { const r = await runCni(gcEnv, stdin, deps); t.is(r.exitCode, 1); const j = JSON.parse(r.stdout); t.is(typeof j.msg, 'string'); return j; };
  t.like(await code(gcConf({ 'cni.dev/valid-attachments': undefined })), { cniVersion: '1.1.0', code: 7 });
  t.is((await code(gcConf({ 'cni.dev/valid-attachments': { containerID: 'c', ifname: 'eth0' } }))).code, 7);
  t.is((await code(gcConf({ 'cni.dev/valid-attachments': [{ containerID: 'c', ifname: 'eth0' }, { containerID: 'd' }] }))).code, 7);
  t.is((await code(gcConf({ 'cni.dev/valid-attachments': [null] }))).code, 7);
  t.is((await code(gcConf({ name: undefined }))).code, 7);
  t.is((await code(gcConf({ name: '-bad name' }))).code, 7);
  t.is((await code(gcConf({ cniVersion: '1.0.0' }))).code, 1, 'GC does not exist before 1.1.0');
  t.is(f.calls.length, 0);
  const partly = fakeDeps(() => ({ removed: ['cni-1'], failed: [{ name: 'cni-2', error: 'worker timed out' }] }));
  const p = await code(gcConf(), partly.deps);
  t.is(p.code, 102);
  t.regex(p.details, /cni-2: worker timed out/);
  t.is((await code(gcConf(), fakeDeps(() => { throw new ApiError('cannot reach', 0, null); }).deps)).code, 11);
  t.is((await code(gcConf(), fakeDeps(() => { throw new ApiError('invalid', 422, null); }).deps)).code, 102);
});

test('GC against a daemon that is stopping (503) is code 11, try again later, as against one not answering', async (t) => {
  const stopping = fakeDeps(() => { throw new ApiError('Service Unavailable', 503, null); });
  const r = await runCni(gcEnv, gcConf(), stopping.deps);
  t.is(r.exitCode, 1);
  const j = JSON.parse(r.stdout);
  t.is(j.code, 11);
  t.regex(j.msg, /not serving|stopping|try again/i);
});

// SPEC.md's code 11, "try again later": a transient condition the runtime should retry — a daemon
// stopping (or its dataplane not running yet) answers 503
test('ADD and CHECK against a daemon that is stopping or starting (503) are code 11, try again later, as against one not answering; DEL then fails with 11 too (retried), where a daemon not answering lets it succeed', async (t) => {
  const stopping = () => fakeDeps(() => { throw new ApiError('HTTP 503: the dataplane is not running', 503, null); });
  for (const cmd of ['ADD', 'CHECK']) {
    const f = stopping();
    const r = await runCni(env(cmd), conf(), f.deps);
    t.is(r.exitCode, 1, cmd);
    const j = JSON.parse(r.stdout);
    t.is(j.code, 11, cmd);
    t.regex(j.msg, /not serving|stopping|try again/i, cmd);
    t.regex(j.details, /dataplane is not running/, `${cmd}: the daemon's answer in details`);
    t.is(f.calls.length, 1, `${cmd}: one call, nothing more asked`);
  }
  const logged = [];
  const r = await runCni(env('DEL'), conf(), stopping().deps, (s) => logged.push(s));
  t.is(r.exitCode, 1);
  t.is(JSON.parse(r.stdout).code, 11);
  t.deepEqual(logged, [], 'not taken for a daemon that is away');
  t.is(JSON.parse((await runCni(env('ADD'), conf(), fakeDeps(() => { throw new ApiError('invalid', 422, null); }).deps)).stdout).code, 100, 'a refusal is still 100');
});

test('GC against a daemon from before CNI GC (no route: 404) succeeds removing nothing and says why on stderr: its ports record no attachment, so none is collectable', async (t) => {
  const logged = [];
  const old = fakeDeps(() => { throw new ApiError('no route POST /api/v1/cni/gc; see docs/api.md', 404, null); });
  t.deepEqual(await runCni(gcEnv, gcConf(), old.deps, (s) => logged.push(s)), { stdout: '', exitCode: 0 });
  t.is(logged.length, 1);
  t.regex(logged[0], /predates CNI GC/);
  t.regex(logged[0], /upgrade/);
});

test('ADD attaches the host-side veth as a pod port and prints prevResult in the config\'s version', async (t) => {
  const f = fakeDeps(() => ({ name: 'x' }));
  const r = await runCni(env('ADD'), conf({ gateways: ['10.244.0.254'] }), f.deps);
  t.is(r.exitCode, 0, r.stdout);
  t.deepEqual(JSON.parse(r.stdout), { ...prevResult, cniVersion: '1.0.0' });
  t.deepEqual(f.flushed, ['veth1a2b'], 'the previous plugin\'s gateway address leaves the host side');
  t.is(f.calls.length, 1);
  t.like(f.calls[0], { method: 'POST', path: '/api/v1/ports' });
  t.deepEqual(f.calls[0].body, {
    name: portName('c0ffee', 'eth0'), type: 'afpacket', ifname: 'veth1a2b', role: 'pod',
    gateways: ['10.244.0.1', 'fd00:244::1', '10.244.0.254'],
    pods: [{ ip: '10.244.1.20', mac: '0a:00:00:00:00:02' }, { ip: 'fd00:244::20', mac: '0a:00:00:00:00:02' }],
    attachment: { network: 'k8s', containerID: 'c0ffee', ifname: 'eth0' },
  });
  t.regex(portName('c0ffee', 'eth0'), /^cni-[0-9a-f]{16}$/);
  t.not(portName('c0ffee', 'eth0'), portName('c0ffee', 'eth1'));
});

test('ADD after `bandwidth` in the chain (its IFB device appended to prevResult\'s interfaces) attaches the pod\'s veth, not the IFB; a bridge\'s port is refused', async (t) => {
  const shaped = { ...prevResult, interfaces: [...prevResult.interfaces, { name: 'bwp5f3a9c', mac: '0a:00:00:00:00:03' }] };
  const f = fakeDeps(() => ({}));
  const r = await runCni(env('ADD'), conf({ prevResult: shaped }), f.deps);
  t.is(r.exitCode, 0, r.stdout);
  t.deepEqual(JSON.parse(r.stdout), { ...shaped, cniVersion: '1.0.0' }, 'prevResult passes through, the IFB included');
  t.deepEqual(f.flushed, ['veth1a2b']);
  t.is(f.calls[0].body.ifname, 'veth1a2b');
  const bridged = { ...prevResult, interfaces: [{ name: 'cni0' }, { name: 'vethbr01' }, prevResult.interfaces[1]] };
  const g = fakeDeps(() => ({}));
  const b = await runCni(env('ADD'), conf({ prevResult: bridged }), g.deps);
  t.is(b.exitCode, 1);
  t.like(JSON.parse(b.stdout), { code: 7 });
  t.regex(JSON.parse(b.stdout).details, /cni0: bridge, vethbr01: veth in cni0/);
  t.is(g.calls.length + g.flushed.length, 0, 'nothing changed for a refused ADD');
});

test('ADD repeated for an attachment whose port is there as ADD makes it succeeds (a port saved without an attachment too); another interface, other addresses or another attachment is an error', async (t) => {
  const pods = [{ ip: '10.244.1.20' }, { ip: 'fd00:244::20' }];
  const attachment = { network: 'k8s', containerID: 'c0ffee', ifname: 'eth0' };
  const existing = (port) => fakeDeps((m) => { if (m === 'POST') throw new ApiError('exists', 409, null); return port; });
  for (const port of [{ ifname: 'veth1a2b', pods, attachment }, { ifname: 'veth1a2b', pods }]) {
    const r = await runCni(env('ADD'), conf(), existing(port).deps);
    t.is(r.exitCode, 0, r.stdout);
    t.deepEqual(JSON.parse(r.stdout), { ...prevResult, cniVersion: '1.0.0' });
  }
  for (const [port, why] of [
    [{ ifname: 'vethother', pods, attachment }, /on vethother/],
    [{ ifname: 'veth1a2b', pods: [{ ip: '10.244.1.99' }], attachment }, /serves 10\.244\.1\.99/],
    [{ ifname: 'veth1a2b', pods, attachment: { ...attachment, network: 'other' } }, /attachment/],
  ]) {
    const r = await runCni(env('ADD'), conf(), existing(port).deps);
    t.is(r.exitCode, 1);
    t.is(JSON.parse(r.stdout).code, 100);
    t.regex(JSON.parse(r.stdout).msg, why);
  }
  // the interface is another port's (the daemon's 409), no port of this attachment
  const clash = fakeDeps((m) => { throw new ApiError(m === 'POST' ? 'interface "veth1a2b" is already port "x"' : 'no port', m === 'POST' ? 409 : 404, null); });
  const r = await runCni(env('ADD'), conf(), clash.deps);
  t.is(JSON.parse(r.stdout).code, 100);
  t.regex(JSON.parse(r.stdout).details, /already port/);
});

test('ADD and CHECK: CNI_CONTAINERID and CNI_IFNAME as the spec forms them (4), a network name (7); nothing reaches the daemon', async (t) => {
  const f = fakeDeps(() => ({}));
  for (const [e, c, want] of [
    [env('ADD', { CNI_CONTAINERID: '-abc' }), conf(), 4], [env('ADD', { CNI_CONTAINERID: 'a b' }), conf(), 4],
    [env('ADD', { CNI_IFNAME: 'eth0/x' }), conf(), 4], [env('ADD', { CNI_IFNAME: 'sixteen-chars-xx' }), conf(), 4],
    [env('CHECK', { CNI_IFNAME: '..' }), conf(), 4], [env('ADD'), conf({ name: undefined }), 7], [env('ADD'), conf({ name: 'a/b' }), 7],
  ]) {
    const r = await runCni(e, c, f.deps);
    t.is(JSON.parse(r.stdout).code, want, JSON.stringify(e));
    if (want === 4) t.regex(JSON.parse(r.stdout).msg, /CNI_CONTAINERID|CNI_IFNAME/, 'the message names the variable');
  }
  t.is(f.calls.length + f.flushed.length, 0);
});

test('DEL removes the port; an absent port or an absent daemon is success; DEL needs no netns', async (t) => {
  const f = fakeDeps(() => ({}));
  const r = await runCni(env('DEL', { CNI_NETNS: '' }), conf(), f.deps);
  t.deepEqual(r, { stdout: '', exitCode: 0 });
  t.deepEqual(f.calls.map((c) => `${c.method} ${c.path}`), [`DELETE /api/v1/ports/${portName('c0ffee', 'eth0')}`]);
  const gone = fakeDeps(() => { throw new ApiError('no port', 404, null); });
  t.is((await runCni(env('DEL'), conf(), gone.deps)).exitCode, 0);
  const down = fakeDeps(() => { throw new ApiError('cannot reach', 0, null); });
  t.is((await runCni(env('DEL'), conf(), down.deps)).exitCode, 0);
  // a config whose gateways or worker went bad after its pods were added: ADD refuses it, their DELs
  // still remove the ports (a failed DEL is retried by the runtime, the pod stays Terminating)
  const bad = conf({ gateways: ['not-an-ip'], worker: -1 });
  t.is(JSON.parse((await runCni(env('ADD'), bad, f.deps)).stdout).code, 7);
  const again = fakeDeps(() => ({}));
  t.deepEqual(await runCni(env('DEL'), bad, again.deps), { stdout: '', exitCode: 0 });
  t.deepEqual(again.calls.map((c) => `${c.method} ${c.path}`), [`DELETE /api/v1/ports/${portName('c0ffee', 'eth0')}`]);
});

test('CHECK: the port on the interface with the pod addresses, for this attachment, else an error', async (t) => {
  const attachment = { network: 'k8s', containerID: 'c0ffee', ifname: 'eth0' };
  const ok = fakeDeps(() => ({ ifname: 'veth1a2b', pods: [{ ip: 'fd00:244::20' }, { ip: '10.244.1.20' }], attachment }));
  t.deepEqual(await runCni(env('CHECK'), conf(), ok.deps), { stdout: '', exitCode: 0 });
  const unrecorded = fakeDeps(() => ({ ifname: 'veth1a2b', pods: [{ ip: 'fd00:244::20' }, { ip: '10.244.1.20' }] }));
  t.deepEqual(await runCni(env('CHECK'), conf(), unrecorded.deps), { stdout: '', exitCode: 0 }, 'a port saved before attachments were recorded');
  const wrong = fakeDeps(() => ({ ifname: 'veth1a2b', pods: [{ ip: '10.244.1.21' }], attachment }));
  let r = await runCni(env('CHECK'), conf(), wrong.deps);
  t.is(JSON.parse(r.stdout).code, 101);
  const other = fakeDeps(() => ({ ifname: 'veth1a2b', pods: [{ ip: 'fd00:244::20' }, { ip: '10.244.1.20' }], attachment: { ...attachment, network: 'other' } }));
  r = await runCni(env('CHECK'), conf(), other.deps);
  t.is(JSON.parse(r.stdout).code, 101);
  t.regex(JSON.parse(r.stdout).msg, /attachment/);
  const gone = fakeDeps(() => { throw new ApiError('no port', 404, null); });
  t.is(JSON.parse((await runCni(env('CHECK'), conf(), gone.deps)).stdout).code, 101);
  const old = await runCni(env('CHECK'), conf({ cniVersion: '0.3.1' }), ok.deps);
  t.is(JSON.parse(old.stdout).code, 1, 'CHECK does not exist before 0.4.0');
});

test('errors: spec codes and JSON on stdout, non-zero exit', async (t) => {
  const f = fakeDeps(() => ({}));
  const code = async (e, stdin) => { const r = await runCni(e, stdin, f.deps); t.is(r.exitCode, 1); const j = JSON.parse(r.stdout); t.is(typeof j.msg, 'string'); return j.code; };
  // no CNI_COMMAND: run by hand, not by a runtime — it says what it is (skel's about), exit 0 (cni-cli)
  t.like(await runCni({}, conf(), f.deps), { stdout: '', exitCode: 0 });
  t.is(await code(env('ADD', { CNI_NETNS: '' }), conf()), 4);
  t.is(await code(env('ADD', { CNI_CONTAINERID: undefined }), conf()), 4);
  t.is(await code(env('FOO'), conf()), 4);
  t.is(await code(env('ADD'), '{not json'), 6);
  t.is(await code(env('ADD'), conf({ cniVersion: '9.9.9' })), 1);
  t.is(await code(env('ADD'), conf({ prevResult: undefined })), 7);
  t.is(await code(env('ADD'), conf({ gateways: ['nope'] })), 7);
  t.is(await code(env('ADD'), conf({ prevResult: { ...prevResult, ips: [] } })), 7);
  t.is(await code(env('ADD'), conf({ prevResult: { ...prevResult, interfaces: [prevResult.interfaces[1]] } })), 7);
  const down = fakeDeps(() => { throw new ApiError('cannot reach', 0, null); });
  const r = await runCni(env('ADD'), conf(), down.deps);
  t.is(JSON.parse(r.stdout).code, 11, 'daemon not answering: try again later');
  t.is(f.calls.length, 0, 'nothing reached the daemon for invalid calls');
});
