// Manifest files as the CLI reads them (apply, delete, diff, replay -f): their objects, a file that
// holds no object at all (a text file, a list of strings) refused naming the file.
import { parseManifests } from '../model/load.js';

export class ManifestFileError extends Error {}

const what = (x: unknown): string => {
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'a list';
  if (typeof x !== 'string') return `a ${typeof x}`;
  const line = x.split('\n')[0];
  return `the text ${JSON.stringify(line.length > 40 ? `${line.slice(0, 40)}...` : line)}`;
};

/** The objects of `text` (read from `source`); each must be a mapping (an object with kind:): a
 * scalar or a nested list is no manifest, and is refused here with the file's name. */
export function manifestObjects(text: string, source: string): unknown[] {
  const objects = parseManifests(text, source, { uniqueJsonKeys: true });
  const i = objects.findIndex((x) => x === null || typeof x !== 'object' || Array.isArray(x));
  if (i >= 0) {
    throw new ManifestFileError(`${source}: not a manifest: object ${i + 1} is ${what(objects[i])}, where a Service, EndpointSlice or NodeConfig (a YAML or JSON mapping with kind:) is expected`);
  }
  return objects;
}
