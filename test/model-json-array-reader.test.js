// The reader that parses an apply body while it arrives must answer exactly what parsing the whole
// text answers (or step aside), however the body is cut into chunks.
import test from 'ava';
import { JsonArrayReader } from '../dist/src/model/json-array-reader.js';
import { parseManifestSources } from '../dist/src/model/load.js';
import { MAX_DEPTH, MAX_OBJECT_BYTES } from '../dist/src/model/limits.js';
import { bodySlice } from '../dist/src/util/body-text.js';

const svc = (i, extra = {}) => ({ apiVersion: 'v1', kind: 'Service', metadata: { namespace: 'ns', name: `s${i}` }, spec: { clusterIP: `10.96.0.${i + 1}`, ports: [{ port: 80 }] }, ...extra });

/** The reader's answer for `text` cut into chunks of `size` bytes (and of 1 byte). */
function read(text, size) {
  const bytes = Buffer.from(text);
  const r = new JsonArrayReader(bytes.length);
  for (let i = 0; i < bytes.length; i += size) r.push(bytes.subarray(i, i + size));
  return r.finish();
}

function same(t, text, expectParsed) {
  const whole = (() => { try { return parseManifestSources(text); } catch (e) { return e; } })();
  for (const size of [1, 2, 7, 64, 1 << 20]) {
    const { text: got, parsed } = read(text, size);
    t.is(!!parsed, expectParsed, `parsed early, chunks of ${size}: ${text.slice(0, 60)}`);
    if (parsed) {
      t.is(got, undefined, 'no text of the whole body is made');
      t.false(whole instanceof Error);
      t.deepEqual(parsed.objs, whole.objs);
      if (!whole.texts) t.is(parsed.texts, null);
      else {
        // an ASCII body's texts are its bytes: every span decodes to the whole text's span
        t.true(Buffer.isBuffer(parsed.texts.text));
        t.deepEqual(parsed.texts.spans, whole.texts.spans);
        t.is(bodySlice(parsed.texts.text, 0, parsed.texts.text.length), text);
        for (let i = 0; i < parsed.texts.spans.length; i += 2) {
          t.is(bodySlice(parsed.texts.text, parsed.texts.spans[i], parsed.texts.spans[i + 1]), text.slice(whole.texts.spans[i], whole.texts.spans[i + 1]));
        }
      }
    } else t.is(got, text, `text, chunks of ${size}`);
  }
}

test('a JSON array of objects is parsed as it arrives, the same as the whole text, whatever the chunks', (t) => {
  same(t, JSON.stringify([svc(0), svc(1), svc(2)]), true);
  same(t, ` \n[ ${JSON.stringify(svc(0))} ,\r\n\t${JSON.stringify(svc(1, { x: 'a "quoted" \\ [brace} \\"' }))} ]\n `, true);
  same(t, '[]', true);
  same(t, JSON.stringify([svc(0, { deep: JSON.parse('['.repeat(MAX_DEPTH - 3) + ']'.repeat(MAX_DEPTH - 3)) })]), true);
});

test('a List (as wdp apply sends) is parsed as it arrives too: its items, whatever the order and spacing of its members', (t) => {
  same(t, JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [svc(0), svc(1)] }), true);
  same(t, JSON.stringify({ items: [svc(0)], kind: 'ServiceList', metadata: { resourceVersion: '7', note: 'items' } }), true);
  same(t, ` { "kind" : "List" , "items" : [ ${JSON.stringify(svc(0))} , ${JSON.stringify(svc(1))} ] , "x": {"items": 1} } `, true);
  same(t, JSON.stringify({ kind: 'List', items: [] }), true);
  same(t, JSON.stringify({ kind: 'List', items: [svc(0, { deep: JSON.parse('['.repeat(MAX_DEPTH - 4) + ']'.repeat(MAX_DEPTH - 4)) })] }), true);
});

