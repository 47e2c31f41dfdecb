// Long-lived echo traffic for the restart e2e tests: a pod's echo server and a client holding n
// connections (or UDP sockets) that each send a numbered line every 200 ms, run inside the test's
// namespaces with spawnNode (test/lib/topology.js).
import { spawnNode, waitFor } from './topology.js';

export const ECHO_PORT = 7000;

// a pod's long-lived service: every line comes back as "<pod>:<line>"
export const ECHO_SERVER = `
  const net = require('net'); const name = process.argv[1];
  net.createServer((s) => { let buf = ''; s.on('error', () => {});
    s.on('data', (d) => { buf += d; let i; while ((i = buf.indexOf('\\n')) >= 0) { s.write(name + ':' + buf.slice(0, i) + '\\n'); buf = buf.slice(i + 1); } });
  }).listen({ port: ${ECHO_PORT}, host: '::', ipv6Only: false }, () => console.log('ready'));`;

// n connections (tcp) or sockets (udp, each its own source port: one flow) to host:port, a
// numbered line on each every 200 ms, answered "<pod>:<line>"; "report" on stdin prints every
// connection's state; "stop" closes them and exits. Bounded: exits by itself after 180 s.
export const ECHO_CLIENT = `
  const net = require('net'), dgram = require('dgram'); const [host, port, n, proto] = process.argv.slice(1);
  const conns = [];
  const got = (c, line) => { const pod = line.split(':')[0]; if (!c.pods.includes(pod)) c.pods.push(pod); c.recv++; };
  for (let i = 0; i < Number(n); i++) {
    const c = { pods: [], sent: 0, recv: 0, errors: [], closed: false, buf: '' };
    if (proto === 'udp') {
      c.s = dgram.createSocket('udp4');
      c.s.on('message', (m) => got(c, String(m)));
      c.send = (line) => c.s.send(line, Number(port), host);
    } else {
      c.s = net.connect({ host, port: Number(port) });
      c.s.setNoDelay(true);
      c.s.on('data', (d) => { c.buf += d; let k; while ((k = c.buf.indexOf('\\n')) >= 0) { got(c, c.buf.slice(0, k)); c.buf = c.buf.slice(k + 1); } });
      c.s.on('close', () => { c.closed = true; });
      c.send = (line) => { if (c.s.readyState === 'open') c.s.write(line + '\\n'); };
    }
    c.s.on('error', (e) => c.errors.push(e.code || e.message));
    conns.push(c);
  }
  const tick = setInterval(() => { for (const c of conns) if (!c.closed) c.send(String(c.sent++)); }, 200);
  const report = () => console.log(JSON.stringify(conns.map(({ pods, sent, recv, errors, closed }) => ({ pods, sent, recv, errors, closed }))));
  let inbuf = '';
  process.stdin.on('data', (d) => { inbuf += d; let k; while ((k = inbuf.indexOf('\\n')) >= 0) { const cmd = inbuf.slice(0, k); inbuf = inbuf.slice(k + 1);
    report(); if (cmd === 'stop') { clearInterval(tick); process.exit(0); } } });
  setTimeout(() => process.exit(3), 180000);`;

/** Asks a client for its connections' state. */
export async function report(client) {
  const before = client.out.length;
  client.stdin.write('report\n');
  const line = await waitFor('a client report', () => {
    const l = client.out.slice(before).split('\n').find((x) => x.startsWith('['));
    return l && JSON.parse(l);
  }, 10000);
  return line;
}

/** Starts the echo server in every pod of the topology; resolves once each listens. */
export async function startEchoServers(topo) {
  for (const pod of topo.pods) {
    const s = spawnNode(topo, pod.ns, ECHO_SERVER, [pod.name]);
    await waitFor(`${pod.name} echo server`, () => s.out.includes('ready'));
  }
}
