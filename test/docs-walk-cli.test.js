// The CLI as docs/api.md ("CLI") and docs/observe.md describe it, without a daemon: bad flags and
// unreachable or unsupported servers are one `error:` line and exit 1 (never a stack trace); a
// reader that stops early (`wdp replay x.pcap | head`) ends the output quietly; `-o yaml` outputs
// appended to one file (observe.md's state.yaml recipe) read back as every object.
import test from 'ava';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { frame } from '../dist/src/packet/build.js';
import { encodePcap } from '../dist/src/ports/pcap.js';
import { rootGate } from './lib/root-gate.js';
import { childDone } from './lib/child-done.js';

const WDP = new URL('../bin/wdp.js', import.meta.url).pathname;
const ROOT = new URL('../', import.meta.url).pathname;
// `wdp ARGS` as spawnSync answers it ({ status, stdout, stderr }), but asynchronous: the ~80 CLI
// runs of this file were spawnSync, one after another on the worker's one thread (~40 s a run);
// now the tests' runs overlap, at most RUNS_AT_ONCE processes at a time
const RUNS_AT_ONCE = 4;
let running = 0;
const queued = [];
const run = async (args) => {
  if (running >= RUNS_AT_ONCE) await new Promise((r) => queued.push(r));
  running++;
  try {
    return await new Promise((resolve) => {
      const child = execFile(process.execPath, [WDP, ...args], { encoding: 'utf8', cwd: ROOT, timeout: 30000 }, (_e, stdout, stderr) => resolve({ status: child.exitCode, stdout, stderr }));
    });
  } finally {
    running--;
    queued.shift()?.();
  }
};
const NO_SERVER = ['--server', 'unix:/nonexistent/wdp.sock'];

