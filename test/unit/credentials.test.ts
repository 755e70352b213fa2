// The etcd password file and client key must be private: a readable one is reported with the fix.
// The program weft runs as root (host.onOutputsChanged) and the WireGuard PSK file are refused
// when others could change them (or read the PSK).
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import {
  credentialFileWarning,
  credentialWarnings,
  privilegedFileProblem,
  privilegedFileProblems,
} from '../../src/adapters/credentials.js';

const dir = mkdtempSync(join(tmpdir(), 'weft-cred-'));
test.after.always(() => {
  rmSync(dir, { recursive: true, force: true });
});
const file = (name: string, mode: number): string => {
  const p = join(dir, name);
  writeFileSync(p, 'secret\n');
  chmodSync(p, mode);
  return p;
};

test('a password file readable by others is reported with its mode and the chmod 600 fix', async (t) => {
  const pw = file('pw-644', 0o644);
  const w = await credentialFileWarning('etcd.passwordFile', pw);
  t.like(w, { setting: 'etcd.passwordFile', file: pw, mode: 0o644 });
  t.is(w?.message, `etcd.passwordFile ${pw} is readable by group and others (mode 0644); fix: chmod 600 ${pw}`);
});

test('group-readable only says group; 0600 and 0400 are fine; a missing file is left to the etcd connection', async (t) => {
  t.regex(
    (await credentialFileWarning('etcd.keyFile', file('key-640', 0o640)))?.message ?? '',
    /is readable by group \(mode 0640\); fix: chmod 600 /,
  );
  t.is(await credentialFileWarning('etcd.keyFile', file('key-600', 0o600)), undefined);
  t.is(await credentialFileWarning('etcd.keyFile', file('key-400', 0o400)), undefined);
  t.is(await credentialFileWarning('etcd.passwordFile', join(dir, 'missing')), undefined);
});

test("the spec's password file and client key are both checked; the CA and certificate are public", async (t) => {
  const ws = await credentialWarnings({
    endpoints: ['https://192.0.2.1:2379'],
    prefix: '/p',
    caFile: file('ca-644', 0o644),
    certFile: file('cert-644', 0o644),
    keyFile: file('key2-604', 0o604),
    passwordFile: file('pw2-600', 0o600),
  });
  t.deepEqual(
    ws.map((w) => [w.setting, w.mode]),
    [['etcd.keyFile', 0o604]],
  );
  t.regex(ws[0]?.message ?? '', /is readable by others \(mode 0604\)/);
});

const HOOK = 'host.onOutputsChanged';
const PSK = 'host.wireguardPSKFile';

test('the hook: a root-owned program nobody else can write is fine; group- or others-writable is refused with the fix', async (t) => {
  t.is(await privilegedFileProblem(HOOK, file('hook-755', 0o755), { secret: false }), undefined);
  const g = file('hook-775', 0o775);
  t.is(
    await privilegedFileProblem(HOOK, g, { secret: false }),
    `host.onOutputsChanged ${g} is writable by group (mode 0775); fix: chown root:root ${g} && chmod go-w ${g}`,
  );
  t.regex(
    (await privilegedFileProblem(HOOK, file('hook-757', 0o757), { secret: false })) ?? '',
    /is writable by others \(mode 0757\)/,
  );
  t.is(
    await privilegedFileProblem(HOOK, join(dir, 'no-such-hook'), { secret: false }),
    `host.onOutputsChanged ${join(dir, 'no-such-hook')} does not exist`,
  );
  t.regex((await privilegedFileProblem(HOOK, dir, { secret: false })) ?? '', /is not a regular file$/);
});

test('the hook: owned by another user, or in a directory others can write (not sticky), is refused; a symlink is judged by its target', async (t) => {
  if (process.getuid?.() !== 0) {
    t.pass('needs root to chown');
    return;
  }
  const other = file('hook-nobody', 0o755);
  chownSync(other, 65534, 65534);
  t.regex((await privilegedFileProblem(HOOK, other, { secret: false })) ?? '', /is owned by uid 65534, not root/);
  const open = join(dir, 'open');
  mkdirSync(open);
  chmodSync(open, 0o777);
  const inOpen = join(open, 'hook');
  writeFileSync(inOpen, '#!/bin/sh\n');
  chmodSync(inOpen, 0o755);
  t.is(
    await privilegedFileProblem(HOOK, inOpen, { secret: false }),
    `host.onOutputsChanged ${inOpen}: its directory ${open} is writable by group and others (mode 0777); anyone who can write there can replace it; fix: chmod go-w ${open}`,
  );
  chmodSync(open, 0o1777);
  t.is(
    await privilegedFileProblem(HOOK, inOpen, { secret: false }),
    undefined,
    'sticky, like /tmp: only the owner can replace it',
  );
  const link = join(dir, 'hook-link');
  symlinkSync(other, link);
  t.regex((await privilegedFileProblem(HOOK, link, { secret: false })) ?? '', /owned by uid 65534/);
});

test('the PSK file: also not readable by others (group may read it); both files are checked from the spec', async (t) => {
  t.is(await privilegedFileProblem(PSK, file('psk-640', 0o640), { secret: true }), undefined);
  const pub = file('psk-644', 0o644);
  t.is(
    await privilegedFileProblem(PSK, pub, { secret: true }),
    `host.wireguardPSKFile ${pub} is readable by others (mode 0644); fix: chmod o-rwx ${pub}`,
  );
  t.deepEqual(await privilegedFileProblems({}), []);
  const problems = await privilegedFileProblems({
    onOutputsChanged: file('hook2-777', 0o777),
    wireguardPSKFile: file('psk2-604', 0o604),
  });
  t.is(problems.length, 2);
  t.regex(problems[0] ?? '', /^host\.onOutputsChanged .* is writable by group and others/);
  t.regex(problems[1] ?? '', /^host\.wireguardPSKFile .* is readable by others/);
});
