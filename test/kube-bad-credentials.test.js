// A kubeconfig or token file that is not what it should be — a device, a huge file, a token a
// header cannot carry — is a clear error at start (or the last good token kept), never a start
// that reads forever: the library's loadFromFile read /dev/zero until the heap gave out.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadKubeConfig } from '../dist/src/kube/client.js';
import { TokenFile } from '../dist/src/kube/token-file.js';

function tempDir(t) {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-kube-badcred-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const kubeconfig = (user) => ['apiVersion: v1', 'kind: Config',
  'clusters:', '- cluster:', '    server: http://127.0.0.1:1', '    certificate-authority: ca.pem', '  name: c',
  'contexts:', '- context:', '    cluster: c', '    user: u', '  name: x', 'current-context: x',
  'users:', '- name: u', '  user:', ...Object.entries(user).map(([k, v]) => `    ${k}: ${v}`), ''].join('\n');

test('a kubeconfig that is a device or larger than 4 MiB is refused at once', (t) => {
  const dir = tempDir(t);
  t.throws(() => loadKubeConfig({ kubeconfig: '/dev/zero' }), { message: /^\/dev\/zero: larger than 4 MiB: refused/ });
  const big = join(dir, 'big');
  writeFileSync(big, '');
  truncateSync(big, 64 << 20);
  t.throws(() => loadKubeConfig({ kubeconfig: big }), { message: /big: larger than 4 MiB: refused/ });
  t.throws(() => loadKubeConfig({ kubeconfig: dir }), { message: /cannot read .*: EISDIR/ });
});

test('a kubeconfig read within the bound keeps what loadFromFile did: paths relative to its directory', (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'token'), 'tok-0123456789');
  writeFileSync(join(dir, 'kc'), kubeconfig({ tokenFile: 'token' }));
  const kc = loadKubeConfig({ kubeconfig: join(dir, 'kc') });
  t.is(kc.getCurrentCluster().caFile, join(dir, 'ca.pem'));
});

test('a token file that is a device, or holds characters a header cannot carry, gives no token (the last good one is kept)', (t) => {
  const dir = tempDir(t);
  t.throws(() => new TokenFile('/dev/zero').current(), { message: /the token file \/dev\/zero: larger than 1 MiB: refused/ });
  const f = join(dir, 'token');
  writeFileSync(f, 'good-token-0123456789\n');
  let now = 0;
  const tf = new TokenFile(f, undefined, 60_000, 10_000, () => now);
  t.is(tf.current(), 'good-token-0123456789');
  writeFileSync(f, 'bad\u0000token\r\nX-Injected: 1');
  now += 60_000;
  t.is(tf.current(), 'good-token-0123456789', 'the last good token kept');
  t.throws(() => new TokenFile(f).current(), { message: /holds characters a bearer token cannot have/ });
});