const bad = [
  [['--bogus'], /unknown option '--bogus'/],
  [['get'], /missing required argument 'resource'/],
  [['get', 'widgets', ...NO_SERVER], /unknown resource "widgets"/],
  [['get', 'conntrack', '--limit', 'x', ...NO_SERVER], /--limit takes a positive integer, got "x"/],
  [['get', 'conntrack', '--limit', '0', ...NO_SERVER], /--limit takes a positive integer/],
  [['get', 'counters', '--rate', 'abc', ...NO_SERVER], /--rate takes a duration like 500ms, 30s, 1m30s or 1h \(a bare number is seconds\)/],
  [['get', 'services', '--server', 'ftp://x'], /invalid --server "ftp:\/\/x": only http:\/\/ and unix: are supported/],
  [['get', 'services', '--server', 'http://127.0.0.1:1'], /cannot reach the wdp API at http:\/\/127\.0\.0\.1:1 \(ECONNREFUSED\)/],
  [['get', 'services', '--server', 'unix:'], /invalid --server "unix:": expected unix:\/path/],
  [['get', 'services', '--server', 'HTTP://127.0.0.1:1'], /cannot reach the wdp API at HTTP:\/\/127\.0\.0\.1:1 \(ECONNREFUSED\)/],
  [['apply'], /required option '-f, --filename/],
  [['apply', '-f', '/nonexistent.yaml', ...NO_SERVER], /cannot read \/nonexistent\.yaml/],
  [['apply', '-f', 'examples/node.yaml', '-o', 'xml'], /argument 'xml' is invalid/],
  [['delete', 'widget', 'x', ...NO_SERVER], /unknown resource "widget"/],
  [['trace', '--dst', '10.96.0.10', ...NO_SERVER], /needs --src and --dst/],
  [['trace', '--live', '--duration', 'forever', ...NO_SERVER], /--duration takes a duration/],
  [['capture', '--port', 'client'], /required option '-w, --write/],
  [['capture', '--port', 'client', '-w', '/dev/null', '--direction', 'sideways'], /argument 'sideways' is invalid/],
  [['replay', '/nonexistent.pcap', '-f', 'examples/nodeport.yaml'], /cannot read pcap file/],
  [['replay', 'examples/nodeport.yaml', '-f', 'examples/nodeport.yaml'], /not a pcap file/],
];
for (const [args, msg] of bad) {
  test(`wdp ${args.join(' ')}: one clear error, exit 1`, async (t) => {
    const r = await run(args);
    t.is(r.status, 1, r.stderr);
    t.regex(r.stderr, msg);
    t.notRegex(r.stderr, /\n\s+at /, 'no stack trace');
  });
}

test('demo flags: a bad --rounds / --duration is a usage error (exit 2) before anything is built', async (t) => {
  for (const args of [['--rounds', '0'], ['--rounds', 'abc'], ['--duration', '-3']]) {
    const r = await run(['demo', ...args]);
    t.is(r.status, 2, `${args}: ${r.stderr}`);
    t.regex(r.stderr, /wdp demo: --(rounds|duration) must be a positive/);
  }
});

test('wdp replay x.pcap | head: the reader going away ends the output, no EPIPE stack trace', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-walk-cli-'));
  try {
    const frames = Array.from({ length: 3000 }, (_, i) => ({
      tsNs: BigInt(i) * 1000n,
      data: frame({ src: '10.0.0.2', dst: '10.96.12.34', proto: 'TCP', sport: 10000 + i, dport: 80, flags: 'S' }),
    }));
    writeFileSync(join(dir, 'in.pcap'), encodePcap(frames));
    const child = spawn(process.execPath, [WDP, 'replay', join(dir, 'in.pcap'), '-f', 'examples/nodeport.yaml'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    child.stdout.once('data', () => child.stdout.destroy()); // `head -1`
    const { code } = await childDone(child);
    t.notRegex(stderr, /EPIPE|\n\s+at /, stderr);
    t.is(code, 0);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('a daemon with a token (docs/api.md "Listeners"): the CLI without one says how to give it; with --token or WDP_TOKEN it works', async (t) => {
  const { startControlPlane } = await import('./lib/server.js');
  const token = 'a-token-of-16-chars';
  const { cp } = await startControlPlane(t, { token });
  const runAsync = (args, env = {}) => new Promise((resolve) => {
    const child = spawn(process.execPath, [WDP, ...args], { cwd: ROOT, env: { ...process.env, WDP_TOKEN: '', ...env } });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => { stdout += d; }); child.stderr.on('data', (d) => { stderr += d; });
    void childDone(child).then(({ code: status }) => resolve({ status, stdout, stderr }));
  });
  const none = await runAsync(['get', 'services', '--server', cp.url]);
  t.is(none.status, 1);
  t.regex(none.stderr, /^error: missing bearer token \(the API needs a token: --token or WDP_TOKEN\)\n$/);
  const flag = await runAsync(['get', 'services', '--server', cp.url, '--token', token]);
  t.is(flag.status, 0, flag.stderr);
  const env = await runAsync(['status'], { WDP_SERVER: cp.url, WDP_TOKEN: token });
  t.is(env.status, 0, env.stderr);
  t.regex(env.stdout, /^generation \d+/);
});

test('wdp diff: an error exits 2, not 1 (1 means "changes"; kubectl diff\'s convention), usage errors included', async (t) => {
  for (const [args, msg] of [
    [['diff', '-f', '/nonexistent.yaml', ...NO_SERVER], /cannot read \/nonexistent\.yaml/],
    [['diff', '-f', 'examples/nodeport.yaml', ...NO_SERVER], /cannot reach the wdp API/],
    [['diff'], /required option '-f, --filename/],
    [['diff', '-f', 'examples/', '--bogus'], /unknown option '--bogus'/],
  ]) {
    const r = await run(args);
    t.is(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, msg);
  }
  t.is((await run(['diff', '--help'])).status, 0);
});

test('output that cannot be written (a full disk) is an error: exit 2 for wdp diff (not "changes"), 1 for other commands', async (t) => {
  const { startControlPlane } = await import('./lib/server.js');
  const { cp } = await startControlPlane(t);
  // spawned, not spawnSync: the API answers from this process
  const toFull = (args) => new Promise((resolve) => {
    const child = spawn('sh', ['-c', `exec "$0" "$1" ${args} --server "$2" > /dev/full`, process.execPath, WDP, cp.url], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30000);
    void childDone(child).then(({ code: status }) => { clearTimeout(timer); resolve({ status, stderr }); });
  });
  for (const [args, status] of [['diff -f examples/nodeport.yaml', 2], ['get services', 1]]) {
    const out = await toFull(args);
    t.is(out.status, status, `${args}: ${out.stderr}`);
    t.regex(out.stderr, /^error: writing the output: .*ENOSPC/m, args);
  }
});

test('README "Benchmarks": --json on every bench, --plot on all but kube', async (t) => {
  for (const b of ['core', 'control', 'e2e', 'io', 'kube']) {
    const help = (await run(['bench', b, '--help'])).stdout;
    t.regex(help, /--json/, b);
    if (b !== 'kube') t.regex(help, /--plot/, b);
  }
  t.regex(readFileSync(join(ROOT, 'README.md'), 'utf8'), /`wdp bench core\|control\|e2e\|io\|kube \[--json\]` \(`--plot FILE\.svg` for all but `kube`\)/);
});

/** The `wdp ...` (or `node bin/wdp.js ...`) lines of the docs' fenced blocks (README, api.md's CLI
 * synopsis, observe.md, running.md): { doc, line, cmd: ['get'] | ['port', 'add'], flags: ['--rate', '-c', ...] }. */
function documentedCommands() {
  const out = [];
  for (const doc of ['README.md', 'docs/api.md', 'docs/observe.md', 'docs/running.md']) {
    let inFence = false;
    for (const raw of readFileSync(join(ROOT, doc), 'utf8').split('\n')) {
      if (/^\s*```/.test(raw)) { inFence = !inFence; continue; }
      if (!inFence) continue;
      const m = /^\s*(?:sudo )?(?:ip netns exec \S+ )?(?:node bin\/wdp\.js|wdp) ([a-z]+)(?: (add|remove|rm)\b)?(.*)$/.exec(raw);
      if (!m || ['start', 'demo', 'bench'].includes(m[1]) && /\|/.test(m[3])) continue;
      // the command's own words: up to a shell comment, a pipe into another program, a redirection
      const words = m[3].replace(/\s#\s.*$/, '').split(/\s\|\s(?![A-Z-])|\s>>?\s/)[0];
      const flags = [...words.matchAll(/(?:^|[\s[|])(--?[a-zA-Z][\w-]*)/g)].map((x) => x[1]);
      out.push({ doc, line: raw.trim(), cmd: m[2] ? [m[1], m[2] === 'rm' ? 'remove' : m[2]] : [m[1]], flags });
    }
  }
  return out;
}

test('every flag of every `wdp` command line in the docs is one its --help lists (or a global one)', async (t) => {
  const globalHelp = (await run(['--help'])).stdout;
  const helps = new Map();
  const cmds = documentedCommands();
  t.true(cmds.length > 25, `the docs' command lines were found (${cmds.length})`);
  t.true(cmds.some((c) => c.doc === 'docs/api.md' && c.cmd[0] === 'capture'), 'api.md\'s CLI synopsis is read');
  for (const { doc, line, cmd, flags } of cmds) {
    const key = cmd.join(' ');
    if (!helps.has(key)) {
      const r = await run([...cmd, '--help']);
      t.is(r.status, 0, `wdp ${key} --help: ${r.stderr}`);
      helps.set(key, r.stdout);
    }
    for (const f of flags) {
      const listed = (h) => new RegExp(`(^|[\\s,])${f}(?=[\\s,]|$)`, 'm').test(h.split('\nCommands:')[0].split('\nExamples:')[0]);
      // a global option counts in its long form only: a short one a command shadows means the command's
      t.true(listed(helps.get(key)) || (f.startsWith('--') && listed(globalHelp)), `${doc}: \`${line}\`: ${f} is not an option of wdp ${key}`);
    }
  }
});

test('the docs run the CLI as README "Using it" says: never `npx wdp` / `npm exec` (the first one of a checkout runs its prepare script, a whole build under the running daemon)', (t) => {
  const files = ['README.md', 'BENCHMARKS.md', ...readdirSync(join(ROOT, 'docs')).map((f) => `docs/${f}`),
    ...readdirSync(join(ROOT, 'examples')).map((f) => `examples/${f}`),
    ...readdirSync(join(ROOT, 'deploy'), { recursive: true }).map((f) => `deploy/${f}`).filter((f) => statSync(join(ROOT, f)).isFile())];
  for (const f of files) {
    const text = readFileSync(join(ROOT, f), 'utf8');
    // a command line (a line of its own, in a fence or a manifest's comment) or an inline command
    // with arguments; README's warning names `npx wdp` alone
    t.notRegex(text, /^[\s#]*(sudo )?(npx|npm exec)( --?\S+)* wdp\b|`(sudo )?(npx|npm exec)( --?\S+)* wdp [^`]+`/m, f);
  }
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const alias = /^alias wdp="node \$PWD\/bin\/wdp\.js"/m.exec(readme);
  t.truthy(alias, 'README names the alias the docs\' `wdp` lines use');
  // the alias, as a shell expands it in the checkout, runs this build's CLI from any directory after
  const r = spawnSync('bash', ['-c', `shopt -s expand_aliases\n${alias[0]}\ncd /\nwdp --version`], { cwd: ROOT, encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout.trim(), JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version);
});

test('wdp trace --help: every option a dry run refuses ("a --live filter/bound") says --live:, and --reason names every verdict it takes', async (t) => {
  const { VERDICT_NAMES } = await import('../dist/src/core/names.js');
  const help = (await run(['trace', '--help'])).stdout;
  const options = [...help.matchAll(/^  (?:-\w, )?(--[a-z-]+)(?: <[^>]+>)?\s+([\s\S]*?)(?=\n  -|\n\n|(?![\s\S]))/gm)].map((m) => [m[1], m[2].replace(/\s+/g, ' ')]);
  t.true(options.length > 15, `options found: ${options.length}`);
  let refused = 0;
  for (const [flag, text] of options) {
    if (['--help', '--live', '--src', '--dst'].includes(flag)) continue;
    const r = await run(['trace', '--src', '10.0.0.2', '--dst', '10.96.0.10', flag, ...(/^--(flags|output)$/.test(flag) ? [] : ['1']), ...NO_SERVER]);
    const liveOnly = /is a --live filter\/bound/.test(r.stderr);
    if (liveOnly) refused++;
    t.is(/^--live: /.test(text), liveOnly, `${flag}: "${text}" — a dry run ${liveOnly ? 'refuses' : 'takes'} it (${r.stderr.trim()})`);
  }
  t.true(refused >= 8, `the dry run refuses the live filters and bounds (${refused})`);
  const reason = options.find(([f]) => f === '--reason')[1];
  for (const v of VERDICT_NAMES) t.regex(reason, new RegExp(`\\b${v}\\b`), `--reason ${v} (observe.md) is in the help`);
});

test('no command\'s own option takes a short flag the global options have (-s is --server everywhere)', async (t) => {
  const globalShort = [...(await run(['--help'])).stdout.matchAll(/^\s+(-[a-zA-Z]), --/gm)].map((m) => m[1]);
  t.true(globalShort.includes('-s'));
  const commands = ['apply', 'delete', 'get', 'diff', 'trace', 'status', 'capture', 'replay', 'start', 'demo', 'port add', 'port remove'];
  for (const c of commands) {
    const help = (await run([...c.split(' '), '--help'])).stdout;
    for (const s of globalShort) {
      if (s === '-h') continue;
      t.notRegex(help, new RegExp(`^\\s+${s}, --`, 'm'), `wdp ${c} --help: ${s} is shadowed by the global option of that short flag`);
    }
  }
});

test('api.md "Routes": the fields it names for POST /api/v1/trace and GET /api/v1/generation are the answer\'s', async (t) => {
  const { startControlPlane } = await import('./lib/server.js');
  const { req } = await startControlPlane(t);
  const yaml = await import('yaml');
  const objs = ['examples/node.yaml', 'examples/nodeport.yaml'].flatMap((f) => yaml.parseAllDocuments(readFileSync(join(ROOT, f), 'utf8')).map((d) => d.toJS()));
  t.is((await req('POST', '/api/v1/apply', JSON.stringify(objs))).status, 200);
  const api = readFileSync(join(ROOT, 'docs/api.md'), 'utf8');
  const row = (route) => api.split('\n').find((l) => l.startsWith(`| \`${route}`)) ?? '';
  const tr = await req('POST', '/api/v1/trace', JSON.stringify({ src: '10.0.0.2', dst: '10.96.12.34', proto: 'TCP', sport: 1234, dport: 80 }));
  t.is(tr.status, 200, tr.text);
  t.is(tr.json.verdict, 'forward', tr.text);
  const traceRow = row('POST /api/v1/trace`').split('returns')[1] ?? '';
  for (const k of Object.keys(tr.json)) t.true(traceRow.includes(`\`${k}\``), `the trace answer's ${k} is named in api.md`);
  const counters = await req('GET', '/api/v1/counters');
  const countersRow = row('GET /api/v1/counters`');
  for (const k of Object.keys(counters.json)) t.true(new RegExp(`[{ ]${k}[,[}]`).test(countersRow), `the counters answer's ${k} is named in api.md`);
  const gen = await req('GET', '/api/v1/generation');
  const genRow = row('GET /api/v1/generation`');
  for (const k of Object.keys(gen.json)) t.true(genRow.includes(k), `the generation answer's ${k} is named in api.md`);
});

rootGate(test).test('README / running.md: `wdp demo --duration N` runs rounds until N seconds are up and says where to watch its counters before the rounds, while its daemon answers there', async (t) => {
  // --duration 120: more than the default 3 rounds, whatever the load; the demo is stopped with
  // Ctrl-C (SIGINT) once the command it names has answered and a 4th round ran
  const child = spawn(process.execPath, [WDP, 'demo', '--duration', '120'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', stderr = '', counters, answered;
  const rounds = () => (out.match(/round \d+:/g) ?? []).length;
  const stopWhenSeen = () => { if (answered && rounds() > 3) child.kill('SIGINT'); };
  child.stderr.on('data', (d) => { stderr += d; });
  child.stdout.on('data', (d) => {
    out += d;
    // the command as shown, run from another directory (a fresh checkout has no `wdp` on the PATH)
    const m = /`node (\/\S+) get counters --server (unix:\S+)`/.exec(out);
    if (m && !counters) {
      counters = new Promise((res) => {
        const c = spawn('node', [m[1], 'get', 'counters', '--server', m[2]], { cwd: '/' });
        let so = '';
        c.stdout.on('data', (x) => { so += x; });
        void childDone(c).then(({ code }) => { answered = { code, so }; res(answered); stopWhenSeen(); });
      });
    }
    stopWhenSeen();
  });
  const timer = setTimeout(() => child.kill('SIGINT'), 150000);
  const { code } = await childDone(child);
  clearTimeout(timer);
  t.true(code === 0 || code === 130, `demo exit ${code}: ${stderr}`);
  const hint = out.indexOf('bin/wdp.js get counters --server'), first = out.indexOf('round 1:');
  t.true(hint >= 0 && first >= 0 && hint < first, `the counters command is shown before the rounds:\n${out}`);
  const r = await counters;
  t.is(r?.code, 0, 'the command shown works while the demo runs');
  t.regex(r?.so ?? '', /^generation \d+/);
  t.true(rounds() > 3, `--duration alone runs rounds until it is up, not the default 3:\n${out}`);
});

test('api.md "Listeners": createControlPlane returns what the embedding paragraph names', async (t) => {
  const { startControlPlane } = await import('./lib/server.js');
  const { cp } = await startControlPlane(t);
  const api = readFileSync(join(ROOT, 'docs/api.md'), 'utf8');
  const named = /and returns `\{ ([^}]+) \}`/.exec(api)?.[1].split(', ').map((k) => k.replace('()', ''));
  t.deepEqual([...(named ?? [])].sort(), Object.keys(cp).sort());
});
