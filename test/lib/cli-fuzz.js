// A bounded, seeded fuzzer of the `wdp` CLI's flags (test/fuzz-api-cli.test.js, bench/fuzz-api.mjs
// --cli): every client command with values left out, unknown flags, bad numbers, durations,
// addresses, names and files, run as a real process against a daemon. Each run must end (no hang)
// with exit 0 / 1 (diff: 0 / 1 / 2) and, on an error, `error:` lines a user can act on: no stack
// trace, no JavaScript error text.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { rng, ROOT, unclear } from './api-fuzz.js';

const BIN = join(ROOT, 'bin', 'wdp.js');

const BAD_NUMBERS = ['', '-1', '0', '1.5', 'abc', '1e3', '0x10', '99999999999999999999', 'NaN', 'Infinity', '٣', ' 5', '5 ', '--', '-', '1k', '65536', '4294967296'];
const BAD_DURATIONS = ['', '0', '-1s', '1', 'abc', '1h30', '1.5.s', '99999999h', 'Infinity', 's', '10ms', '1e3s', '  2s', '٣s'];
const BAD_ADDRS = ['', '1.2.3', '256.1.1.1', '10.0.0.1/33', 'fe80::1%eth0', '::1/129', 'abc', '10.0.0.01', '::ffff:1.2.3.4', '1.2.3.4/0', '-1.0.0.0', '10.0.0.0/8/8'];
const BAD_NAMES = ['', 'UPPER', 'a/b', 'a/b/c', '/', '..', 'x'.repeat(300), 'é', '\u0001', '-n', 'default/', '/web', 'a b', '*'];
const GOOD = { num: ['1', '5', '100'], dur: ['1s', '2s'], addr: ['10.0.0.2', '10.96.0.10', '10.0.0.0/8', 'fd00::1'], name: ['a', 'fz/a', 'web', 'p0'] };

const kinds = { num: BAD_NUMBERS, dur: BAD_DURATIONS, addr: BAD_ADDRS, name: BAD_NAMES };

// command -> [positional choices, flags: [flag, kind]]
const COMMANDS = [
  [['get', 'services'], [['-n', 'name'], ['-o', 'out'], ['--limit', 'num'], ['-A', 'bool']]],
  [['get', 'endpointslices'], [['-n', 'name'], ['-o', 'out']]],
  [['get', 'conntrack'], [['--service', 'name'], ['--client', 'addr'], ['--backend', 'addr'], ['--proto', 'proto'], ['--limit', 'num'], ['-n', 'name'], ['-o', 'out']]],
  [['get', 'counters'], [['--rate', 'dur'], ['-n', 'name'], ['--service', 'name'], ['-o', 'out']]],
  [['get', 'frontends'], [['--service', 'name'], ['-n', 'name'], ['-o', 'out']]],
  [['get', 'backends'], [['--service', 'name'], ['-n', 'name'], ['-o', 'out']]],
  [['get', 'nodeconfig'], [['-o', 'out']]],
  [['get', 'ports'], [['-o', 'out']]],
  [['get', 'nothing'], []],
  [['get'], []],
  [['status'], [['-o', 'out']]],
  [['apply'], [['-f', 'file'], ['--dry-run', 'bool'], ['-R', 'bool'], ['-o', 'out']]],
  [['delete'], [['-f', 'file'], ['--dry-run', 'bool'], ['-n', 'name']]],
  [['delete', 'service'], [['-n', 'name']]],
  [['delete', 'endpointslice'], [['-n', 'name']]],
  [['diff'], [['-f', 'file'], ['-R', 'bool']]],
  [['trace'], [['--src', 'addr'], ['--dst', 'addr'], ['--proto', 'proto'], ['--sport', 'num'], ['--dport', 'num'], ['--flags', 'flags'], ['--in-port', 'name'], ['-o', 'out']]],
  [['trace', '--live'], [['--src', 'addr'], ['--dst', 'addr'], ['--host', 'addr'], ['--sport', 'num'], ['--dport', 'num'], ['--port', 'num'], ['--proto', 'proto'], ['--service', 'name'], ['--backend', 'addr'], ['--reason', 'name'], ['--in-port', 'name'], ['-c', 'num'], ['--duration', 'dur'], ['--rate', 'num'], ['-o', 'out']]],
  [['capture'], [['--port', 'name'], ['-w', 'out-file'], ['--direction', 'dir'], ['-c', 'num'], ['--max-bytes', 'num'], ['--duration', 'dur'], ['-s', 'num'], ['--src', 'addr'], ['--dport', 'num']]],
  [['port', 'add'], [['--name', 'name'], ['--type', 'ptype'], ['--ifname', 'name'], ['--role', 'role'], ['--gateway', 'addr'], ['--pod', 'pod'], ['--netns', 'name'], ['--worker', 'num'], ['-f', 'file']]],
  [['port', 'remove'], []],
  [['replay'], [['-f', 'file'], ['--in-port', 'name'], ['--ports', 'file'], ['--flows', 'num'], ['-w', 'out-file'], ['-o', 'out']]],
];

