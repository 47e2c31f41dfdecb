// `wdp bench kube`'s API server: the API-server double as a child process in the daemon's
// network namespace (the daemon reaches it on that namespace's loopback, as in
// test/kube-e2e.test.js), seeded here with N Services x M endpoints and the Node before it
// listens — 20k writes over the control socket would cost the bench more than the list itself.
// Without the watch cache (unless --watch-cache): the first list too comes in pages of
// listPageSize, as a server whose cache is off answers it (with the cache, the API server's
// default, the first list — resourceVersion 0 — is one answer).
//   node kube-double.js --services N --endpoints M --control SOCK [--watch-cache]
// prints {"url": ..., "seedMs": ...}; the bench writes changes through SOCK (the REST paths).
import { performance } from 'node:perf_hooks';
import { loadDouble, seed } from './kube-objects.js';

const arg = (n: string): string => { const i = process.argv.indexOf(n); if (i < 0) throw new Error(`kube-double: ${n} missing`); return process.argv[i + 1]; };
const ApiServerDouble = await loadDouble();
const double = new ApiServerDouble({ watchCache: process.argv.includes('--watch-cache') });
const t0 = performance.now();
seed(double, Number(arg('--services')), Number(arg('--endpoints')));
const seedMs = Math.round(performance.now() - t0);
await double.listen('127.0.0.1', 0);
await double.listenControl(arg('--control'));
process.stdout.write(`${JSON.stringify({ url: double.url, seedMs })}\n`);
const stop = (): void => { void double.close().then(() => process.exit(0)); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
