// What a new user gets wrong about where things are: --server at another HTTP server (the healthz or
// metrics port, a web server), a text file given as a manifest, and the namespace demo on a host
// without iproute2; and a daemon that stops in the middle of an answer. Each is one `error:` line naming the problem and a non-zero exit — never a
// TypeError from reading a foreign answer, a "success" printing undefined, or "not root" to root.
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, runWdp } from './lib/wdp-cli.js';
import { oneLine, scratch as scratchDir } from './lib/cli-expect.js';

const scratch = (t) => scratchDir(t, 'wdp-cli-target-');

/** A server on loopback answering every request with `status` and a text body. */
async function foreignServer(t, status) {
  const srv = createServer((req, res) => { req.resume(); req.on('end', () => { res.writeHead(status, { 'content-type': 'text/plain' }); res.end('ok\n'); }); });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  t.teardown(() => srv.close());
  return `http://127.0.0.1:${srv.address().port}`;
}

test('--server at an HTTP server that is not the wdp API: every command says so, none prints its answer as data', async (t) => {
  const dir = scratch(t);
  const pcap = join(dir, 'x.pcap');
  for (const status of [200, 404]) {
    const url = await foreignServer(t, status);
    const notWdp = new RegExp(`^error: ${url.replace(/[.]/g, '\\.')} is not the wdp control API \\(.* answered HTTP ${status}`);
    for (const args of [
      ['get', 'services'], ['get', 'counters'], ['get', 'conntrack'], ['get', 'ports'], ['get', 'nodeconfig'], ['status'],
      ['trace', '--src', '10.0.0.2', '--dst', '10.96.0.10'], ['apply', '-f', join(ROOT, 'examples', 'nodeport.yaml')],
      ['delete', 'service', 'web', '-n', 'default'], ['trace', '--live', '-c', '1'], ['capture', '--port', 'uplink', '-c', '1', '-w', pcap],
    ]) oneLine(t, await runWdp(args, url), notWdp, 1);
    const diff = await runWdp(['diff', '-f', join(ROOT, 'examples', 'nodeport.yaml')], url);
    oneLine(t, diff, notWdp, 2); // (diff's 1 means "changes")
  }
});

test('a text file (or a list of strings) given as a manifest names the file, before anything is sent', async (t) => {
  const dir = scratch(t);
  writeFileSync(join(dir, 'notes.yaml'), 'remember to apply the web service\n');
  writeFileSync(join(dir, 'names.json'), '["web", "db"]');
  const server = 'http://127.0.0.1:1'; // nothing listens: a request sent would say "cannot reach"
  oneLine(t, await runWdp(['apply', '-f', join(dir, 'notes.yaml')], server), /^error: .*notes\.yaml: not a manifest: object 1 is the text "remember to apply the web service", where a Service, EndpointSlice or NodeConfig .* is expected$/);
  oneLine(t, await runWdp(['diff', '-f', join(dir, 'names.json')], server), /^error: .*names\.json: not a manifest: object 1 is the text "web"/, 2);
  oneLine(t, await runWdp(['delete', '-f', join(dir, 'notes.yaml')], server), /notes\.yaml: not a manifest/);
  writeFileSync(join(dir, 'empty.pcap'), Buffer.from('d4c3b2a1020004000000000000000000ffff000001000000', 'hex'));
  oneLine(t, await runWdp(['replay', join(dir, 'empty.pcap'), '-f', join(dir, 'notes.yaml')], server), /^error: .*notes\.yaml: not a manifest/);
});

const root = process.platform === 'linux' && process.getuid?.() === 0;

