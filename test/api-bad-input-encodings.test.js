// A body in another charset than UTF-8, or with a Content-Encoding, is refused 415 naming it: it
// was read as UTF-8 text all the same — a gzip body was answered 422 "an object is expected" with
// its bytes as the value, a UTF-16 JSON body the same, and `Content-Encoding: br` over a plain
// body applied it. Found by the seeded API fuzzer's encodings (test/lib/api-fuzz.js).
import test from 'ava';
import { gzipSync } from 'node:zlib';
import { startControlPlane } from './lib/server.js';

const svc = JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { namespace: 'enc', name: 'a' }, spec: { clusterIP: '10.96.7.1', ports: [{ port: 80 }] } });

test('charset other than UTF-8 and any Content-Encoding are a 415; nothing applied', async (t) => {
  const { req } = await startControlPlane(t);
  const cases = [
    [Buffer.from('\ufeff' + svc, 'utf16le'), { 'content-type': 'application/json; charset=utf-16' }, /^charset "utf-16" is not supported: send the body as UTF-8$/],
    [Buffer.from(svc, 'latin1'), { 'content-type': 'application/yaml; charset=ISO-8859-1' }, /^charset "iso-8859-1" is not supported/],
    [gzipSync(svc), { 'content-type': 'application/json', 'content-encoding': 'gzip' }, /^Content-Encoding "gzip" is not supported: send the body uncompressed$/],
    [svc, { 'content-type': 'application/json', 'content-encoding': 'br' }, /^Content-Encoding "br" is not supported/],
  ];
  for (const route of ['/api/v1/apply', '/api/v1/apply?dryRun=true', '/api/v1/delete', '/api/v1/trace']) {
    for (const [body, headers, re] of cases) {
      const r = await req('POST', route, body, headers);
      t.is(r.status, 415, `${route} ${JSON.stringify(headers)}: ${r.text.slice(0, 200)}`);
      t.regex(r.json.message, re);
    }
  }
  t.deepEqual((await req('GET', '/api/v1/services')).json.items, []);
  // UTF-8 named as such, quoted or not, and identity coding are fine
  for (const headers of [{ 'content-type': 'application/json; charset=utf-8' }, { 'content-type': 'application/json;charset="UTF-8"' }, { 'content-type': 'application/json', 'content-encoding': 'identity' }]) {
    t.is((await req('POST', '/api/v1/apply', svc, headers)).status, 200, JSON.stringify(headers));
  }
});
