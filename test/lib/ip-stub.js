// `ip` stubs for tests that need the daemon's (or a worker's) `ip` to hold or fail on one command:
// a directory to put first on the PATH the process under test starts with. Every other command
// goes to the real `ip`.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A stub running shell `action` first when the command line contains ` match ` (then the real
 * `ip`, unless `action` exits). */
export function ipStub(match, action) {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-ip-stub-'));
  const real = execFileSync('sh', ['-c', 'command -v ip'], { encoding: 'utf8' }).trim();
  writeFileSync(join(dir, 'ip'), `#!/bin/sh
case " $* " in
  *" ${match} "*)
${action(dir)};;
esac
exec '${real}' "$@"
`);
  chmodSync(join(dir, 'ip'), 0o755);
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A stub that holds `ip ... match ...` while its gate file exists (bounded: 60 s); `reached`
 * appears once it is held. */
export function holdingIpStub(match) {
  let gateFile, reached;
  const stub = ipStub(match, (dir) => {
    gateFile = join(dir, 'gate'); reached = join(dir, 'reached');
    return `    : > '${reached}'
    i=0
    while [ -e '${gateFile}' ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done`;
  });
  writeFileSync(gateFile, '');
  return { ...stub, reached, release: () => rmSync(gateFile, { force: true }) };
}

/** A stub that fails `ip ... match ...` as the kernel refusing it would. */
export function refusingIpStub(match) {
  return ipStub(match, () => "    echo 'RTNETLINK answers: Operation not permitted' >&2; exit 2");
}