(root ? test : test.skip)(`the demo as root on a host without iproute2 or procps names the tool and how to install it${root ? '' : ' (skipped: needs root)'}`, async (t) => {
  const dir = scratch(t);
  symlinkSync(process.execPath, join(dir, 'node')); // a PATH with node and nothing else: no `ip`
  const demo = (args) => new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [join(ROOT, 'bin', 'wdp.js'), 'demo', ...args], { cwd: ROOT, env: { ...process.env, PATH: dir, CI: '1' } });
    let stdout = '', stderr = '';
    const timer = setTimeout(() => p.kill('SIGKILL'), 120_000);
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    p.on('error', reject);
    p.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
    p.stdin.end();
  });
  const netns = await demo(['--mode', 'netns']);
  t.is(netns.code, 2, netns.stderr);
  t.regex(netns.stderr, /^wdp demo: --mode netns needs iproute2's `ip` command on the PATH \(apt-get install iproute2/);
  const auto = await demo(['--duration', '1']);
  t.is(auto.code, 0, auto.stderr);
  t.regex(auto.stdout, /no network namespaces \(they need iproute2's `ip` command/);
  t.notRegex(auto.stdout, /not running as root/);
  t.regex(auto.stdout, /Mpps/);
  const ip = spawnSync('sh', ['-c', 'command -v ip'], { encoding: 'utf8' }).stdout.trim();
  if (!ip) return;
  symlinkSync(ip, join(dir, 'ip')); // ip now, still no sysctl (procps)
  const noSysctl = await demo(['--mode', 'netns']);
  t.is(noSysctl.code, 2, noSysctl.stderr);
  t.regex(noSysctl.stderr, /^wdp demo: --mode netns needs `sysctl` on the PATH \(apt-get install procps/);
});

test('a daemon that stops in the middle of an answer (a live trace, a capture, a list): said so, not "aborted"', async (t) => {
  const dir = scratch(t);
  // answers as the daemon starts to (status, type, a first piece of the body), then the connection is cut
  const srv = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.url.startsWith('/api/v1/trace/live')) res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      else if (req.url.startsWith('/api/v1/capture')) res.writeHead(200, { 'content-type': 'application/vnd.tcpdump.pcap' });
      else res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
      res.write(req.url.startsWith('/api/v1/capture') ? Buffer.from('d4c3b2a1020004000000000000000000ffff000001000000', 'hex') : '{');
      setTimeout(() => res.socket.destroy(), 100);
    });
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  t.teardown(() => srv.close());
  const url = `http://127.0.0.1:${srv.address().port}`;
  const cut = new RegExp(`^error: the wdp API at ${url.replace(/[.]/g, '\\.')} broke off its answer \\(.*\\): did the daemon stop\\?`);
  oneLine(t, await runWdp(['trace', '--live', '-c', '5'], url), cut);
  oneLine(t, await runWdp(['capture', '--port', 'uplink', '-w', join(dir, 'x.pcap')], url), cut);
  oneLine(t, await runWdp(['get', 'services'], url), cut);
});

test('wdp get metrics / healthz: not resources of get, and the error says where they are', async (t) => {
  const server = 'http://127.0.0.1:1'; // nothing listens: the resource is refused before any request
  oneLine(t, await runWdp(['get', 'metrics'], server), /^error: unknown resource "metrics": use services, .* \(Prometheus metrics: curl http:\/\/127\.0\.0\.1:9440\/metrics .*Bearer \$WDP_TOKEN/);
  oneLine(t, await runWdp(['get', 'healthz'], server), /^error: unknown resource "healthz": .*curl http:\/\/127\.0\.0\.1:10256\/healthz/);
  oneLine(t, await runWdp(['get', 'widgets'], server), /^error: unknown resource "widgets": use services, endpointslices, conntrack, counters, frontends, backends, nodeconfig or ports$/);
});

test('a bad address in WDP_SERVER is named as WDP_SERVER (the user gave no --server), one in --server as --server', async (t) => {
  oneLine(t, await runWdp(['get', 'services'], 'foo:bar'), /^error: invalid WDP_SERVER "foo:bar": expected http:\/\/host:port or unix:\/path$/);
  oneLine(t, await runWdp(['status'], 'ftp://x'), /^error: invalid WDP_SERVER "ftp:\/\/x": only http:\/\/ and unix: are supported$/);
  oneLine(t, await runWdp(['--server', 'foo:bar', 'get', 'services'], 'http://127.0.0.1:1'), /^error: invalid --server "foo:bar"/);
});

test('wdp help of a nested command (port add, bench core) prints that command\'s usage, not its parent\'s', async (t) => {
  for (const [args, usage] of [[['help', 'port', 'add'], 'Usage: wdp port add [options]'], [['help', 'bench', 'core'], 'Usage: wdp bench core [options]'], [['help', 'get'], 'Usage: wdp get [options] <resource> [name]']]) {
    const r = await runWdp(args, 'http://127.0.0.1:1');
    t.is(r.code, 0, r.stderr);
    t.is(r.stdout.split('\n')[0], usage);
  }
});