test('every other body steps aside, so the whole-text parser gives its answer and its errors', (t) => {
  same(t, JSON.stringify(svc(0)), false); // one object
  same(t, JSON.stringify({ ...svc(0), items: [svc(1)] }), false); // an object with items, not a List
  same(t, JSON.stringify({ kind: 'List', items: [svc(0)], items2: 1 }).replace('"items2"', '"items"'), false); // items twice
  same(t, JSON.stringify({ kind: 'List', items: null }), false);
  same(t, JSON.stringify({ kind: 'List', items: [svc(0), [svc(1)]] }), false);
  same(t, JSON.stringify({ kind: 'List', items: [{ kind: 'List', items: [svc(0)] }] }), false);
  same(t, `{"kind": "List" "items": [${JSON.stringify(svc(0))}]}`, false); // no comma: the List's own syntax
  same(t, `{"kind": "List", "items": [${JSON.stringify(svc(0))}]} x`, false);
  same(t, JSON.stringify({ kind: 'List', items: [svc(0)], pad: 'x'.repeat(Math.ceil(MAX_OBJECT_BYTES / 5)) }), false);
  same(t, JSON.stringify({ kind: 'List', items: [svc(0, { deep: JSON.parse('['.repeat(MAX_DEPTH - 2) + ']'.repeat(MAX_DEPTH - 2)) })] }), false);
  same(t, JSON.stringify({ kind: 'List', m: JSON.parse('['.repeat(MAX_DEPTH) + ']'.repeat(MAX_DEPTH)), items: [svc(0)] }), false);
  same(t, JSON.stringify([{ kind: 'ServiceList', items: [svc(0)] }]), false);
  same(t, JSON.stringify([svc(0), null]), false);
  same(t, JSON.stringify([[svc(0)]]), false);
  same(t, JSON.stringify([svc(0), 'x']), false);
  same(t, `[${JSON.stringify(svc(0))} ${JSON.stringify(svc(1))}]`, false); // no comma
  same(t, `[${JSON.stringify(svc(0))},]`, false); // trailing comma
  same(t, `[${JSON.stringify(svc(0))}] x`, false); // text after
  same(t, `[${JSON.stringify(svc(0))}`, false); // unterminated
  same(t, `[{"kind": "Service", "a": 1,}]`, false); // bad element
  same(t, '- kind: Service\n', false); // YAML
  same(t, `\ufeff[${JSON.stringify(svc(0))}]`, false); // a BOM: not JSON whitespace
  same(t, JSON.stringify([svc(0, { note: 'caf\u00e9 \u2603' })]), false); // not ASCII: spans would be bytes
  same(t, JSON.stringify([svc(0, { deep: JSON.parse('['.repeat(MAX_DEPTH) + ']'.repeat(MAX_DEPTH)) })]), false);
  same(t, JSON.stringify([svc(0, { big: 'x'.repeat(Math.ceil(MAX_OBJECT_BYTES / 5)) })]), false);
});

test('the nesting limit holds to the level inside an element, and escapes hold at every chunk boundary', (t) => {
  const nest = (n) => JSON.parse('['.repeat(n) + ']'.repeat(n));
  // the root array and the Service are 2 levels, n arrays n more: MAX_DEPTH exactly is parsed on the way, one more
  // steps aside (and the whole text answers its 400)
  same(t, JSON.stringify([svc(0), svc(1, { deep: nest(MAX_DEPTH - 2) })]), true);
  same(t, JSON.stringify([svc(0), svc(1, { deep: nest(MAX_DEPTH - 1) })]), false);
  // strings ending in escaped backslashes and quotes, brackets in strings, an element closing at the last byte
  same(t, JSON.stringify([svc(0, { a: 'x\\', b: '\\"}]', c: ['\\', '"', '{[']}), svc(1)]), true);
});

test('a byte that is not UTF-8 parses as in the whole text (one replacement character for it: the spans hold)', (t) => {
  const good = Buffer.from(JSON.stringify([svc(0, { note: 'AB' })]));
  good[good.indexOf('AB')] = 0xff;
  const r = new JsonArrayReader(good.length);
  r.push(good);
  const { parsed } = r.finish();
  const text = good.toString('utf8');
  t.not(parsed, null); // one byte, one character: the spans hold, and the element was decoded as the text was
  t.deepEqual(parsed.objs, parseManifestSources(text).objs);
  t.deepEqual(parsed.texts, parseManifestSources(text).texts); // over the decoded text (not ASCII: not the bytes)
});

test('a reader that only collects answers the text', (t) => {
  const text = JSON.stringify([svc(0)]);
  const r = new JsonArrayReader(0, false);
  r.push(Buffer.from(text.slice(0, 5))); r.push(Buffer.from(text.slice(5)));
  t.deepEqual(r.finish(), { text, parsed: null });
});

test('a List whose other member is "items" spelled with an escape steps aside: JSON.parse takes the last "items", whatever its spelling', (t) => {
  const items = (o) => JSON.stringify(o);
  // the escaped key after the plain one: the whole text's items are [svc(1)] (or [])
  same(t, `{"kind":"List","items":[${items(svc(0))}],"ite\\u006dms":[${items(svc(1))}]}`, false);
  same(t, `{"kind":"List","items":[${items(svc(0))}],"ite\\u006dms":[]}`, false);
  same(t, `{"kind":"List","items":[${items(svc(0))}],"\\u0069tems":null}`, false);
  // before it: the plain one is the last, as the reader took it, but nothing needs the reader here
  same(t, `{"kind":"List","ite\\u006dms":[${items(svc(1))}],"items":[${items(svc(0))}]}`, false);
});

test('an onObject that throws turns the reader off instead of throwing out of push (a data listener: that would end the process)', (t) => {
  const text = JSON.stringify([svc(0), svc(1)]);
  const r = new JsonArrayReader(0, true, () => { throw new Error('validator bug'); });
  t.notThrows(() => { r.push(Buffer.from(text.slice(0, 80))); r.push(Buffer.from(text.slice(80))); });
  t.deepEqual(r.finish(), { text, parsed: null }); // the whole text is parsed by the handler, which answers the error
});
