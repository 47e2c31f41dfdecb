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

test('GC (1.1.0) succeeds with no output and removes no port (it cannot tell this network\'s ports from another\'s)', async (t) => {
  const f = fakeDeps(() => ({}));
  const gcConf = JSON.stringify({ cniVersion: '1.1.0', name: 'k8s', type: 'wdp-cni', 'cni.dev/valid-attachments': [{ containerID: 'c0ffee', ifname: 'eth0' }] });
  t.deepEqual(await runCni({ CNI_COMMAND: 'GC', CNI_PATH: '/opt/cni/bin' }, gcConf, f.deps), { stdout: '', exitCode: 0 });
  t.is(f.calls.length, 0);
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

test('ADD retried by the runtime for the same attachment succeeds; a clash on another interface is an error', async (t) => {
  const f = fakeDeps((m) => { if (m === 'POST') throw new ApiError('exists', 409, null); return { ifname: 'veth1a2b' }; });
  t.is((await runCni(env('ADD'), conf(), f.deps)).exitCode, 0);
  const g = fakeDeps((m) => { if (m === 'POST') throw new ApiError('exists', 409, null); return { ifname: 'vethother' }; });
  const r = await runCni(env('ADD'), conf(), g.deps);
  t.is(r.exitCode, 1);
  t.is(JSON.parse(r.stdout).code, 100);
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

test('CHECK: the port on the interface with the pod addresses, else an error', async (t) => {
  const ok = fakeDeps(() => ({ ifname: 'veth1a2b', pods: [{ ip: 'fd00:244::20' }, { ip: '10.244.1.20' }] }));
  t.deepEqual(await runCni(env('CHECK'), conf(), ok.deps), { stdout: '', exitCode: 0 });
  const wrong = fakeDeps(() => ({ ifname: 'veth1a2b', pods: [{ ip: '10.244.1.21' }] }));
  const r = await runCni(env('CHECK'), conf(), wrong.deps);
  t.is(JSON.parse(r.stdout).code, 101);
  const old = await runCni(env('CHECK'), conf({ cniVersion: '0.3.1' }), ok.deps);
  t.is(JSON.parse(old.stdout).code, 1, 'CHECK does not exist before 0.4.0');
});

test('errors: spec codes and JSON on stdout, non-zero exit', async (t) => {
  const f = fakeDeps(() => ({}));
  const code = async (e, stdin) => { const r = await runCni(e, stdin, f.deps); t.is(r.exitCode, 1); const j = JSON.parse(r.stdout); t.is(typeof j.msg, 'string'); return j.code; };
  t.is(await code({}, conf()), 4);
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
