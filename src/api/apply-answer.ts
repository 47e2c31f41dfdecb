// An apply's answer as JSON text, its large part written while the forwarding workers apply the
// change. A full sync's answer lists every object (20k at 10k Services) and up to DIFF_LIST_MAX
// entries of each diff list: ~2 MB of JSON whose JSON.stringify (~10-15 ms, cold) came after the
// workers answered, on the apply's critical path — while the main thread had waited idle for them
// just before. The objects, the diff view and the warnings are final once the diff went to the
// workers (ControlPlaneCore.run's `prepare`); the rest (generation, times) is written at the end.
import type { AnswerParts, ApplyResult } from './controlplane.js';

/** From this many objects an answer's text is prepared ahead (a small answer: as it was). */
export const PREPARED_ANSWER_MIN_OBJECTS = 1000;

/** The answer's text prepared from its parts (their JSON), to be finished by answerText. */
export class PreparedAnswer {
  private constructor(private readonly parts: AnswerParts, private readonly json: string) {}

  /** The parts' JSON, written now; null for a small answer (not worth preparing). */
  static of(parts: AnswerParts): PreparedAnswer | null {
    if (parts.objects.length < PREPARED_ANSWER_MIN_OBJECTS) return null;
    return new PreparedAnswer(parts, `"objects":${JSON.stringify(parts.objects)},"diff":${JSON.stringify(parts.diff)},"warnings":${JSON.stringify(parts.warnings)}`);
  }

  /** `r` as JSON text — the same JSON as JSON.stringify(r), its members in the same order — or
   * null when `r` does not hold the prepared parts (then it is answered as an object). */
  text(r: ApplyResult): string | null {
    if (r.objects !== this.parts.objects || r.diff !== this.parts.diff || r.warnings !== this.parts.warnings) return null;
    const { dryRun, generation, objects: _o, diff: _d, warnings: _w, ...rest } = r;
    const tail = JSON.stringify(rest);
    return `{"dryRun":${JSON.stringify(dryRun)},"generation":${JSON.stringify(generation)},${this.json}${tail === '{}' ? '}' : `,${tail.slice(1)}`}`;
  }
}
