import test from 'ava';
import {
  clashMessage,
  decodePresence,
  encodePresence,
  judgeHolder,
  presenceBorneOut,
} from '../../src/core/fleet/presence.js';

const rec = {
  bootID: 'boot-a',
  instance: 'i1',
  hostname: 'vm1',
  publicIP: '192.0.2.1',
  since: '2026-12-02T10:00:00.000Z',
};

test('a presence record round-trips; anything else is unreadable, never a throw', (t) => {
  t.deepEqual(decodePresence(encodePresence(rec)), rec);
  for (const bad of [
    '',
    'null',
    '[]',
    '{"bootID":1}',
    '{"bootID":"b"}',
    `{"bootID":"b","instance":"${'x'.repeat(2000)}"}`,
    '{'.repeat(5000),
  ]) {
    t.is(decodePresence(bad), undefined, bad.slice(0, 40));
  }
});

test('a record of this very boot is an earlier weft of this host: take it at once', (t) => {
  t.is(judgeHolder(rec, 'boot-a', []), 'take');
  t.is(judgeHolder(rec, 'boot-a', [14, 15]), 'take');
});

test('another boot: a lease kept alive is a live clone; one that runs out was left by a dead process', (t) => {
  t.is(judgeHolder(rec, 'boot-b', [14]), 'wait');
  t.is(judgeHolder(rec, 'boot-b', [14, 13, 12]), 'wait', 'counting down: not known yet');
  t.is(judgeHolder(rec, 'boot-b', [14, 13, 15]), 'clash', 'the TTL went back up: someone keeps it alive');
  t.is(judgeHolder(rec, 'boot-b', [3, 2, 1, -1]), 'take', 'the lease ran out');
  t.is(judgeHolder(undefined, 'boot-b', [5, 4]), 'wait', 'an unreadable record is judged by its lease like any other');
  t.is(judgeHolder(undefined, 'boot-b', [-1]), 'take');
});

test('the clash message names the other host and the fix', (t) => {
  const m = clashMessage('abc', rec, 'abc-123');
  t.regex(m, /vm1 \(public IP 192\.0\.2\.1/);
  t.regex(m, /systemd-machine-id-setup/);
  t.regex(m, /WEFT_HOST_ID/);
  t.regex(m, /abc-123/);
});

test('a live record is believed only when a lease of the identity bears it out: an owner record with its public IP that agrees with the lease value', (t) => {
  const lease = (publicIP: string, agrees: boolean) => ({
    owner: { hostID: 'h', hostname: 'vm1', publicIP },
    ...(agrees ? { ownerAgrees: true as const } : {}),
  });
  t.true(presenceBorneOut(rec, [lease('192.0.2.1', true)]));
  t.false(presenceBorneOut(rec, []), 'no lease: forged (or not leased yet: the caller waits)');
  t.false(presenceBorneOut(rec, [lease('192.0.2.9', true)]), "the identity's lease is at another address");
  t.false(
    presenceBorneOut(rec, [lease('192.0.2.1', false)]),
    'an owner record that disagrees with its value proves nothing',
  );
  t.false(presenceBorneOut(undefined, [lease('192.0.2.1', true)]), 'an unreadable record');
  t.false(presenceBorneOut({ ...rec, publicIP: 'x' }, [lease('192.0.2.1', true)]));
});
