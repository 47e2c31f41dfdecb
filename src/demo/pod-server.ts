// A stand-in for a pod: answers HTTP with its name and echoes UDP datagrams prefixed with its
// name, on every address (IPv4 and IPv6). For bulk transfers (the offload tests):
// GET /bytes/N answers N bytes of podBytes() content; POST /sink answers "<bytes> <sha256>" of
// the body it received (with the pod's name in x-pod: which pod an upload ended on). Run inside a pod namespace by the demo and the e2e
// tests:   node dist/src/demo/pod-server.js NAME --http 8080,9090 --udp 5353
// Prints "ready" on stdout once every socket is bound, so callers need not sleep.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createSocket } from 'node:dgram';
import { createHash } from 'node:crypto';
import { podBytes } from './pod-bytes.js';

const BULK_MAX = 256 << 20;

/** Bulk endpoints; false when the request is not one of them. */
function bulk(name: string, req: IncomingMessage, res: ServerResponse): boolean {
  const m = /^\/bytes\/(\d+)$/.exec(req.url ?? '');
  if (req.method === 'GET' && m) {
    const total = Number(m[1]);
    if (total > BULK_MAX) { res.writeHead(400); res.end(`at most ${BULK_MAX} bytes\n`); return true; }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total), connection: 'close' });
    let sent = 0;
    const more = (): void => {
      while (sent < total) {
        const n = Math.min(1 << 16, total - sent);
        const ok = res.write(podBytes(sent, n));
        sent += n;
        if (!ok) { res.once('drain', more); return; }
      }
      res.end();
    };
    more();
    return true;
  }
  if (req.method === 'POST' && req.url === '/sink') {
    const h = createHash('sha256');
    let n = 0;
    req.on('data', (d: Buffer) => { n += d.length; h.update(d); });
    req.on('end', () => { res.writeHead(200, { 'content-type': 'text/plain', 'x-pod': name, connection: 'close' }); res.end(`${n} ${h.digest('hex')}\n`); });
    return true;
  }
  return false;
}

function parseArgs(argv: string[]): { name: string; http: number[]; udp: number[] } {
  const [name, ...rest] = argv;
  if (!name || name.startsWith('--')) throw new Error('usage: pod-server NAME [--http P1,P2] [--udp P1,P2]');
  const out = { name, http: [] as number[], udp: [] as number[] };
  for (let i = 0; i < rest.length; i += 2) {
    const list = (rest[i + 1] ?? '').split(',').filter(Boolean).map(Number);
    if (list.some((p) => !(Number.isInteger(p) && p > 0 && p < 65536))) throw new Error(`bad port list for ${rest[i]}: ${rest[i + 1]}`);
    if (rest[i] === '--http') out.http.push(...list);
    else if (rest[i] === '--udp') out.udp.push(...list);
    else throw new Error(`unknown option ${rest[i]}`);
  }
  return out;
}

async function main(): Promise<void> {
  const { name, http, udp } = parseArgs(process.argv.slice(2));
  const waits: Promise<void>[] = [];
  for (const port of http) {
    const srv = createServer((req, res) => {
      if (bulk(name, req, res)) return;
      const body = `${name}\n`;
      // The peer address shows the tests whether the client was masqueraded (SNAT) or not.
      res.writeHead(200, {
        'content-type': 'text/plain', 'x-pod': name, connection: 'close',
        'x-peer': req.socket.remoteAddress ?? '', 'x-local-port': String(req.socket.localPort ?? ''),
        // which of the pod's addresses (the endpoint) the dataplane sent the connection to
        'x-local-address': (req.socket.localAddress ?? '').replace(/^::ffff:/, ''),
      });
      res.end(body);
    });
    // ipv6Only false: one socket for both families
    waits.push(new Promise((r) => srv.listen({ port, host: '::', ipv6Only: false }, () => r())));
  }
  for (const port of udp) {
    for (const type of ['udp4', 'udp6'] as const) {
      const s = createSocket({ type, ipv6Only: type === 'udp6' });
      s.on('message', (msg, rinfo) => { s.send(Buffer.concat([Buffer.from(`${name}:`), msg]), rinfo.port, rinfo.address); });
      waits.push(new Promise((r) => s.bind(port, type === 'udp4' ? '0.0.0.0' : '::', () => r())));
    }
  }
  await Promise.all(waits);
  process.stdout.write('ready\n');
}

main().catch((e) => { process.stderr.write(`pod-server: ${(e as Error).message}\n`); process.exit(2); });
