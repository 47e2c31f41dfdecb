// Transparent huge pages for the core's linear memory.
//
// The table sets, conntrack and counters live in one Wasm memory of tens to hundreds of MB. With
// 4 KiB pages every first touch of it is a page fault: a full table write at 10k services x 10
// endpoints touched ~10k pages, and on the CI VM a fault costs ~14 µs (~150 ms of that write). With
// the memory marked MADV_HUGEPAGE (the kernel's THP mode "madvise", the common default) it faults
// in 2 MiB at a time: 512x fewer faults, and fewer TLB misses on the packet path. The price is that
// memory is committed in 2 MiB steps (RSS may round up by up to 2 MiB per touched region).
//
// madvise needs the native addon (native/src/ffi.rs, advise_huge_pages); without it, or with THP
// "never", the memory keeps 4 KiB pages and everything works the same, only slower to fill.
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
export function adviseHugePages(buf: ArrayBufferLike): HugePageStatus {
  const mode = thpMode();
  if (mode === 'never') return { mode, advisedBytes: 0, reason: 'transparent huge pages are disabled (mode never)' };
  const avail = nativeAvailable();
  if (!avail.ok) return { mode, advisedBytes: 0, reason: avail.reason };
  try {
    // a Uint8Array view: the addon takes an ArrayBuffer or a typed array, and a shared memory's
    // SharedArrayBuffer only through a view
    return { mode, advisedBytes: nativeAddon().adviseHugePages(new Uint8Array(buf)) };
  } catch (e) {
    return { mode, advisedBytes: 0, reason: (e as Error).message };
  }
}
