// `wdp-cni install --prefix` as deploy/base/daemonset.yaml's install-cni container runs it, on a
// host directory (no root needed): what it copies and writes, its idempotence, the older releases
// it removes, and chaining into the runtime's network config list — including the lists it must
// refuse. (The init container under its securityContext, and the installed plugin run by a
// runtime with no node on the host: test walk-node-daemonset.)
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chainPlugin, installOnHost, moduleClosure } from '../dist/src/cni/install-host.js';

const ROOT = new URL('..', import.meta.url).pathname;
const PLUGIN = join(ROOT, 'bin/wdp-cni.js');
const BUILT = join(ROOT, 'dist/src/cni/plugin.js');

function hostDir(t) {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-host-install-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'opt/cni/bin'), { recursive: true });
  mkdirSync(join(dir, 'etc/cni/net.d'), { recursive: true });
  return dir;
}
const cli = (...args) => spawnSync(process.execPath, [PLUGIN, 'install', ...args], { encoding: 'utf8', timeout: 60000 });
const ptpList = { cniVersion: '1.0.0', name: 'k8s-pod-network', plugins: [{ type: 'ptp', ipam: { type: 'host-local', subnet: '10.244.1.0/24' } }] };

test('install --prefix copies node, its libraries and the plugin\'s modules into a release named by their hash, writes the launcher naming it by host paths, and a second run writes the same', (t) => {
  const host = hostDir(t);
  const r = cli('--host-root', host, '--prefix', '/opt/wdp/cni', '--bin-dir', '/opt/cni/bin');
  t.is(r.status, 0, r.stderr);
  const [release] = readdirSync(join(host, 'opt/wdp/cni'));
  t.regex(release, /^[0-9a-f]{16}$/);
  const rel = join(host, 'opt/wdp/cni', release);
  for (const f of ['node', 'bin/wdp-cni.js', 'package.json', 'dist/src/cni/plugin.js', 'dist/src/cni/attachment.js']) t.true(existsSync(join(rel, f)), f);
  t.false(existsSync(join(rel, 'node_modules')), 'no packages: the plugin imports none');
  t.is(statSync(join(rel, 'node')).mode & 0o111, 0o111);
  const launcher = readFileSync(join(host, 'opt/cni/bin/wdp-cni'), 'utf8');
  t.true(launcher.includes(`'/opt/wdp/cni/${release}/node'`), launcher);
  t.false(launcher.includes(host), 'host paths, not where the installer saw them');
  if (existsSync(join(rel, 'lib'))) t.regex(launcher, new RegExp(`'/opt/wdp/cni/${release}/lib/ld-[^']+' '--library-path' '/opt/wdp/cni/${release}/lib'`));
  t.is(statSync(join(host, 'opt/cni/bin/wdp-cni')).mode & 0o777, 0o755);
  t.regex(r.stdout, new RegExp(`installed ${host}/opt/cni/bin/wdp-cni \\(release /opt/wdp/cni/${release}\\)`));
  const again = cli('--host-root', host, '--prefix', '/opt/wdp/cni');
  t.is(again.status, 0, again.stderr);
  t.regex(again.stdout, /already there/);
  t.is(readFileSync(join(host, 'opt/cni/bin/wdp-cni'), 'utf8'), launcher);
  t.deepEqual(readdirSync(join(host, 'opt/wdp/cni')), [release]);
  t.deepEqual(readdirSync(join(host, 'opt/cni/bin')), ['wdp-cni'], 'no temporary file left');
});

test('a new release replaces older ones: the one the previous launcher ran stays until the next install, any other goes; what is not a release stays', (t) => {
  const host = hostDir(t);
  const prefix = join(host, 'opt/wdp/cni');
  for (const d of ['0123456789abcdef', 'fedcba9876543210', 'keep-me']) mkdirSync(join(prefix, d), { recursive: true });
  writeFileSync(join(host, 'opt/cni/bin/wdp-cni'), "#!/bin/sh\nexec '/opt/wdp/cni/fedcba9876543210/node' '/opt/wdp/cni/fedcba9876543210/bin/wdp-cni.js' \"$@\"\n", { mode: 0o755 });
  const r = installOnHost({ hostRoot: host, prefix: '/opt/wdp/cni', binDir: '/opt/cni/bin' }, PLUGIN, BUILT);
  t.deepEqual(r.removed, ['0123456789abcdef']);
  const id = r.release.split('/').pop();
  t.deepEqual(readdirSync(prefix).sort(), [id, 'fedcba9876543210', 'keep-me'].sort());
  const next = installOnHost({ hostRoot: host, prefix: '/opt/wdp/cni', binDir: '/opt/cni/bin' }, PLUGIN, BUILT);
  t.true(next.reused);
  t.deepEqual(next.removed, ['fedcba9876543210']);
  t.deepEqual(readdirSync(prefix).sort(), [id, 'keep-me'].sort());
});

