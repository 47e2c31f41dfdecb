// The API client's request bodies (src/cli/client.ts): a large body is written in slices as the
// socket takes them, and arrives byte for byte as given, its Content-Length right — also when a
// slice boundary falls inside a surrogate pair, and when the server reads slowly.
import test from 'ava';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventEmitter } from 'node:events';
import { ApiClient, BODY_SLICE, writeBody } from '../dist/src/cli/client.js';

/** A server on a unix socket that answers each request with what it received: the body's text,
 * its byte count and the announced Content-Length. `slow`: it pauses the request now and then. */
async function echoServer(t, slow = false) {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-client-body-'));
  const sock = join(dir, 'api.sock');
  const server = createServer((req, res) => {
    const chunks = [];
    let n = 0;
    req.on('data', (c) => {
      chunks.push(c);
      if (slow && ++n % 4 === 0) { req.pause(); setTimeout(() => req.resume(), 2); }
    });
    req.on('end', () => {
      const bytes = Buffer.concat(chunks);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ text: bytes.toString('utf8'), bytes: bytes.length, announced: Number(req.headers['content-length']) }));
    });
  });
  await new Promise((r) => server.listen(sock, r));
  t.teardown(() => { server.close(); rmSync(dir, { recursive: true, force: true }); });
  return { client: new ApiClient({ server: `unix:${sock}`, timeoutMs: 60_000 }) };
}

test('a body of several slices arrives as given, a surrogate pair across a slice boundary included', async (t) => {
  const { client } = await echoServer(t);
  // "😀" is two UTF-16 code units: placed so that the first slice would end between them
  const body = `${'a'.repeat(BODY_SLICE - 1)}😀${'é'.repeat(BODY_SLICE)}😀${'z'.repeat(3 * BODY_SLICE + 7)}`;
  const r = await client.call('POST', '/x', body);
  t.is(r.bytes, Buffer.byteLength(body));
  t.is(r.announced, r.bytes);
  t.true(r.text === body, 'the received text differs from the body sent');
});

test('a large body arrives whole when the server reads it slowly', async (t) => {
  const { client } = await echoServer(t, true);
  const body = JSON.stringify(Array.from({ length: 60_000 }, (_, i) => ({ kind: 'Service', name: `svc-${i}`, note: i % 7 ? 'x' : 'ü€😀' })));
  t.true(body.length > 8 * BODY_SLICE);
  const r = await client.call('POST', '/x', body);
  t.is(r.bytes, Buffer.byteLength(body));
  t.true(r.text === body);
});

test('small and empty bodies are sent as before', async (t) => {
  const { client } = await echoServer(t);
  t.deepEqual(await client.call('POST', '/x', '{"a":1}'), { text: '{"a":1}', bytes: 7, announced: 7 });
  t.deepEqual(await client.call('POST', '/x', ''), { text: '', bytes: 0, announced: 0 });
  t.deepEqual(await client.call('GET', '/x'), { text: '', bytes: 0, announced: null });
});

test('a large body goes in slices of at most BODY_SLICE characters, the next one only once a full socket drained', (t) => {
  // (a request stand-in: what writeBody calls, recorded)
  const req = new EventEmitter();
  const writes = [];
  let full = true, ended = false;
  req.write = (chunk) => { writes.push(chunk); return !full; };
  req.end = () => { ended = true; };
  const body = 'x'.repeat(3 * BODY_SLICE + 5);
  writeBody(req, body);
  t.is(writes.length, 1, 'nothing more written until the socket drains');
  t.false(ended);
  full = false;
  req.emit('drain');
  t.deepEqual(writes.map((w) => w.length), [BODY_SLICE, BODY_SLICE, BODY_SLICE, 5]);
  t.is(writes.join(''), body);
  t.true(ended);
});
