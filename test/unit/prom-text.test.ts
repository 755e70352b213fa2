// The Prometheus text format writer (core/health/prom-text.ts): escaping, values, label order,
// histograms (cumulative buckets, +Inf, _sum, _count) and families without samples.
// `promtool check metrics` reads a whole /metrics page in test/integration/monitoring.test.ts.
import test from 'ava';
import fc from 'fast-check';
import {
  escapeHelp,
  escapeLabelValue,
  formatExposition,
  formatFamily,
  formatValue,
} from '../../src/core/health/prom-text.js';

test('values: integers plainly, +Inf, -Inf, NaN, other numbers as JavaScript writes them', (t) => {
  t.is(formatValue(0), '0');
  t.is(formatValue(-0), '0');
  t.is(formatValue(42), '42');
  t.is(formatValue(-7), '-7');
  t.is(formatValue(54722560), '54722560');
  t.is(formatValue(86.4), '86.4');
  t.is(formatValue(0.000218554), '0.000218554');
  t.is(formatValue(5.11e-7), '5.11e-7');
  t.is(formatValue(Infinity), '+Inf');
  t.is(formatValue(-Infinity), '-Inf');
  t.is(formatValue(NaN), 'NaN');
});

test('HELP escapes backslash and newline, and nothing else', (t) => {
  t.is(escapeHelp('plain "quoted" text'), 'plain "quoted" text');
  t.is(escapeHelp('a\\b\nc'), 'a\\\\b\\nc');
  t.is(
    formatFamily({ name: 'x', help: 'line one\nline \\two', type: 'gauge', samples: [] }),
    '# HELP x line one\\nline \\\\two\n# TYPE x gauge',
  );
});

