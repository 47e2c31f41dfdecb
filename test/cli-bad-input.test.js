// The CLI and `wdp start --config` against input a new user gets wrong: a device or a huge file
// given as a manifest or a config, a directory with a dangling symlink, deep or several-document
// YAML, and config values that pass a loose check but fail (or hang) only once the daemon is
// starting. Each is one `error:` line (no stack) and a non-zero exit, before any request is sent
// and before anything is created.
import test from 'ava';
import { createServer } from 'node:http';
import { mkdirSync, symlinkSync, writeFileSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { runWdp } from './lib/wdp-cli.js';
import { oneLine, scratch as scratchDir } from './lib/cli-expect.js';
import { loadConfigFile, parseConfig, parsePortConfig } from '../dist/src/daemon/config.js';

/** The CLI against a server that is not there (nothing must reach it anyway); killed after 60 s. */
const wdp = (args) => runWdp(args, 'http://127.0.0.1:1', { killAfterMs: 60_000 });

const scratch = (t) => scratchDir(t, 'wdp-cli-bad-');

test('apply -f of a device, or of a file larger than 64 MiB, is refused at once (nothing read beyond the bound)', async (t) => {
  const dir = scratch(t);
  const big = join(dir, 'big.yaml');
  writeFileSync(big, '');
  truncateSync(big, 100 << 20); // sparse: costs no disk
  oneLine(t, await wdp(['apply', '-f', big]), /^error: .*big\.yaml: larger than 64 MiB: refused/);
  oneLine(t, await wdp(['apply', '-f', '/dev/zero']), /^error: \/dev\/zero: larger than 64 MiB: refused/);
  oneLine(t, await wdp(['diff', '-f', dir]), /^error: .*big\.yaml: larger than 64 MiB/, 2); // (diff's 1 means "changes")
});

test('a dangling symlink in a manifest directory, deep manifests and port files: one line naming the file', async (t) => {
  const dir = scratch(t);
  mkdirSync(join(dir, 'm'));
  symlinkSync(join(dir, 'nowhere.yaml'), join(dir, 'm', 'gone.yaml'));
  oneLine(t, await wdp(['apply', '-f', join(dir, 'm')]), /^error: cannot read .*\/m\/gone\.yaml: ENOENT$/);
  writeFileSync(join(dir, 'deep.json'), '['.repeat(100_000) + ']'.repeat(100_000));
  oneLine(t, await wdp(['apply', '-f', join(dir, 'deep.json')]), /^error: .*deep\.json: nested deeper than 64 levels \(at character 64\): refused before parsing$/);
  writeFileSync(join(dir, 'port.yaml'), 'name: ' + '['.repeat(1_000_000));
  oneLine(t, await wdp(['port', 'add', '-f', join(dir, 'port.yaml')]), /^error: .*port\.yaml: nested deeper than 64 levels: refused$/);
  writeFileSync(join(dir, 'two.yaml'), 'name: a\ntype: tap\n---\nname: b\n');
  oneLine(t, await wdp(['port', 'add', '-f', join(dir, 'two.yaml')]), /^error: .*two\.yaml: 2 YAML documents: expected one$/);
  writeFileSync(join(dir, 'list.yaml'), '- name: a\n');
  oneLine(t, await wdp(['port', 'add', '-f', join(dir, 'list.yaml')]), /^error: .*list\.yaml: expected one port object/);
  oneLine(t, await wdp(['port', 'add', '-f', dir]), /^error: cannot read .*: EISDIR$/);
});

test('wdp start --config: a device, a deep file, a directory — exit 2 with one line, before anything starts', async (t) => {
  const dir = scratch(t);
  writeFileSync(join(dir, 'deep.yaml'), 'node: ' + '['.repeat(2_000_000));
  for (const [config, re] of [['/dev/zero', /^wdp start: config \/dev\/zero: larger than 4 MiB: refused/], [join(dir, 'deep.yaml'), /^wdp start: config .*deep\.yaml: nested deeper than 64 levels: refused/], [dir, /^wdp start: cannot read config .*: EISDIR$/]]) {
    const r = await wdp(['start', '--config', config]);
    t.is(r.code, 2, `${config}: ${r.stderr}`);
    t.regex(r.stderr.split('\n')[0], re);
  }
});

test('config values that only failed (or hung) once the daemon was starting are refused by the config check, with their field', (t) => {
  const good = { node: { name: 'n' }, ports: [{ name: 'a', type: 'tap', ifname: 'x', role: 'pod' }] };
  const refused = (over, field, re) => {
    const e = t.throws(() => parseConfig({ ...good, ...over }), undefined, JSON.stringify(over));
    t.regex(e?.message ?? '', new RegExp(`\\n  ${field.replace(/\./g, '\\.')}: .*${re.source}`), JSON.stringify(over));
  };
  // Node's recursive mkdir spins forever on a missing directory under /proc: the start hung, deaf to SIGTERM
  refused({ stateDir: '/proc/1/wdp' }, 'stateDir', /must not be under \/proc, \/sys or \/dev/);
  refused({ stateDir: '/sys/wdp' }, 'stateDir', /must not be under/);
  refused({ api: { listen: 'unix:/proc/self/x.sock' } }, 'api.listen', /must not be under/);
  // an empty or too long socket path, a host that is neither: refused by listen() after the ports opened
  refused({ api: { listen: 'unix:' } }, 'api.listen', /the path is empty/);
  refused({ api: { listen: `unix:/tmp/${'x'.repeat(120)}` } }, 'api.listen', /at most 107 bytes/);
  refused({ api: { listen: 'no such host:9440' } }, 'api.listen', /no IP address or host name/);
  refused({ api: { healthz: 'unix://' } }, 'api.healthz', /the path is empty/);
  refused({ kubernetes: { healthzBindAddress: 'localhost:10256' } }, 'kubernetes.healthzBindAddress', /must be host:port/);
  // what is fine stays fine
  t.is(parseConfig({ ...good, api: { listen: 'localhost:9440', healthz: 'off' }, stateDir: '/var/lib/wdp-x' }).api.listen, 'localhost:9440');
});

test('a config file with a key twice, several documents or an alias bomb is refused with the file named', (t) => {
  const dir = scratch(t);
  const file = (name, text) => { const p = join(dir, name); writeFileSync(p, text); return p; };
  t.throws(() => loadConfigFile(file('twice.yaml', 'node: {name: n}\nnode: {name: m}\n')), { message: /twice\.yaml: cannot parse \(line 2, column 1\): key "node" already set in this mapping/ });
  t.throws(() => loadConfigFile(file('two.yaml', 'node: {name: n}\n---\nports: []\n')), { message: /two\.yaml: 2 YAML documents: expected one/ });
  t.throws(() => loadConfigFile(file('bomb.yaml', 'a: &a [1,2]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n')), { message: /bomb\.yaml: cannot parse: Excessive alias count/ });
});

test('capture -w into a directory that does not exist names the file, not an unreachable daemon; port add --worker takes an index', async (t) => {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.url === '/api/v1/capture') { res.writeHead(200, { 'content-type': 'application/vnd.tcpdump.pcap' }); res.write(Buffer.alloc(24)); return; }
      res.writeHead(404, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => { server.closeAllConnections(); server.close(); });
  const url = `http://127.0.0.1:${server.address().port}`;
  oneLine(t, await wdp(['-s', url, 'capture', '--port', 'pods', '-w', '/nonexistent/dir/x.pcap', '-c', '1']), /^error: cannot write \/nonexistent\/dir\/x\.pcap: ENOENT$/);
  oneLine(t, await wdp(['port', 'add', '--name', 'x', '--type', 'tap', '--ifname', 'x', '--worker', 'abc']), /^error: --worker takes a worker index \(0, 1, \.\.\.\), got "abc"$/);
  oneLine(t, await wdp(['port', 'add', '--name', 'x', '--type', 'tap', '--ifname', 'x', '--worker', '-1']), /^error: --worker takes a worker index/);
});

