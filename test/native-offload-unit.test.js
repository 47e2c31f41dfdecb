// The addon's own unit tests (native/src/offload.rs: checksum arithmetic, GSO segmentation of
// TCPv4/TCPv6 super-frames across bursts, refusal of malformed ones; kernel_path.rs: the checksum
// differences against a recomputation; bpf_asm.rs: the encoding), run with cargo. They need
// no privileges; skipped with the reason when no Rust toolchain is installed.
import test from 'ava';
import { spawnSync } from 'node:child_process';

const root = new URL('../', import.meta.url).pathname;
const cargo = spawnSync('cargo', ['--version'], { encoding: 'utf8' });
const run = cargo.status === 0 ? test : test.skip;
if (cargo.status !== 0) console.log('native-offload-unit: skipped, cargo not found (Rust toolchain needed)');

run('cargo test: the addon\'s unit tests pass (offload.rs checksums and segmentation, kernel_path.rs checksum differences, bpf_asm.rs)', (t) => {
  const r = spawnSync('cargo', ['test', '--release', '--lib', '--quiet'], {
    cwd: root + 'native', encoding: 'utf8', timeout: 600_000, env: { ...process.env, CARGO_NET_OFFLINE: 'true' },
  });
  t.is(r.status, 0, `${r.stdout}\n${r.stderr}`);
  t.regex(r.stdout, /test result: ok\. [1-9]\d* passed; 0 failed/);
});
