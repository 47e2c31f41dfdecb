// `wdp bench <suite> --help` shows the default of every option that has one (what a run without it
// measures): each option taking a value says "default" in its help, except those that have none
// (listed here with why). Before, `bench core` and `bench io` showed none of theirs.
import test from 'ava';
import { spawnSync } from 'node:child_process';

const WDP = new URL('../bin/wdp.js', import.meta.url).pathname;

/** The options of a help text: flags -> description (wrapped lines joined). */
function helpOptions(text) {
  const out = new Map();
  let cur = null;
  const section = text.split(/^Options:$/m)[1] ?? '';
  for (const line of section.split('\n')) {
    const m = /^ {2}((?:-\w, )?--[\w-]+(?: <[^>]+>)?)\s+(.*)$/.exec(line);
    if (m) { cur = m[1]; out.set(cur, m[2]); } else if (cur && /^ {10,}\S/.test(line)) out.set(cur, `${out.get(cur)} ${line.trim()}`);
    else cur = null;
  }
  return out;
}

/** Options taking a value that have no default, and why. */
const NO_DEFAULT = {
  core: ['--workers <n>', '--sweep <what>', '--plot <file.svg>'],   // off unless given
  control: ['--services <n>', '--plot <file.svg>'],                 // required; off
  e2e: ['--only <side>', '--plot <file.svg>'],                      // both sides; off
  io: ['--plot <file.svg>'],
  kube: [],
};

for (const suite of Object.keys(NO_DEFAULT)) {
  test(`wdp bench ${suite} --help: every option with a default shows it`, (t) => {
    const r = spawnSync(process.execPath, [WDP, 'bench', suite, '--help'], { encoding: 'utf8', timeout: 60_000 });
    t.is(r.status, 0, r.stderr);
    const opts = helpOptions(r.stdout);
    t.true(opts.size > 3, r.stdout);
    for (const [flags, text] of opts) {
      if (!flags.includes('<') || NO_DEFAULT[suite].includes(flags)) continue;
      t.regex(text, /\(default: [^)]+\)|default: [^)]+\)$|; default: /, `${suite} ${flags}: ${text}`);
    }
  });
}

test('wdp bench core/io --help: the defaults the suites use', (t) => {
  const core = helpOptions(spawnSync(process.execPath, [WDP, 'bench', 'core', '--help'], { encoding: 'utf8' }).stdout);
  t.regex(core.get('--services <n>'), /\(default: 1000\)/);
  t.regex(core.get('--endpoints <m>'), /\(default: 10\)/);
  t.regex(core.get('--flows <f>'), /\(default: 100k\)/);
  t.regex(core.get('--seconds <duration>'), /\(default: 3, with --workers 2\)/);
  t.regex(core.get('--batch <n>'), /\(default: 256\)/);
  t.regex(core.get('--points <list>'), /default: services 100,1000,10000,100000; flows 1000,10000,100000,1000000,4000000/);
  const io = helpOptions(spawnSync(process.execPath, [WDP, 'bench', 'io', '--help'], { encoding: 'utf8' }).stdout);
  t.regex(io.get('--seconds <duration>'), /\(default: 3\)/);
  t.regex(io.get('--warmup <duration>'), /\(default: 0\.5\)/);
  t.regex(io.get('--batch <n>'), /\(default: 256\)/);
  t.regex(io.get('--size <bytes>'), /\(default: 60\)/);
});
