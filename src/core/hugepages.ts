// Transparent huge pages for the core's table sets (opt-in: CoreOptions.hugePages, the daemon's
// `hugePages: true`).
//
// A full table write at 10k services x 10 endpoints touches ~10k fresh 4 KiB pages of Wasm memory
// (two table sets). Marked MADV_HUGEPAGE (THP mode "madvise", the common default) the sets fault
// in 2 MiB at a time: ~1,300 faults instead. It is not the default because the packet path can get
// slower with the tables on huge pages (it did on a paravirtualised guest with shadow paging:
// measured figures in docs/running.md and docs/performance.md, "Tried, not kept").
//
// madvise needs the native addon (native/src/ffi.rs, advise_huge_pages); without it, or with THP
// "never", the memory keeps 4 KiB pages and everything works the same.
import { readFileSync } from 'node:fs';
import { nativeAddon, nativeAvailable } from '../ports/native.js';

export interface HugePageStatus {
  /** The kernel's THP mode: always | madvise | never, or unknown (no sysfs file). */
  mode: string;
  /** Bytes of the memory marked MADV_HUGEPAGE so far (0 when not advised). */
  advisedBytes: number;
  /** Why the memory is not advised, when it is not. */
  reason?: string;
}

let modeCache: string | undefined;

/** The bracketed word of /sys/kernel/mm/transparent_hugepage/enabled ("always [madvise] never"). */
export function thpMode(): string {
  if (modeCache !== undefined) return modeCache;
  try {
    modeCache = /\[(\w+)\]/.exec(readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8'))?.[1] ?? 'unknown';
  } catch {
    modeCache = 'unknown';
  }
  return modeCache;
}

/** Marks the whole 2 MiB pages of `buf` MADV_HUGEPAGE. Never throws: the status says what happened. */
export function adviseHugePages(buf: ArrayBufferLike | Uint8Array): HugePageStatus {
  const mode = thpMode();
  if (mode === 'never') return { mode, advisedBytes: 0, reason: 'transparent huge pages are disabled (mode never)' };
  const avail = nativeAvailable();
  if (!avail.ok) return { mode, advisedBytes: 0, reason: avail.reason };
  try {
    // a Uint8Array view: the addon takes an ArrayBuffer or a typed array, and a shared memory's
    // SharedArrayBuffer only through a view
    return { mode, advisedBytes: nativeAddon().adviseHugePages(buf instanceof Uint8Array ? buf : new Uint8Array(buf)) };
  } catch (e) {
    return { mode, advisedBytes: 0, reason: (e as Error).message };
  }
}

/** One line for benchmark output: "madvise: 2 MiB pages, 90 MiB advised" or "4 KiB pages: <why>". */
export function describePages(s: HugePageStatus): string {
  return s.advisedBytes > 0 ? `${s.mode}: 2 MiB pages, ${(s.advisedBytes / 2 ** 20).toFixed(0)} MiB advised` : `4 KiB pages: ${s.reason}`;
}
