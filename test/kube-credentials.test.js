// How the watcher authenticates to the API server (src/kube/client.ts, token-file.ts), against the
// API-server double requiring a bearer token: a kubeconfig user's `tokenFile` (kubeadm's
// kube-proxy kubeconfig), the token rotating underneath, and the in-cluster variables.
import test from 'ava';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadKubeConfig, listAll } from '../dist/src/kube/client.js';
import { TokenFile } from '../dist/src/kube/token-file.js';
import { ApiServerDouble } from './lib/apiserver-double.js';
import { apiService } from './lib/kube-fixture.js';

function tempDir(t) {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-kube-cred-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** kubeadm's kube-proxy kubeconfig (cmd/kubeadm/app/phases/addons/proxy/manifests.go), pointed
 * at the double: the user is nothing but a tokenFile (here relative to the kubeconfig). */
function kubeadmStyleKubeconfig(server, user) {
  return [
    'apiVersion: v1', 'kind: Config',
    'clusters:', '- cluster:', `    server: ${server}`, '    insecure-skip-tls-verify: true', '  name: default',
    'contexts:', '- context:', '    cluster: default', '    namespace: default', '    user: default', '  name: default',
    'current-context: default',
    'users:', '- name: default', '  user:', ...Object.entries(user).map(([k, v]) => `    ${k}: ${v}`), '',
  ].join('\n');
}

async function double(t, token) {
  const d = new ApiServerDouble({ token });
  await d.listen();
  t.teardown(() => d.close());
  d.create('services', apiService('web', '10.96.20.1'));
  return d;
}

test('a kubeconfig user with tokenFile (kubeadm\'s kube-proxy kubeconfig) sends the file\'s token, trimmed; a rotated token is read again after the first 401', async (t) => {
  const d = await double(t, 'token-one-0123456789');
  const dir = tempDir(t);
  writeFileSync(join(dir, 'token'), 'token-one-0123456789\n');
  writeFileSync(join(dir, 'kubeconfig'), kubeadmStyleKubeconfig(d.url, { tokenFile: 'token' }));
  const kc = loadKubeConfig({ kubeconfig: join(dir, 'kubeconfig') });
  const l = await listAll(kc, '/api/v1/services');
  t.deepEqual(l.items.map((o) => o.metadata.name), ['web']);
  // the kubelet rotates the projected token: the file and the server's accepted token change
  writeFileSync(join(dir, 'token'), 'token-two-0123456789');
  d.token = 'token-two-0123456789';
  await t.throwsAsync(() => listAll(kc, '/api/v1/services'), { message: /401/ }, 'the cached token is refused once');
  const again = await listAll(kc, '/api/v1/services');
  t.deepEqual(again.items.map((o) => o.metadata.name), ['web'], 'the next request reads the rotated token');
});

test('kubeconfig: with token and tokenFile the file\'s token is sent, the token only while the file gives none (as client-go); an unreadable tokenFile alone is a clear error at start', async (t) => {
  const d = await double(t, 'file-token-0123456789');
  const dir = tempDir(t);
  writeFileSync(join(dir, 'token'), 'file-token-0123456789');
  writeFileSync(join(dir, 'both'), kubeadmStyleKubeconfig(d.url, { token: 'inline-token-0123456789', tokenFile: join(dir, 'token') }));
  const l = await listAll(loadKubeConfig({ kubeconfig: join(dir, 'both') }), '/api/v1/services');
  t.is(l.items.length, 1, 'the file\'s token, not the inline one');
  writeFileSync(join(dir, 'gone'), kubeadmStyleKubeconfig(d.url, { token: 'inline-token-0123456789', tokenFile: join(dir, 'nope') }));
  const kc = loadKubeConfig({ kubeconfig: join(dir, 'gone') });
  await t.throwsAsync(() => listAll(kc, '/api/v1/services'), { message: /401/ }, 'no file: the inline token is sent (and refused here)');
  d.token = 'inline-token-0123456789';
  t.is((await listAll(kc, '/api/v1/services')).items.length, 1, 'no file: the inline token');
  writeFileSync(join(dir, 'missing'), kubeadmStyleKubeconfig(d.url, { tokenFile: join(dir, 'nope') }));
  t.throws(() => loadKubeConfig({ kubeconfig: join(dir, 'missing') }), { message: /cannot read the token file .*nope/ });
});

test('token file: re-read once its minute (less 10 s) is up, kept when a re-read fails, forgotten by a 401 sent after it was read', (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'token');
  let now = 1_000_000;
  const f = new TokenFile(path, undefined, 60_000, 10_000, () => now);
  t.throws(() => f.current(), { message: /cannot read the token file/ });
  writeFileSync(path, '  a-token \n');
  t.is(f.current(), 'a-token');
  writeFileSync(path, 'b-token');
  now += 49_000;
  t.is(f.current(), 'a-token', 'cached within the period');
  now += 1_000;
  t.is(f.current(), 'b-token', 're-read after 50 s');
  rmSync(path);
  now += 60_000;
  t.is(f.current(), 'b-token', 'the last good token while the file cannot be read');
  writeFileSync(path, 'c-token');
  f.reset(now - 1); // a 401 for a request sent before this token was read: kept
  t.is(f.current(), 'c-token');
  writeFileSync(path, 'd-token');
  f.reset(now + 1);
  t.is(f.current(), 'd-token', 'a 401 for a request sent after the read: read again');
});

test('in-cluster: both KUBERNETES_SERVICE_HOST and _PORT are required; an IPv6 host is bracketed and the scheme is https whatever the port', (t) => {
  const dir = tempDir(t);
  const sa = join(dir, 'var/run/secrets/kubernetes.io/serviceaccount');
  mkdirSync(sa, { recursive: true });
  writeFileSync(join(sa, 'token'), 'sa-token\n');
  writeFileSync(join(sa, 'ca.crt'), '');
  const env = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };
  t.teardown(() => {
    if (env.host === undefined) delete process.env.KUBERNETES_SERVICE_HOST; else process.env.KUBERNETES_SERVICE_HOST = env.host;
    if (env.port === undefined) delete process.env.KUBERNETES_SERVICE_PORT; else process.env.KUBERNETES_SERVICE_PORT = env.port;
  });
  process.env.KUBERNETES_SERVICE_HOST = 'fd00::1';
  delete process.env.KUBERNETES_SERVICE_PORT;
  t.throws(() => loadKubeConfig({ inClusterRoot: dir }), { message: /KUBERNETES_SERVICE_PORT is not set/ });
  process.env.KUBERNETES_SERVICE_PORT = '8080';
  const kc = loadKubeConfig({ inClusterRoot: dir });
  t.is(kc.getCurrentCluster().server, 'https://[fd00::1]:8080');
});