test('label values escape backslash, double quote and newline', (t) => {
  t.is(escapeLabelValue('10.5.3.0/24'), '10.5.3.0/24');
  t.is(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
  t.is(escapeLabelValue('\\n'), '\\\\n', 'a backslash then n is not a newline');
  t.is(
    formatFamily({
      name: 'weft_drift_repairs_total',
      help: 'h',
      type: 'counter',
      samples: [{ labels: { kind: 'we"ird\\k\nind' }, value: 1 }],
    }),
    '# HELP weft_drift_repairs_total h\n# TYPE weft_drift_repairs_total counter\nweft_drift_repairs_total{kind="we\\"ird\\\\k\\nind"} 1',
  );
});

/** The reader's side of a label value (the format's three escapes). */
const unescapeLabelValue = (s: string): string => s.replace(/\\(\\|"|n)/g, (_m, c: string) => (c === 'n' ? '\n' : c));

test('any label value survives escaping: one line, no bare quote, read back as written', (t) => {
  // The characters that matter, often; any other code point now and then.
  const unit = fc.oneof(
    fc.constantFrom('\\', '"', '\n', 'n', '\r', 'é'),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
  );
  fc.assert(
    fc.property(fc.string({ unit }), (v) => {
      const e = escapeLabelValue(v);
      return !e.includes('\n') && !/(^|[^\\])(\\\\)*"/.test(e) && unescapeLabelValue(e) === v;
    }),
  );
  t.pass();
});

test('labels are written in the order given, not sorted', (t) => {
  const text = formatFamily({
    name: 'weft_info',
    help: 'h',
    type: 'gauge',
    samples: [{ labels: { version: '1', backend: 'vxlan', subnet: '', ipv6_subnet: '' }, value: 1 }],
  });
  t.is(text.split('\n')[2], 'weft_info{version="1",backend="vxlan",subnet="",ipv6_subnet=""} 1');
  const z = formatFamily({
    name: 'x',
    help: 'h',
    type: 'gauge',
    samples: [{ labels: { z: '1', a: '2', m: '3' }, value: 0 }],
  });
  t.is(z.split('\n')[2], 'x{z="1",a="2",m="3"} 0');
});

test('samples without labels have no braces; several samples keep their order', (t) => {
  t.is(
    formatFamily({ name: 'weft_ready', help: '1 when /readyz answers 200', type: 'gauge', samples: [{ value: 1 }] }),
    '# HELP weft_ready 1 when /readyz answers 200\n# TYPE weft_ready gauge\nweft_ready 1',
  );
  t.is(
    formatFamily({
      name: 'r_total',
      help: 'h',
      type: 'counter',
      samples: [
        { labels: { result: 'ok' }, value: 4 },
        { labels: { result: 'failed' }, value: 1 },
        { labels: {}, value: 2 },
      ],
    }),
    '# HELP r_total h\n# TYPE r_total counter\nr_total{result="ok"} 4\nr_total{result="failed"} 1\nr_total 2',
  );
});

test('a family with no samples is its HELP and TYPE lines only', (t) => {
  t.is(
    formatFamily({ name: 'weft_lease_expiry_seconds', help: 'seconds', type: 'gauge', samples: [] }),
    '# HELP weft_lease_expiry_seconds seconds\n# TYPE weft_lease_expiry_seconds gauge',
  );
  t.is(formatFamily({ name: 'h', help: 'x', type: 'histogram', samples: [] }), '# HELP h x\n# TYPE h histogram');
});

test('histograms: cumulative buckets, le written like prom-client, +Inf equal to the count, then _sum and _count', (t) => {
  const text = formatFamily({
    name: 'weft_reconcile_duration_seconds',
    help: 'duration of reconcile passes',
    type: 'histogram',
    samples: [{ bounds: [0.001, 0.005, 0.01, 2.5, 10], counts: [1, 1, 0, 3, 0, 2], sum: 20.0285, count: 7 }],
  });
  t.is(
    text,
    [
      '# HELP weft_reconcile_duration_seconds duration of reconcile passes',
      '# TYPE weft_reconcile_duration_seconds histogram',
      'weft_reconcile_duration_seconds_bucket{le="0.001"} 1',
      'weft_reconcile_duration_seconds_bucket{le="0.005"} 2',
      'weft_reconcile_duration_seconds_bucket{le="0.01"} 2',
      'weft_reconcile_duration_seconds_bucket{le="2.5"} 5',
      'weft_reconcile_duration_seconds_bucket{le="10"} 5',
      'weft_reconcile_duration_seconds_bucket{le="+Inf"} 7',
      'weft_reconcile_duration_seconds_sum 20.0285',
      'weft_reconcile_duration_seconds_count 7',
    ].join('\n'),
  );
});

test('histograms: a series with labels keeps them, le last; an empty histogram is all zeros', (t) => {
  const text = formatFamily({
    name: 'h_seconds',
    help: 'h',
    type: 'histogram',
    samples: [{ labels: { op: 'a"b' }, bounds: [1], counts: [0, 0], sum: 0, count: 0 }],
  });
  t.deepEqual(text.split('\n').slice(2), [
    'h_seconds_bucket{op="a\\"b",le="1"} 0',
    'h_seconds_bucket{op="a\\"b",le="+Inf"} 0',
    'h_seconds_sum{op="a\\"b"} 0',
    'h_seconds_count{op="a\\"b"} 0',
  ]);
});

test('histogram buckets never decrease and end at the count, whatever was observed', (t) => {
  const bounds = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
  fc.assert(
    fc.property(fc.array(fc.nat(1000), { minLength: bounds.length + 1, maxLength: bounds.length + 1 }), (counts) => {
      const count = counts.reduce((a, b) => a + b, 0);
      const lines = formatFamily({
        name: 'h',
        help: 'h',
        type: 'histogram',
        samples: [{ bounds, counts, sum: 0, count }],
      }).split('\n');
      const cumulative = lines.filter((l) => l.startsWith('h_bucket')).map((l) => Number(l.split(' ')[1]));
      return (
        cumulative.length === bounds.length + 1 &&
        cumulative.every((v, i) => i === 0 || v >= (cumulative[i - 1] ?? 0)) &&
        cumulative.at(-1) === count
      );
    }),
  );
  t.pass();
});

test('an exposition: families in the order given, a blank line between, one final newline', (t) => {
  t.is(
    formatExposition([
      { name: 'a', help: 'x', type: 'gauge', samples: [{ value: 1 }] },
      { name: 'b_total', help: 'y', type: 'counter', samples: [] },
      { name: 'c', help: 'z', type: 'gauge', samples: [{ value: NaN }] },
    ]),
    '# HELP a x\n# TYPE a gauge\na 1\n\n# HELP b_total y\n# TYPE b_total counter\n\n# HELP c z\n# TYPE c gauge\nc NaN\n',
  );
});
