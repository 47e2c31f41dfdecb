// Builds the native port addon (native/) with @napi-rs/cli when a Rust toolchain is present.
// Without one, wdp still runs its in-process modes (synthetic traffic, pcap); `wdp` explains why
// native ports are unavailable when they are asked for.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
const root = new URL('..', import.meta.url).pathname;
if (!existsSync(root + 'native/Cargo.toml')) { console.log('native: no crate yet, skipped'); process.exit(0); }
const cargo = spawnSync('cargo', ['--version'], { encoding: 'utf8' });
if (cargo.status !== 0) {
  console.warn('native: cargo not found — native ports (TAP, AF_PACKET) will be unavailable (the daemon uses ~100x slower python3 relay ports);\n' +
    'native: install a Rust toolchain (https://rustup.rs), then `npm run build:native`');
  process.exit(0);
}
const r = spawnSync('npx', ['napi', 'build', '--release', '--platform', '--cwd', 'native', '--output-dir', '.'],
  { cwd: root, stdio: 'inherit', env: { ...process.env, CARGO_NET_OFFLINE: 'true' } });
if (r.status !== 0) {
  console.error('native: build failed (see above)');
  process.exit(r.status ?? 1);
}
