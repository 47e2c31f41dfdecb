// The one gate for tests that need root and network namespaces (and sometimes a tool). When they
// cannot run here, each is registered as test.skip with the reason in its title, so the run
// reports it as skipped — never as passed — and says why.
import { spawnSync } from 'node:child_process';
import { canUseNetns } from '../../dist/src/netns.js';

/** Why the tests cannot run here ('' when they can): not root, no `ip`, or a missing tool. */
export function rootReason(tools = []) {
  if (process.platform !== 'linux') return 'needs Linux network namespaces';
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'needs root (network namespaces)';
  if (!canUseNetns()) return 'needs iproute2 (`ip`) for network namespaces';
  // looked up without node_modules/.bin, which `npx ava` puts first in PATH: a package's bin there
  // can share a system tool's name (@vercel/nft's `nft` is not nftables')
  const PATH = (process.env.PATH ?? '').split(':').filter((d) => !/node_modules[/]\.bin$/.test(d)).join(':');
  for (const tool of tools) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore', env: { ...process.env, PATH } }).status !== 0) return `needs ${tool}, which is not installed`;
  }
  return '';
}

/**
 * { ok, reason, serial, test } for a file of root tests: `serial`/`test` are ava's test.serial /
 * test when they can run, else functions that register the test as test.skip titled
 * "<title> (skipped: <reason>)".
 */
export function rootGate(test, { tools = [] } = {}) {
  const reason = rootReason(tools);
  const ok = reason === '';
  const skip = (title, ...rest) => test.skip(`${title} (skipped: ${reason})`, ...rest);
  return { ok, reason, serial: ok ? test.serial : skip, test: ok ? test : skip };
}
