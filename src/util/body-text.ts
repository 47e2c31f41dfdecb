// A request body's text as the API keeps it: the decoded string, or — for a body of ASCII bytes
// only, where a byte is a character — the bytes themselves, so that a 13 MB full sync is never
// decoded whole on the main thread (each stored object's span is decoded where it is written).
import { Buffer } from 'node:buffer';

/** A body's text: a string, or a Buffer holding ASCII bytes only (offsets are character offsets). */
export type BodyText = string | Buffer;

/** text[start, end) as a string. Throws for a span past the text's end — bytes handed over to
 * another thread (StateStore.stage) are empty here, and would read as an empty body. */
export function bodySlice(text: BodyText, start: number, end: number): string {
  if (end > text.length) throw new RangeError(`a body span [${start}, ${end}) past its text's ${text.length} characters (bytes handed over already?)`);
  return typeof text === 'string' ? text.slice(start, end) : text.toString('latin1', start, end);
}