test('config: a pod listed twice, a prefix routed twice, addresses no one host owns and the all-zero MAC are refused with their field (they were taken, one pod MAC silently winning)', (t) => {
  const ports = (a, b = {}) => [{ name: 'a', type: 'tap', ifname: 'x', role: 'pod', ...a }, { name: 'b', type: 'tap', ifname: 'y', role: 'pod', ...b }];
  const refused = (over, lines) => {
    const e = t.throws(() => parseConfig({ node: { name: 'n' }, ports: ports(), ...over }), undefined, JSON.stringify(over));
    t.deepEqual(e?.message.split('\n').slice(1), lines, JSON.stringify(over));
  };
  refused({ ports: ports({ pods: [{ ip: '10.244.1.5', mac: '02:00:00:00:00:05' }] }, { pods: [{ ip: '10.244.1.6' }, { ip: '10.244.1.5', mac: '02:00:00:00:00:06' }] }) },
    ['  ports[1].pods[1].ip: duplicate pod 10.244.1.5 (also ports[0].pods[0])']);
  refused({ ports: ports({ pods: [{ ip: 'fd00::5' }, { ip: 'fd00:0::5' }] }) }, ['  ports[0].pods[1].ip: duplicate pod fd00:0::5 (also ports[0].pods[0])']);
  refused({ routes: [{ prefix: '10.0.0.0/8', port: 'a', mac: '02:00:00:00:00:01' }, { prefix: '10.1.2.3/8', port: 'b', mac: '02:00:00:00:00:02' }] },
    ['  routes[1].prefix: duplicate route 10.1.2.3/8 (also routes[0])']);
  refused({ node: { name: 'n', addresses: ['0.0.0.0', 'ff02::1'] }, masquerade: { ipv4: '255.255.255.255' } }, [
    '  node.addresses[0]: may not be unspecified (0.0.0.0)', '  node.addresses[1]: may not be a multicast address (ff00::/8)',
    '  masquerade.ipv4: may not be the broadcast address (255.255.255.255)']);
  refused({ ports: ports({ gateways: ['224.0.0.1'], mac: '00:00:00:00:00:00', pods: [{ ip: '::' }] }) }, [
    '  ports[0].mac: must not be 00:00:00:00:00:00 (no interface\'s address)', '  ports[0].gateways[0]: may not be a multicast address (224.0.0.0/4)',
    '  ports[0].pods[0].ip: may not be unspecified (::)']);
  // a prefix inside another is a route of its own
  t.is(parseConfig({ node: { name: 'n' }, ports: ports(), routes: [{ prefix: '10.0.0.0/8', port: 'a', mac: '02:00:00:00:00:01' }, { prefix: '10.0.0.0/9', port: 'a', mac: '02:00:00:00:00:02' }] }).routes.length, 2);
});