test('--conf-dir chains wdp-cni into the first network config list by name, once; the others stay as they are', (t) => {
  const host = hostDir(t);
  const dir = join(host, 'etc/cni/net.d');
  writeFileSync(join(dir, '10-pods.conflist'), JSON.stringify(ptpList));
  const other = JSON.stringify({ ...ptpList, name: 'other' });
  writeFileSync(join(dir, '20-other.conflist'), other);
  writeFileSync(join(dir, 'README'), 'not a config');
  const r = cli('--host-root', host, '--prefix', '/opt/wdp/cni', '--conf-dir', '/etc/cni/net.d');
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /chained wdp-cni into .*10-pods\.conflist/);
  const list = JSON.parse(readFileSync(join(dir, '10-pods.conflist'), 'utf8'));
  t.deepEqual(list, { ...ptpList, plugins: [...ptpList.plugins, { type: 'wdp-cni', server: 'unix:/run/wdp/api.sock' }] });
  t.is(statSync(join(dir, '10-pods.conflist')).mode & 0o777, 0o644);
  t.is(readFileSync(join(dir, '20-other.conflist'), 'utf8'), other);
  const text = readFileSync(join(dir, '10-pods.conflist'), 'utf8');
  t.deepEqual(chainPlugin(dir, 'unix:/elsewhere.sock'), { file: join(dir, '10-pods.conflist'), changed: false }, 'already chained: left as it is');
  t.is(readFileSync(join(dir, '10-pods.conflist'), 'utf8'), text);
  t.deepEqual(readdirSync(dir).sort(), ['10-pods.conflist', '20-other.conflist', 'README']);
  // a list of spec 1.1 naming its versions in cniVersions only
  const v11 = join(host, 'v11');
  mkdirSync(v11);
  const rest = { ...ptpList };
  delete rest.cniVersion;
  writeFileSync(join(v11, '10-pods.conflist'), JSON.stringify({ ...rest, cniVersions: ['0.4.0', '1.1.0'] }));
  t.true(chainPlugin(v11, 'unix:/run/wdp/api.sock').changed, 'chained: 1.1.0 is among its versions');
});

test('--conf-dir refuses, naming the file, what wdp-cni cannot be chained into: no list yet, a single-plugin .conf first, CNI before 0.3.0, not JSON — and changes nothing', (t) => {
  const cases = [
    [{}, /no CNI network configuration in .* yet: wdp-cni is chained after the plugin that gives each pod its veth/],
    [{ '05-bridge.conf': JSON.stringify({ cniVersion: '1.0.0', name: 'b', type: 'bridge' }), '10-pods.conflist': JSON.stringify(ptpList) }, /05-bridge\.conf is a single-plugin network configuration/],
    [{ '10-old.conflist': JSON.stringify({ ...ptpList, cniVersion: '0.2.0' }) }, /cniVersion "0\.2\.0" has no chained plugins/],
    [{ '10-bad.conflist': '{ "plugins": [' }, /10-bad\.conflist is not valid JSON/],
  ];
  for (const [files, re] of cases) {
    const host = hostDir(t);
    const dir = join(host, 'etc/cni/net.d');
    for (const [n, text] of Object.entries(files)) writeFileSync(join(dir, n), text);
    const r = cli('--host-root', host, '--prefix', '/opt/wdp/cni', '--conf-dir', '/etc/cni/net.d');
    t.is(r.status, 1, re.source);
    t.regex(r.stderr, re);
    for (const [n, text] of Object.entries(files)) t.is(readFileSync(join(dir, n), 'utf8'), text, n);
  }
});