/** Files the cases name: written once into `dir`. */
export function writeCliFiles(dir) {
  const f = (name, text) => { writeFileSync(join(dir, name), text); return join(dir, name); };
  return [
    f('svc.yaml', 'apiVersion: v1\nkind: Service\nmetadata: {namespace: fz, name: cli}\nspec: {clusterIP: 10.96.1.1, ports: [{name: http, port: 80}]}\n'),
    f('bad.yaml', 'apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{port: 0}]}\n'),
    f('broken.yaml', 'a: [\n'),
    f('empty.yaml', ''),
    f('dup.yaml', 'a: 1\na: 2\n'),
    f('list.json', '{"kind":"List","items":[null, 1, "x"]}'),
    f('port.yaml', 'name: cliport\ntype: tap\nifname: clitap\nrole: pod\n'),
    f('capture.pcap', 'not a pcap'),
    '/nonexistent/file.yaml', dir, '/dev/null', '-',
  ];
}

function valueOf(r, kind, files, dir) {
  const bad = r.chance(0.6);
  switch (kind) {
    case 'num': case 'dur': case 'addr': case 'name': return bad ? r.pick(kinds[kind]) : r.pick(GOOD[kind]);
    case 'out': return r.pick(['json', 'yaml', 'wide', 'xml', '', 'JSON']);
    case 'proto': return r.pick(['TCP', 'udp', 'sctp', 'ICMP', 'GRE', '', '6']);
    case 'flags': return r.pick(['S', 'SA', 'X', '', 'sa', 'SSSS']);
    case 'dir': return r.pick(['in', 'out', 'both', 'sideways', '']);
    case 'ptype': return r.pick(['tap', 'afpacket', 'afxdp', 'host', 'pcap', '']);
    case 'role': return r.pick(['pod', 'uplink', 'host', '']);
    case 'pod': return r.pick(['10.245.9.9', '10.245.9.9=02:00:00:00:00:01', '10.245.9.9=zz', '=', 'abc=', '10.245.9.9=02:00:00:00:00:01=x']);
    case 'file': return r.pick(files);
    case 'out-file': return r.pick([join(dir, 'out.pcap'), '/nonexistent/dir/out.pcap', '-', dir, '']);
    default: return undefined;
  }
}

