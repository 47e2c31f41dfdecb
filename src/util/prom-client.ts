// prom-client's metric classes, loaded from their own files rather than the package's index.
//
// The index also loads its default process metrics, whose CPU metric requires
// @opentelemetry/api (51 files): ~40 ms of CPU on every start (146 ms in a loaded restart's
// profile) for metrics wdp does not collect. These four files load nothing of that (~3.5 ms).
// They are the same modules the index re-exports (no copy: one global registry), and the types
// are the package's own. Relies on prom-client 15's layout (lib/<name>.js, no "exports" map);
// a version that moves them fails at start with "Cannot find module", not silently.
import { createRequire } from 'node:module';
import type * as Prom from 'prom-client';

const load = createRequire(import.meta.url);

export const Registry = load('prom-client/lib/registry') as typeof Prom.Registry;
export type Registry = Prom.Registry;
export const Counter = load('prom-client/lib/counter') as typeof Prom.Counter;
export type Counter<T extends string = string> = Prom.Counter<T>;
export const Gauge = load('prom-client/lib/gauge') as typeof Prom.Gauge;
export type Gauge<T extends string = string> = Prom.Gauge<T>;
export const Histogram = load('prom-client/lib/histogram') as typeof Prom.Histogram;
export type Histogram<T extends string = string> = Prom.Histogram<T>;