test('install\'s arguments: options need --prefix and absolute paths; a missing bin directory is an error; --help is the usage', (t) => {
  const host = hostDir(t);
  t.regex(cli('--host-root', host).stderr, /go with --prefix/);
  t.regex(cli('--prefix', 'opt/wdp').stderr, /--prefix must be an absolute path/);
  t.regex(cli('--prefix').stderr, /--prefix needs a value/);
  t.regex(cli('--prefix', '/opt/wdp/cni', '--host-root', host, '--bin-dir', '/nope').stderr, /is not a directory \(the runtime's CNI bin directory/);
  t.false(existsSync(join(host, 'opt/wdp/cni')) && readdirSync(join(host, 'opt/wdp/cni')).length > 0, 'nothing copied');
  const help = cli('--help');
  t.is(help.status, 0);
  t.regex(help.stdout, /install --prefix DIR \[--host-root ROOT\]/);
});

test('install --watch: no list yet is no error — it keeps running, chains the list once written, chains it again when the primary plugin rewrites it without wdp-cni, leaves a list that has it alone, and ends at SIGTERM with 0', async (t) => {
  const host = hostDir(t);
  const child = spawn(process.execPath, [PLUGIN, 'install', '--host-root', host, '--prefix', '/opt/wdp/cni', '--conf-dir', '/etc/cni/net.d', '--watch', '0.2', '--server', 'unix:/run/wdp/api.sock'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => child.kill('SIGKILL'));
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  const exited = new Promise((r) => child.once('exit', (code, signal) => r(code ?? signal)));
  const until = async (re, what) => {
    for (let i = 0; i < 300 && !re.test(out); i++) {
      if (child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    t.regex(out, re, `${what} (stderr: ${err})`);
  };
  await until(/wdp-cni not chained: no CNI network configuration in /, 'waiting for a list, not failing');
  t.is(child.exitCode, null, 'still running');
  t.true(existsSync(join(host, 'opt/cni/bin/wdp-cni')), 'the launcher is installed meanwhile');
  t.is(out.match(/not chained/g).length, 1, 'reported once, not at every check');
  const file = join(host, 'etc/cni/net.d/10-pods.conflist');
  writeFileSync(file, JSON.stringify(ptpList));
  await until(/chained wdp-cni into .*10-pods\.conflist/, 'chained once the list is there');
  t.deepEqual(JSON.parse(readFileSync(file, 'utf8')).plugins.map((p) => p.type), ['ptp', 'wdp-cni']);
  // the primary plugin's agent restarts and writes its list again, without wdp-cni
  out = '';
  writeFileSync(file, JSON.stringify(ptpList));
  await until(/chained wdp-cni into .*10-pods\.conflist/, 'chained again');
  t.deepEqual(JSON.parse(readFileSync(file, 'utf8')).plugins.map((p) => p.type), ['ptp', 'wdp-cni']);
  const chained = readFileSync(file, 'utf8');
  await new Promise((r) => setTimeout(r, 500)); // two checks more: nothing to change
  t.is(readFileSync(file, 'utf8'), chained);
  child.kill('SIGTERM');
  t.is(await exited, 0, err);
});

test('install --watch: a SIGTERM the moment its first check is printed (a kubelet stopping the pod as it starts) still ends it with 0', (t) => {
  const host = hostDir(t);
  writeFileSync(join(host, 'etc/cni/net.d/10-pods.conflist'), JSON.stringify(ptpList));
  // preloaded: the process signals itself synchronously inside the write of the first check's
  // line — with no handler registered by then, the default action ends it by SIGTERM
  const preload = `data:text/javascript,${encodeURIComponent(`const w = process.stdout.write.bind(process.stdout);
process.stdout.write = (s, ...a) => { const r = w(s, ...a); if (/chained/.test(String(s))) process.kill(process.pid, 'SIGTERM'); return r; };`)}`;
  const r = spawnSync(process.execPath, ['--import', preload, PLUGIN, 'install', '--host-root', host, '--prefix', '/opt/wdp/cni', '--conf-dir', '/etc/cni/net.d', '--watch', '10'], { encoding: 'utf8', timeout: 60000 });
  t.regex(r.stdout, /chained wdp-cni into .*10-pods\.conflist/, r.stderr);
  t.is(r.signal, null, `ended by ${r.signal}, not its handler`);
  t.is(r.status, 0, r.stderr);
});

test('install --watch needs --conf-dir and a number of seconds', (t) => {
  const host = hostDir(t);
  t.regex(cli('--host-root', host, '--prefix', '/opt/wdp/cni', '--watch', '10').stderr, /--watch keeps the plugin chained in --conf-dir's list/);
  for (const bad of ['0', '-1', 'x', '1e9', '']) t.regex(cli('--host-root', host, '--prefix', '/opt/wdp/cni', '--conf-dir', '/etc/cni/net.d', '--watch', bad).stderr, /--watch (must be a number of seconds|needs a value)/, bad);
  t.regex(cli('--watch', '5').stderr, /go with --prefix/);
});

test('the plugin\'s module closure: its relative imports, no package (a package import would not run from the release)', (t) => {
  const files = moduleClosure(BUILT).map((f) => f.slice(ROOT.length));
  t.true(files.includes('dist/src/cni/plugin.js'));
  t.true(files.includes('dist/src/cli/client.js'));
  t.false(files.some((f) => f.includes('node_modules')));
  const dir = mkdtempSync(join(tmpdir(), 'wdp-closure-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'a.js'), "import { x } from './b.js';\nexport const y = 'import(\"nope\")';\n");
  writeFileSync(join(dir, 'b.js'), "import { parse } from 'yaml';\nexport const x = parse;\n");
  t.throws(() => moduleClosure(join(dir, 'a.js')), { message: /b\.js imports the package "yaml"/ });
});