/** The argv of case `i` of `seed`. */
export function cliCaseAt(seed, i, files, dir) {
  const r = rng((seed ^ Math.imul(i + 7, 0x85EBCA6B)) >>> 0);
  const [pos, flags] = r.pick(COMMANDS);
  const args = [...pos];
  // a live trace or capture that sees no traffic runs its whole duration (30 s, 10 s by default)
  if (pos[0] === 'capture' || pos.includes('--live')) args.push('--duration', '2s');
  if (r.chance(0.3)) args.push(r.pick(['a', 'fz/a', 'x'.repeat(200), '', '-', 'extra1 extra2']));
  const n = r.int(4);
  for (let k = 0; k < n && flags.length; k++) {
    const [flag, kind] = r.pick(flags);
    args.push(flag);
    if (kind === 'bool') continue;
    const roll = r.int(10);
    if (roll === 0) continue; // the value left out
    if (roll === 1) { args.push(r.pick(['--unknown', '--server', '-x', '--'])); continue; }
    args.push(valueOf(r, kind, files, dir));
  }
  if (r.chance(0.1)) args.push(r.pick(['--unknown-flag', '-Z', '--limit=', '--help=1', '--server', '--token']));
  if (r.chance(0.05)) args.push('--server', r.pick(['', 'ftp://x', 'http://', 'unix:', 'http://[::1', 'http://127.0.0.1:99999', 'x'.repeat(2000)]));
  return args;
}

/** Runs one CLI case; resolves { code, signal, stdout, stderr, timedOut }. */
export function runCli(args, server, timeoutMs = 30_000) {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, WDP_SERVER: server, WDP_TOKEN: '' }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '', stderr = '', timedOut = false;
    const timer = setTimeout(() => { timedOut = true; p.kill('SIGKILL'); }, timeoutMs);
    p.stdout.on('data', (d) => { if (stdout.length < 100_000) stdout += d; });
    p.stderr.on('data', (d) => { if (stderr.length < 100_000) stderr += d; });
    p.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr, timedOut }); });
    p.stdin.end('apiVersion: v1\nkind: Service\nmetadata: {namespace: fz, name: stdin}\nspec: {clusterIP: 10.96.1.2, ports: [{port: 80}]}\n');
  });
}

/** What is wrong with a CLI run's outcome, or null. */
export function cliProblem(args, r) {
  if (r.timedOut) return 'no exit within the bound';
  if (r.signal) return `killed by ${r.signal}`;
  const diff = args[0] === 'diff';
  if (!(r.code === 0 || r.code === 1 || (diff && r.code === 2) || (args[0] === 'start' && r.code === 2))) return `exit code ${r.code}`;
  if (/\n\s+at .+:\d+:\d+\)?\n/.test(r.stderr)) return 'a stack trace';
  const failed = r.code !== 0 && !(diff && r.code === 1);
  // an empty value is refused (src/cli/main.ts), except where it means something
  const empty = args.findIndex((a, k) => a === '' && !['--flags', '--token'].includes(args[k - 1]));
  if (empty >= 0 && !failed && args[0] !== 'start') return `an empty value (argument ${empty}) accepted`;
  if (failed) {
    const lines = r.stderr.split('\n').filter((l) => l.trim());
    if (!lines.length) return 'failed without a message';
    // (a value the case sent, quoted back in the message, is the user's text, not the CLI's; so is
    // a path the case sent where the CLI names a file it could not read: "cannot read [pcap file] P: CODE")
    const own = args.filter(Boolean).reduce((text, a) => text.split(JSON.stringify(a)).join('""')
      .split(`read ${a}: `).join('read "": ').split(`file ${a}: `).join('file "": '), r.stderr);
    const why = unclear(r.stderr) ?? (/\bundefined\b|\bNaN\b/.test(own) ? `"undefined"/"NaN" in the message` : null);
    if (why) return why;
  }
  return null;
}

/** Runs `iterations` CLI cases; returns the problems. */
export async function fuzzCli({ seed, iterations, server, dir, onCase, start = 0 }) {
  const files = writeCliFiles(dir);
  const problems = [];
  const stats = {};
  for (let i = start; i < start + iterations; i++) {
    const args = cliCaseAt(seed, i, files, dir);
    onCase?.(i, args);
    const r = await runCli(args, server);
    stats[`${args[0]} ${r.code}`] = (stats[`${args[0]} ${r.code}`] ?? 0) + 1;
    const p = cliProblem(args, r);
    if (p) problems.push({ seed, i, what: `cli: ${p}`, request: `wdp ${args.map((a) => JSON.stringify(a)).join(' ')}`, extra: (r.stderr || r.stdout).slice(0, 600) });
  }
  return { problems, stats };
}
