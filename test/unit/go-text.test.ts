// Text read from etcd as flanneld (Go) holds it: invalid UTF-8 replaced byte by byte, sizes in
// stored bytes, strings.ToLower's simple per-rune mapping. The expected values were checked
// against Go 1.19's encoding/json and strings.ToLower (a throwaway program; not in the repo).
import test from 'ava';
import { goToLower, storedByteLength, storedText } from '../../src/core/flannel/go-text.js';
import { parseJson } from '../../src/core/flannel/gojson.js';
import { rng } from '../helpers/rng.js';

/** The value Go's json.Unmarshal gives a string field holding these stored bytes. */
const goString = (bytes: readonly number[]): string => {
  const doc = parseJson(storedText(Buffer.from([0x22, ...bytes, 0x22])), { maxBytes: 1 << 20, maxDepth: 4 });
  return doc.ok && doc.value.kind === 'string'
    ? doc.value.value
    : `(not a string: ${doc.ok ? doc.value.kind : doc.reason})`;
};

test('invalid UTF-8 in a JSON string: one U+FFFD per byte, as Go (not per sequence, as Buffer.toString)', (t) => {
  const cases: [number[], string][] = [
    [[0xe2, 0x82], '\ufffd\ufffd'], // a truncated 3-byte sequence: Node gives one U+FFFD
    [[0xf0, 0x9f, 0x98], '\ufffd\ufffd\ufffd'], // a truncated 4-byte one
    [[0xed, 0xa0, 0x80], '\ufffd\ufffd\ufffd'], // an encoded surrogate
    [[0xc0, 0xaf], '\ufffd\ufffd'], // overlong
    [[0xf4, 0x90, 0x80, 0x80], '\ufffd\ufffd\ufffd\ufffd'], // above U+10FFFF
    [[0xff, 0x41, 0x80], '\ufffdA\ufffd'],
    [[0xf0, 0x9f, 0x98, 0x80, 0xef, 0xbf, 0xbd], '\u{1f600}\ufffd'], // valid runes, U+FFFD itself included
    [[0xe2, 0x82, 0xac], '€'],
  ];
  for (const [bytes, want] of cases) t.is(goString(bytes), want, Buffer.from(bytes).toString('hex'));
  t.is(Buffer.from([0xe2, 0x82]).toString('utf8'), '\ufffd', 'the old reading: one U+FFFD for the sequence');
});

test('stored text loses nothing: valid UTF-8 reads as Node reads it, and its size is the stored size, whatever the bytes', (t) => {
  for (const s of ['', 'plain', '{"PublicIP":"192.0.2.1"}', 'é€\u{1f480}\u{1f600}', '\ufeff{}']) {
    const b = Buffer.from(s, 'utf8');
    t.is(storedText(b), b.toString('utf8'));
    t.is(storedByteLength(storedText(b)), b.length);
  }
  const next = rng(28);
  for (let i = 0; i < 2000; i++) {
    // Mostly bytes that start or continue multi-byte sequences, so that valid and invalid mix.
    const bytes = Buffer.from(Array.from({ length: next(24) }, () => (next(4) === 0 ? next(0x80) : 0x80 + next(0x80))));
    const text = storedText(bytes);
    t.is(storedByteLength(text), bytes.length, bytes.toString('hex'));
    // Re-encoding what was valid gives the same bytes back; each kept byte is U+DC00 + the byte.
    const back = Buffer.from(
      Array.from(text).flatMap((c) => {
        const cp = c.codePointAt(0) ?? 0;
        return cp >= 0xdc80 && cp <= 0xdcff ? [cp - 0xdc00] : [...Buffer.from(c, 'utf8')];
      }),
    );
    t.deepEqual(back, bytes);
  }
});

test('a size limit counts stored bytes: 3,000 bytes of invalid UTF-8 fit 4 KiB (they counted 9,000)', (t) => {
  const text = storedText(Buffer.concat([Buffer.from('{"X":"'), Buffer.alloc(3000, 0xff), Buffer.from('"}')]));
  const r = parseJson(text, { maxBytes: 4096, maxDepth: 32 });
  t.true(r.ok, r.ok ? '' : r.reason);
  const over = parseJson(
    storedText(Buffer.concat([Buffer.from('{"X":"'), Buffer.alloc(4089, 0x80), Buffer.from('"}')])),
    { maxBytes: 4096, maxDepth: 32 },
  );
  t.false(over.ok);
  if (!over.ok) t.is(over.reason, 'value is 4,097 bytes, over the 4,096-byte limit');
});

test("Go's strings.ToLower: per code point, the simple mapping (İ is i, Σ is always σ), unlike toLowerCase", (t) => {
  t.is(goToLower('wİreguard'), 'wireguard');
  t.is('wİreguard'.toLowerCase(), 'wi\u0307reguard', "JavaScript's full mapping adds a combining dot");
  t.is(goToLower('ΣΑΣ'), 'σασ');
  t.is('ΣΑΣ'.toLowerCase(), 'σας', "JavaScript's final sigma");
  t.is(goToLower('HOST-GW'), 'host-gw');
  t.is(goToLower('VXLAN\u212a'), 'vxlank', 'the Kelvin sign lower-cases to k in both');
  t.is(goToLower('\u{10400}x'), '\u{10428}x', 'astral letters');
  t.is(goToLower('vxlan\ufffd'), 'vxlan\ufffd');
});