test('wdp start --kubeconfig with a kubernetes: that is no mapping names it (the flag replaced it silently); a runtime port lists a pod once', async (t) => {
  const dir = scratch(t);
  const config = join(dir, 'wdp.yaml');
  // (ports: [] keeps the start from going anywhere whatever the check says about kubernetes:)
  writeFileSync(config, 'node: {name: n}\nports: []\nkubernetes: 5\n');
  const r = await wdp(['start', '--config', config, '--kubeconfig', join(dir, 'kc')]);
  t.is(r.code, 2, r.stderr);
  t.regex(r.stderr, /\n {2}kubernetes: Invalid input: expected object, received number\n/);
  const e = t.throws(() => parsePortConfig({ name: 'a', type: 'tap', ifname: 'x', role: 'pod', pods: [{ ip: '10.0.0.1' }, { ip: '10.0.0.1', mac: '02:00:00:00:00:02' }] }));
  t.is(e?.message, 'invalid port:\n  pods[1].ip: duplicate pod 10.0.0.1 (also pods[0])');
});

test('a token with a newline (a file read with its line end) is named as the problem, not a header error', async (t) => {
  oneLine(t, await wdp(['--token', 'abc\ndef', 'status']), /^error: the token \(--token or WDP_TOKEN\) holds characters an HTTP header cannot carry/);
});

test('replay of a capture larger than 1 GiB (or of a device) is refused from its size, not read until the heap gives out', async (t) => {
  const dir = scratch(t);
  const big = join(dir, 'big.pcap');
  writeFileSync(big, '');
  truncateSync(big, (1 << 30) + 1); // sparse
  writeFileSync(join(dir, 's.yaml'), 'apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {clusterIP: 10.96.0.5, ports: [{port: 80}]}\n');
  oneLine(t, await wdp(['replay', big, '-f', join(dir, 's.yaml')]), /^error: pcap file .*big\.pcap: larger than 1024 MiB: refused/);
});
