// Log lines quote etcd data; each stays one parseable JSON line with no raw terminal controls.
import test from 'ava';
import { LOG_TEXT_CAP, jsonLogger } from '../../src/adapters/log.js';
import { STATUS_CAP, statusValue } from '../../src/adapters/systemd.js';

test('a log line escapes controls, bidi overrides and separators in the message and every field', (t) => {
  const lines: string[] = [];
  const log = jsonLogger({ write: (l) => lines.push(l) });
  log.warn('ignoring a malformed lease', {
    key: '/p/subnets/\u202e42',
    reason: 'BackendType "x\x9b2J\u2028y"',
    nested: { list: ['a\nb'] },
    n: 3n,
    at: new Date(0),
  });
  t.is(lines.length, 1);
  const line = lines[0] ?? '';
  t.is(line.indexOf('\n'), line.length - 1, 'one line');
  t.false(
    /[\u0080-\u009f\u2028\u202e]/.test(line),
    'no raw C1, separator or bidi control, even though JSON allows them',
  );
  const doc = JSON.parse(line) as Record<string, unknown>;
  t.like(doc, {
    level: 'warn',
    msg: 'ignoring a malformed lease',
    key: '/p/subnets/\\u202e42',
    reason: 'BackendType "x\\x9b2J\\u2028y"',
    nested: { list: ['a\\nb'] },
    n: '3',
    at: '1970-01-01T00:00:00.000Z',
  });
});

test('a log string is capped, so one hostile value cannot flood the journal', (t) => {
  const lines: string[] = [];
  jsonLogger({ write: (l) => lines.push(l) }).info('x', { v: 'y'.repeat(5000) });
  const v = (JSON.parse(lines[0] ?? '{}') as { v: string }).v;
  t.is(v, `${'y'.repeat(LOG_TEXT_CAP)}...[${5000 - LOG_TEXT_CAP} more chars]`);
});

test('a STATUS= value stays one assignment: a newline cannot forge READY=1 or WATCHDOG=1', (t) => {
  t.is(
    statusValue('leased 10.5.3.0/24; NOT READY: last reconcile failed: x\nREADY=1'),
    'leased 10.5.3.0/24; NOT READY: last reconcile failed: x\\nREADY=1',
  );
  t.true(statusValue('z'.repeat(2000)).startsWith('z'.repeat(STATUS_CAP)));
  t.true(statusValue('z'.repeat(2000)).endsWith(`...[${2000 - STATUS_CAP} more chars]`));
});
