// A stand-in for a pod: answers HTTP with its name and echoes UDP datagrams prefixed with its
// name, on every address (IPv4 and IPv6). Run inside a pod namespace by the demo and the e2e
// tests:   node dist/src/demo/pod-server.js NAME --http 8080,9090 --udp 5353
// Prints "ready" on stdout once every socket is bound, so callers need not sleep.
import { createServer } from 'node:http';
import { createSocket } from 'node:dgram';

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
      const body = `${name}\n`;
      // The peer address shows the tests whether the client was masqueraded (SNAT) or not.
      res.writeHead(200, {
        'content-type': 'text/plain', 'x-pod': name, connection: 'close',
        'x-peer': req.socket.remoteAddress ?? '', 'x-local-port': String(req.socket.localPort ?? ''),
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
