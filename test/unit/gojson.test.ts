// The Go-faithful JSON reader (src/core/flannel/gojson.ts): limits, tokens, and encoding/json's struct rules.
import test from 'ava';
import fc from 'fast-check';
import { type Decoded, compactJson, decodeStruct, parseJson, unmarshal } from '../../src/core/flannel/gojson.js';

const BIG = { maxBytes: 1 << 20, maxDepth: 100 };
const tree = (s: string) => {
  const r = parseJson(s, BIG);
  if (!r.ok) throw new Error(r.reason);
  return r.value;
};

test('limits: size in UTF-8 bytes, then depth, each with a short reason; nothing thrown', (t) => {
  t.deepEqual(parseJson(`"${'é'.repeat(3000)}"`, { maxBytes: 4096, maxDepth: 32 }), {
    ok: false,
    reason: 'value is 6,002 bytes, over the 4,096-byte limit',
  });
  t.deepEqual(parseJson(`${'['.repeat(33)}${']'.repeat(33)}`, { maxBytes: 4096, maxDepth: 32 }), {
    ok: false,
    reason: 'invalid JSON at offset 32: nested deeper than 32 levels',
  });
  t.true(parseJson(`${'['.repeat(32)}${']'.repeat(32)}`, { maxBytes: 4096, maxDepth: 32 }).ok);
  const deep = `${'['.repeat(100000)}${']'.repeat(100000)}`;
  t.false(parseJson(deep, { maxBytes: 1e9, maxDepth: 1e9 }).ok, 'the depth is capped at 1000 whatever the caller asks');
  t.deepEqual(parseJson('{"a":1,}', BIG), { ok: false, reason: 'invalid JSON at offset 7: expected a string key' });
  t.deepEqual(parseJson('', BIG), { ok: false, reason: 'invalid JSON at offset 0: unexpected end of input' });
});

test('tokens keep their source: numbers as written, strings raw and decoded, members in order with duplicates', (t) => {
  const v = tree('{"a" : 2.6e1, "s":"x\\u0041\\/", "a":-0, "b":[true,null]}');
  t.is(v.kind, 'object');
  if (v.kind !== 'object') return;
  t.deepEqual(
    v.members.map((m) => m.key),
    ['a', 's', 'a', 'b'],
  );
  t.deepEqual(v.members[0]?.value, { kind: 'number', raw: '2.6e1' });
  t.deepEqual(v.members[1]?.value, { kind: 'string', raw: 'x\\u0041\\/', value: 'xA/' });
  t.is(compactJson(v), '{"a":2.6e1,"s":"x\\u0041\\/","a":-0,"b":[true,null]}', 'compact keeps every token as written');
});

test('strings decode as Go unquote does: a bad surrogate escape becomes U+FFFD', (t) => {
  const s = (json: string) => {
    const v = tree(json);
    return v.kind === 'string' ? v.value : undefined;
  };
  t.is(s('"\\ud83d\\ude00"'), '😀');
  t.is(s('"\\ud83d"'), '\ufffd');
  t.is(s('"\\ude00\\ud83d"'), '\ufffd\ufffd');
  t.is(s('"\\ud83dx"'), '\ufffdx');
  t.is(s('"a\ud800b"'), 'a\ufffdb', 'a lone surrogate in the text (invalid UTF-8 for Go) too');
});

test('property: the parser accepts exactly what JSON.parse accepts, and compaction keeps the value', (t) => {
  const text = fc.oneof(
    fc.json({ depthSize: 'small' }),
    fc.string(),
    fc.json().map((j) => j.replace(/[,:]/, ' ')),
  );
  fc.assert(
    fc.property(text, (s) => {
      let parsed: unknown;
      let valid = true;
      try {
        parsed = JSON.parse(s);
      } catch {
        valid = false;
      }
      const r = parseJson(s, BIG);
      if (r.ok !== valid) return false;
      return !r.ok || JSON.stringify(JSON.parse(compactJson(r.value))) === JSON.stringify(parsed);
    }),
    { numRuns: 3000 },
  );
  t.pass();
});

