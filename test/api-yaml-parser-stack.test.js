// A YAML document indented with tabs and followed by another made the YAML parser recurse once a
// line until the stack ran out (3000 list entries, 90 KB, were enough: the depth check bounds
// indentation and brackets, not this): the ports, CNI GC, trace and capture routes answered 500
// "Maximum call stack size exceeded" for it, apply 400 with that text, and the config file "is
// not valid YAML: Maximum call stack size exceeded". Now a 400 (exit 2 for the config) naming the
// first tab-indented line. Found by the seeded API fuzzer (seed 14, case 2365).
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControlPlane } from './lib/server.js';
import { registerPortRoutes } from '../dist/src/api/ports-routes.js';
import { loadConfigFile } from '../dist/src/daemon/config.js';

const tabbed = (n) => 'apiVersion: v1\nkind: Service\nmetadata:\n\tname: c\nspec:\n\tports:\n' + Array.from({ length: n }, (_, i) => `\t\t- name: p${i}\n\t\t\tport: ${i + 1}\n`).join('') + '---\napiVersion: v1\n';
const MESSAGE = /cannot parse \(line 4, column 1\): tabs are not allowed as indentation \(the YAML parser ran out of stack on the lines after\)/;

test('a tab-indented YAML body that runs the parser out of stack is a 400 naming its first tab on every route', async (t) => {
  const ports = { async list() { return []; }, async add(raw) { return { name: raw.name }; }, async remove(name) { return { name }; }, cniGc() { return Promise.resolve({ network: 'n', removed: [], failed: [] }); } };
  const { req } = await startControlPlane(t, { extraRoutes: [(app) => registerPortRoutes(app, ports)] });
  const body = tabbed(5000);
  for (const route of ['/api/v1/ports', '/api/v1/cni/gc', '/api/v1/trace', '/api/v1/apply', '/api/v1/delete']) {
    const r = await req('POST', route, body, { 'content-type': 'application/yaml' });
    t.is(r.status, 400, `${route}: ${r.text.slice(0, 200)}`);
    t.regex(r.json.message, MESSAGE, route);
    t.notRegex(r.text, /Maximum call stack/);
  }
  t.is((await req('GET', '/api/v1/generation')).status, 200);
});

test('the same as a config file: refused with its line', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-tabs-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'wdp.yaml'), tabbed(5000));
  t.throws(() => loadConfigFile(join(dir, 'wdp.yaml')), { message: MESSAGE });
});
