// The etcd password file and client key must be private: a readable one is reported with the fix.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { credentialFileWarning, credentialWarnings } from '../../src/adapters/credentials.js';

const dir = mkdtempSync(join(tmpdir(), 'weft-cred-'));
test.after.always(() => { rmSync(dir, { recursive: true, force: true }); });
const file = (name: string, mode: number): string => { const p = join(dir, name); writeFileSync(p, 'secret\n'); chmodSync(p, mode); return p; };

test('a password file readable by others is reported with its mode and the chmod 600 fix', async (t) => {
  const pw = file('pw-644', 0o644);
  const w = await credentialFileWarning('etcd.passwordFile', pw);
  t.like(w, { setting: 'etcd.passwordFile', file: pw, mode: 0o644 });
  t.is(w?.message, `etcd.passwordFile ${pw} is readable by group and others (mode 0644); fix: chmod 600 ${pw}`);
});

test('group-readable only says group; 0600 and 0400 are fine; a missing file is left to the etcd connection', async (t) => {
  t.regex((await credentialFileWarning('etcd.keyFile', file('key-640', 0o640)))?.message ?? '', /is readable by group \(mode 0640\); fix: chmod 600 /);
  t.is(await credentialFileWarning('etcd.keyFile', file('key-600', 0o600)), undefined);
  t.is(await credentialFileWarning('etcd.keyFile', file('key-400', 0o400)), undefined);
  t.is(await credentialFileWarning('etcd.passwordFile', join(dir, 'missing')), undefined);
});

test('the spec\'s password file and client key are both checked; the CA and certificate are public', async (t) => {
  const ws = await credentialWarnings({
    endpoints: ['https://192.0.2.1:2379'], prefix: '/p',
    caFile: file('ca-644', 0o644), certFile: file('cert-644', 0o644), keyFile: file('key2-604', 0o604), passwordFile: file('pw2-600', 0o600),
  });
  t.deepEqual(ws.map((w) => [w.setting, w.mode]), [['etcd.keyFile', 0o604]]);
  t.regex(ws[0]?.message ?? '', /is readable by others \(mode 0604\)/);
});