const FIELDS = {
  Name: { kind: 'string' },
  Len: { kind: 'uint' },
  Small: { kind: 'uint8' },
  Delta: { kind: 'int' },
  On: { kind: 'bool' },
  Raw: { kind: 'raw' },
  Addr: {
    kind: (tok: string): Decoded<string> =>
      tok === '"ok"' ? { ok: true, value: 'OK' } : { ok: false, reason: `bad ${tok}` },
  },
  Ptr: { kind: (tok: string): Decoded<string> => ({ ok: true, value: tok }), pointer: true },
} as const;
const dec = (json: string) => decodeStruct(tree(json), 'pkg.T', FIELDS);

test('decodeStruct: Go field matching (exact, then folded with ſ and K), last duplicate wins, unknown keys ignored', (t) => {
  t.deepEqual(dec('{"name":"a","NAME":"b","Other":1}'), { ok: true, value: { Name: 'b' } });
  t.deepEqual(dec('{"ſmall":7}'), { ok: true, value: { Small: 7n } });
  t.deepEqual(dec('{"\\u017fmall":7}'), { ok: true, value: { Small: 7n } }, 'keys are unescaped before matching');
  t.deepEqual(dec('{"\u212aey":1}'), { ok: true, value: {} }, 'Kelvin sign folds to K; no field Key');
  t.deepEqual(dec('null'), { ok: true, value: {} });
  t.like(dec('[]'), { ok: false, reason: 'json: cannot unmarshal array into Go value of type pkg.T' });
});

test('decodeStruct: null is a no-op for values, nil for pointers, and handed to Unmarshalers and RawMessage', (t) => {
  t.deepEqual(dec('{"Len":24,"Len":null,"On":null,"Name":null}'), { ok: true, value: { Len: 24n } });
  t.deepEqual(dec('{"Ptr":"x","Ptr":null}'), { ok: true, value: { Ptr: null } });
  t.deepEqual(dec('{"Raw":null}'), { ok: true, value: { Raw: { kind: 'null' } } });
  t.like(dec('{"Addr":null}'), { ok: false, reason: 'T.Addr null: bad null', field: 'Addr' });
  t.deepEqual(dec('{"Addr":"ok"}'), { ok: true, value: { Addr: 'OK' } });
  t.like(dec('{"Addr":"o\\u006b"}'), { ok: false }, 'an Unmarshaler gets the raw token, escapes not decoded');
});

test('decodeStruct: integers parse the raw token (strconv), within the kind', (t) => {
  for (const bad of ['26.0', '2.6e1', '1e2', '-0', '-1', '18446744073709551616', '"24"', 'true']) {
    t.false(dec(`{"Len":${bad}}`).ok, bad);
  }
  t.deepEqual(dec('{"Len":18446744073709551615}'), { ok: true, value: { Len: 18446744073709551615n } });
  t.deepEqual(dec('{"Delta":-0,"Small":255}'), { ok: true, value: { Delta: 0n, Small: 255n } });
  t.false(dec('{"Small":256}').ok);
  t.false(dec('{"Delta":9223372036854775808}').ok);
  t.like(dec('{"Len":26.0}'), {
    ok: false,
    reason: 'json: cannot unmarshal number 26.0 into Go struct field T.Len of type uint',
  });
});

test('decodeStruct: a type error in an earlier duplicate fails the decode even when a later one is fine', (t) => {
  t.like(dec('{"On":"yes","On":true}'), {
    ok: false,
    reason: 'json: cannot unmarshal string into Go struct field T.On of type bool',
  });
  t.like(dec('{"Addr":"no","Addr":"ok"}'), { ok: false });
  t.like(unmarshal('{"On":true}', { maxBytes: 5, maxDepth: 1 }, 'pkg.T', FIELDS), {
    ok: false,
    reason: 'value is 11 bytes, over the 5-byte limit',
  });
});
