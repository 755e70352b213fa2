// Untrusted etcd text shown on a terminal, in a single-line field, or in JSON.
import test from 'ava';
import fc from 'fast-check';
import { capText, safeLines, safeText, terminalSafeJson } from '../../src/core/base/escape.js';

test('safeText leaves ordinary text alone, including non-ASCII letters', (t) => {
  for (const s of ['vxlan', 'host-gw', '198.18.5.0/24', 'web-01.example', 'Zürich ☃ 東京', 'a\\nb'])
    t.is(safeText(s), s);
});

test('safeText escapes C0, DEL and C1 controls visibly', (t) => {
  t.is(safeText('a\nb\rc\td'), 'a\\nb\\rc\\td');
  t.is(safeText('\x1b[31mred\x1b[0m'), '\\x1b[31mred\\x1b[0m');
  t.is(safeText('\0\x07\x7f'), '\\x00\\x07\\x7f');
  t.is(safeText('\x9b2J'), '\\x9b2J', 'the 8-bit CSI');
  t.is(safeText('\x85'), '\\x85', 'NEL');
});

test('safeText escapes the line and paragraph separators and the bidi controls', (t) => {
  t.is(safeText('a\u2028b\u2029c'), 'a\\u2028b\\u2029c');
  t.is(safeText('evil\u202Etxt.exe'), 'evil\\u202etxt.exe');
  for (const c of [
    '\u202A',
    '\u202B',
    '\u202C',
    '\u202D',
    '\u2066',
    '\u2067',
    '\u2068',
    '\u2069',
    '\u200E',
    '\u200F',
    '\u061C',
  ]) {
    t.is(safeText(`x${c}y`), `x\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}y`);
  }
});

test('safeText caps the length and says how much was cut', (t) => {
  t.is(safeText('a'.repeat(256)), 'a'.repeat(256));
  t.is(safeText('a'.repeat(300)), `${'a'.repeat(256)}...[44 more chars]`);
  t.is(safeText('abcdef', 3), 'abc...[3 more chars]');
  // An escape never straddles the cap, and the count is of original characters.
  t.is(safeText('ab\ncd', 3), 'ab...[3 more chars]');
  // Astral characters are never split into half a surrogate pair.
  t.is(safeText('😀😀😀', 4), '😀😀...[1 more chars]');
});

test('safeText output never holds a character a terminal interprets, and stays within the cap', (t) => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 600 }), fc.integer({ min: 8, max: 300 }), (s, cap) => {
      const out = safeText(s, cap);
      // eslint-disable-next-line no-control-regex
      if (/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/u.test(out)) return false;
      const marker = /\.\.\.\[\d+ more chars\]$/.exec(out);
      return (marker ? out.length - marker[0].length : out.length) <= cap;
    }),
  );
  t.pass();
});

test('capText only cuts (JSON escapes the rest)', (t) => {
  t.is(capText('a\nb'), 'a\nb');
  t.is(capText('x'.repeat(257)), `${'x'.repeat(256)}...[1 more chars]`);
  t.is(capText('short', 2), 'sh...[3 more chars]');
});

test('safeLines keeps lines apart, escapes each, and bounds their number', (t) => {
  t.deepEqual(safeLines('{\n  "Network": "10.0.0.0/8"\r\n}', 10), ['{', '  "Network": "10.0.0.0/8"', '}']);
  t.deepEqual(safeLines('a\x1b[2Jb', 10), ['a\\x1b[2Jb']);
  t.deepEqual(safeLines('1\n2\n3\n4', 2), ['1', '2', '...[2 more lines]']);
});

test('terminalSafeJson: the same JSON value, with no control, separator or bidi character left raw', (t) => {
  t.is(
    terminalSafeJson(JSON.stringify({ a: '\x9b2J\u202e\u2028\x7f', b: 'Zürich' })),
    '{"a":"\\u009b2J\\u202e\\u2028\\u007f","b":"Zürich"}',
  );
  fc.assert(
    fc.property(fc.jsonValue(), fc.string({ unit: 'binary' }), (v, s) => {
      const doc = { v, s, [s]: s };
      const flat = terminalSafeJson(JSON.stringify(doc));
      const indented = terminalSafeJson(JSON.stringify(doc, null, 2));
      // eslint-disable-next-line no-control-regex
      const raw = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/u;
      return (
        !raw.test(flat) &&
        !raw.test(indented) &&
        JSON.stringify(JSON.parse(flat)) === JSON.stringify(doc) &&
        JSON.stringify(JSON.parse(indented)) === JSON.stringify(doc)
      );
    }),
    { numRuns: 500 },
  );
});
