// `kubectl apply -k DIR` for the tests of deploy/ (kustomize is not installed): the objects of a
// kustomization, its patches applied as strategic merge patches — enough for what deploy/ and
// its overlays use (resources, patches by path).
import { readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse as parseYaml, parseAllDocuments } from 'yaml';

/** The strategic-merge keys of the lists the overlay patches (Kubernetes' patchMergeKey). */
const MERGE_KEYS = { containers: 'name', initContainers: 'name', volumes: 'name', volumeMounts: 'mountPath', env: 'name' };

/** A strategic merge patch as kustomize applies it for these objects: maps merged, lists with a
 * merge key merged by it, other lists and scalars replaced, null deletes. */
export function mergePatch(base, patch, key) {
  if (Array.isArray(patch)) {
    const k = MERGE_KEYS[key];
    if (!k || !Array.isArray(base)) return patch;
    const out = base.map((b) => { const p = patch.find((x) => x[k] === b[k]); return p ? mergePatch(b, p) : b; });
    return [...out, ...patch.filter((p) => !base.some((b) => b[k] === p[k]))];
  }
  if (patch && typeof patch === 'object' && base && typeof base === 'object' && !Array.isArray(base)) {
    const out = { ...base };
    for (const [k, v] of Object.entries(patch)) { if (v === null) delete out[k]; else out[k] = mergePatch(base[k], v, k); }
    return out;
  }
  return patch;
}

/** `kubectl apply -k DIR`'s objects: the kustomization's resources (files, or directories with
 * their own kustomization), its patches applied to the object of the same kind and name. As
 * kustomize's loader, a resource directory equal to or above a kustomization being built (an
 * overlay inside its base's directory naming `../`) is refused: `cycle detected`. */
export function kustomize(dir, visited = []) {
  const root = resolve(dir);
  const above = visited.find((v) => v === root || v.startsWith(`${root}/`));
  if (above) throw new Error(`accumulating resources from '${root}': cycle detected: candidate root '${root}' contains visited root '${above}'`);
  const k = parseYaml(readFileSync(join(dir, 'kustomization.yaml'), 'utf8'));
  const objects = (k.resources ?? []).flatMap((r) => (statSync(join(dir, r)).isDirectory() ? kustomize(join(dir, r), [...visited, root])
    : parseAllDocuments(readFileSync(join(dir, r), 'utf8')).map((d) => d.toJS())));
  for (const { path } of k.patches ?? []) {
    for (const p of parseAllDocuments(readFileSync(join(dir, path), 'utf8')).map((d) => d.toJS())) {
      const i = objects.findIndex((o) => o.kind === p.kind && o.metadata.name === p.metadata.name);
      if (i < 0) throw new Error(`${path}: no ${p.kind} ${p.metadata.name} to patch`);
      objects[i] = mergePatch(objects[i], p);
    }
  }
  return objects;
}
