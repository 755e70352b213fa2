/**
 * A stand-in for `systemctl` on a lab host (test/e2e/guides.test.ts): no systemd runs on this
 * machine, so the guides' `systemctl` commands run this instead, inside the host's own mount
 * namespace (its /etc, /run, /var are its own). It does what systemd would do with the real unit
 * files, read from the usual places (/etc/systemd/system, /lib/systemd/system, drop-ins in
 * NAME.service.d/): ExecCondition=, ExecStart= (the last one; an empty one resets), Environment=,
 * EnvironmentFile= ("-" = optional), User=, RuntimeDirectory=, StateDirectory=, Wants=/Requires=
 * of other services, and Type=notify through a real NOTIFY_SOCKET (start returns once the
 * service sent READY=1, as `systemctl start` does). enable/disable/mask/unmask make the same
 * links systemctl makes, and refuse what it refuses (mask over a unit file in
 * /etc/systemd/system: "already exists"). Services get systemd's environment, not the caller's.
 *
 * Where it differs, on purpose: no cgroups (stop signals the main process only); ExecStartPre=
 * is not run (Debian's containerd.service loads a kernel module there, machine-wide); Docker's
 * `-H fd://` (socket activation by docker.socket) becomes `-H unix:///run/docker.sock`, the
 * socket docker.socket listens on.
 */
import { spawn, spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  chmodSync,
  lstatSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { applyEnvironmentLine, systemdWords } from './unit-env.js';

const ETC = '/etc/systemd/system';
const DIRS = [ETC, '/run/systemd/system', '/usr/local/lib/systemd/system', '/lib/systemd/system'];
const STATE = '/run/shim-systemd';
const LISTENER = fileURLToPath(new URL('../../../test/helpers/notify_listener.py', import.meta.url));
const SERVICE_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' };

const unitName = (u: string): string => (/\.\w+$/.test(u) ? u : `${u}.service`);
const masked = (u: string): boolean => {
  try {
    return readlinkSync(join(ETC, u)) === '/dev/null';
  } catch {
    return false;
  }
};
const unitFile = (u: string): string | undefined =>
  DIRS.map((d) => join(d, u)).find((p) => existsSync(p) && !masked(u));
const pidOf = (u: string): number => {
  try {
    return Number(readFileSync(join(STATE, `${u}.pid`), 'utf8'));
  } catch {
    return 0;
  }
};
const alive = (pid: number): boolean => {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${String(pid)}/status`, 'utf8'));
  } catch {
    return false;
  }
};
const active = (u: string): boolean => alive(pidOf(u));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The unit's keys (section.Key -> values in order), drop-ins applied; an empty value resets. */
function load(u: string): Map<string, string[]> {
  const file = unitFile(u);
  if (!file) throw new Fail(`Unit ${u} not found.`, 5);
  const dropIns = DIRS.flatMap((d) => {
    try {
      return readdirSync(join(d, `${u}.d`))
        .filter((f) => f.endsWith('.conf'))
        .map((f) => join(d, `${u}.d`, f));
    } catch {
      return [];
    }
  }).sort((a, b) => basename(a).localeCompare(basename(b)));
  const keys = new Map<string, string[]>();
  for (const f of [file, ...dropIns]) {
    let section = '';
    for (const raw of readFileSync(f, 'utf8').split('\n')) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
      const s = /^\[(\w+)\]$/.exec(line);
      if (s?.[1]) {
        section = s[1];
        continue;
      }
      const m = /^(\w+)=(.*)$/.exec(line);
      if (!m?.[1]) continue;
      const k = `${section}.${m[1]}`;
      const v = (m[2] ?? '').replace(
        /%%|%H|%p|%n/g,
        (x) => ({ '%%': '%', '%H': hostname(), '%p': u.replace(/(@.*)?\.\w+$/, ''), '%n': u })[x] ?? x,
      );
      keys.set(k, v === '' ? [] : [...(keys.get(k) ?? []), v]);
    }
  }
  return keys;
}

function environment(keys: Map<string, string[]>): Record<string, string> {
  const env: Record<string, string> = { ...SERVICE_ENV };
  for (const line of keys.get('Service.Environment') ?? []) applyEnvironmentLine(env, line);
  for (const spec of keys.get('Service.EnvironmentFile') ?? []) {
    const optional = spec.startsWith('-');
    const file = optional ? spec.slice(1) : spec;
    if (!existsSync(file)) {
      if (optional) continue;
      throw new Fail(`Failed to load environment files: ${file}: No such file or directory`, 1);
    }
    for (const l of readFileSync(file, 'utf8').split('\n')) {
      const m = /^\s*(?:export\s+)?(\w+)=(.*)$/.exec(l);
      if (m?.[1]) env[m[1]] = (m[2] ?? '').trim().replace(/^"(.*)"$|^'(.*)'$/, '$1$2');
    }
  }
  return env;
}

/** An Exec line as argv: "$VAR" alone splits at whitespace, "${VAR}" is substituted, "$$" is "$". */
function argv(line: string, env: Record<string, string>): string[] {
  const out: string[] = [];
  for (const w of systemdWords(line.replace(/^[-@:+!]+/, ''))) {
    const whole = /^\$(\w+)$/.exec(w);
    if (whole?.[1]) {
      out.push(...(env[whole[1]] ?? '').split(/\s+/).filter(Boolean));
      continue;
    }
    out.push(w.replace(/\$\{(\w+)\}/g, (_, n: string) => env[n] ?? '').replace(/\$\$/g, '$'));
  }
  return out;
}

class Fail extends Error {
  constructor(
    msg: string,
    readonly code: number,
  ) {
    super(msg);
  }
}

async function start(u: string): Promise<void> {
  if (masked(u)) throw new Fail(`Failed to start ${u}: Unit ${u} is masked.`, 1);
  if (active(u)) return;
  const keys = load(u);
  for (const dep of [...(keys.get('Unit.Wants') ?? []), ...(keys.get('Unit.Requires') ?? [])].flatMap(systemdWords)) {
    if (dep.endsWith('.service') && dep !== u && unitFile(dep)) await start(dep);
  }
  const env = environment(keys);
  for (const c of keys.get('Service.ExecCondition') ?? []) {
    const [cmd = '', ...args] = argv(c, env);
    if (spawnSync(cmd, args, { env, stdio: 'ignore' }).status !== 0) return;
  }
  for (const [key, base] of [
    ['RuntimeDirectory', '/run'],
    ['StateDirectory', '/var/lib'],
  ] as const) {
    for (const d of (keys.get(`Service.${key}`) ?? []).flatMap(systemdWords))
      mkdirSync(join(base, d), { recursive: true });
  }
  const exec = (keys.get('Service.ExecStart') ?? []).at(-1);
  if (!exec) throw new Fail(`${u} has no ExecStart=`, 1);
  let [cmd = '', ...args] = argv(exec, env);
  if (basename(cmd) === 'dockerd') args = args.map((a) => (a === 'fd://' ? 'unix:///run/docker.sock' : a));
  const user = (keys.get('Service.User') ?? []).at(-1);
  if (user) [cmd, args] = ['setpriv', [`--reuid=${user}`, `--regid=${user}`, '--init-groups', cmd, ...args]];
  mkdirSync(STATE, { recursive: true });
  const log = openSync(join(STATE, `${u}.log`), 'a');
  const notify = (keys.get('Service.Type') ?? []).at(-1) === 'notify';
  const sock = join(STATE, `${u}.notify`);
  if (notify) {
    rmSync(sock, { force: true });
    const out = openSync(`${sock}.log`, 'w');
    const l = spawn('/usr/bin/python3', [LISTENER, sock], { detached: true, stdio: ['ignore', out, 'ignore'] });
    l.unref();
    closeSync(out);
    writeFileSync(join(STATE, `${u}.listener`), String(l.pid));
    for (let i = 0; i < 200 && !existsSync(sock); i++) await sleep(20);
    chmodSync(sock, 0o777);
  }
  // systemd reaps a service that exits; this shim exits at once, so a small sh stays the
  // service's parent and reaps it (else a stopped service lingers as a zombie `pgrep` sees).
  const pidFile = join(STATE, `${u}.pid`);
  rmSync(pidFile, { force: true });
  const reaper = spawn('/bin/sh', ['-c', '"$@" & echo $! > "$WEFT_SHIM_PIDFILE"; wait $!', 'sh', cmd, ...args], {
    env: { ...env, ...(notify ? { NOTIFY_SOCKET: sock } : {}), WEFT_SHIM_PIDFILE: pidFile },
    detached: true,
    stdio: ['ignore', log, log],
  });
  reaper.unref();
  for (let i = 0; i < 200 && !existsSync(pidFile); i++) await sleep(10);
  const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : 0;
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (!alive(pid)) {
      const tail = readFileSync(join(STATE, `${u}.log`), 'utf8')
        .trimEnd()
        .split('\n')
        .slice(-15)
        .join('\n');
      throw new Fail(
        `Job for ${u} failed because the control process exited with error code.\n(the shim's log of ${u}, last lines:)\n${tail}`,
        1,
      );
    }
    if (!notify || (existsSync(`${sock}.log`) && /READY=1/.test(readFileSync(`${sock}.log`, 'utf8')))) return;
    if (Date.now() > deadline) throw new Fail(`Job for ${u} failed because a timeout was exceeded.`, 1);
    await sleep(50);
  }
}

async function stop(u: string): Promise<void> {
  const pid = pidOf(u);
  if (alive(pid)) {
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 600 && alive(pid); i++) await sleep(50);
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  }
  try {
    process.kill(Number(readFileSync(join(STATE, `${u}.listener`), 'utf8')), 'SIGKILL');
  } catch {
    /* none */
  }
  rmSync(join(STATE, `${u}.pid`), { force: true });
}

function wantedBy(u: string): string[] {
  return (load(u).get('Install.WantedBy') ?? []).flatMap(systemdWords).map((t) => join(ETC, `${t}.wants`, u));
}

function enable(u: string): void {
  if (masked(u)) throw new Fail(`Failed to enable unit: Unit file ${join(ETC, u)} is masked.`, 1);
  const file = unitFile(u) ?? '';
  for (const link of wantedBy(u)) {
    if (existsSync(link)) continue;
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync(file, link);
    process.stderr.write(`Created symlink ${link} → ${file}.\n`);
  }
}

function disable(u: string): void {
  for (const link of wantedBy(u))
    if (existsSync(link)) {
      rmSync(link);
      process.stderr.write(`Removed "${link}".\n`);
    }
}

function mask(u: string): void {
  const link = join(ETC, u);
  let st;
  try {
    st = lstatSync(link);
  } catch {
    st = undefined;
  }
  if (st && !(st.isSymbolicLink() && masked(u))) throw new Fail(`Failed to mask unit: File ${link} already exists.`, 1);
  if (!st) {
    symlinkSync('/dev/null', link);
    process.stderr.write(`Created symlink ${link} → /dev/null.\n`);
  }
}

function isEnabled(u: string): [string, number] {
  if (masked(u)) return ['masked', 1];
  if (!unitFile(u)) throw new Fail(`Failed to get unit file state for ${u}: No such file or directory`, 1);
  const links = wantedBy(u);
  return links.length > 0 && links.every((l) => existsSync(l))
    ? ['enabled', 0]
    : links.length === 0
      ? ['static', 0]
      : ['disabled', 1];
}

async function main(argvIn: string[]): Promise<number> {
  const flags = argvIn.filter((a) => a.startsWith('-'));
  const [verb = '', ...rest] = argvIn.filter((a) => !a.startsWith('-'));
  const units = rest.map(unitName);
  const now = flags.includes('--now');
  const quiet = flags.includes('-q') || flags.includes('--quiet');
  let code = 0;
  for (const u of units.length > 0 ? units : ['']) {
    switch (verb) {
      case 'daemon-reload':
        return 0;
      case 'start':
        await start(u);
        break;
      case 'stop':
        await stop(u);
        break;
      case 'restart':
        await stop(u);
        await start(u);
        break;
      case 'enable':
        enable(u);
        if (now) await start(u);
        break;
      case 'disable':
        disable(u);
        if (now) await stop(u);
        break;
      case 'mask':
        mask(u);
        if (now) await stop(u);
        break;
      case 'unmask':
        if (masked(u)) {
          rmSync(join(ETC, u));
          process.stderr.write(`Removed "${join(ETC, u)}".\n`);
        }
        break;
      case 'is-enabled': {
        const [s, c] = isEnabled(u);
        if (!quiet) process.stdout.write(`${s}\n`);
        code ||= c;
        break;
      }
      case 'is-active': {
        const a = active(u);
        if (!quiet) process.stdout.write(a ? 'active\n' : 'inactive\n');
        code ||= a ? 0 : 3;
        break;
      }
      case 'status': {
        const a = active(u);
        process.stdout.write(
          `● ${u}\n     Active: ${a ? `active (running), main PID ${String(pidOf(u))}` : 'inactive (dead)'}\n`,
        );
        code ||= a ? 0 : 3;
        break;
      }
      default:
        throw new Fail(`the lab's systemctl stand-in does not know "${verb}" (test/helpers/systemctl-shim.ts)`, 1);
    }
  }
  return code;
}

main(process.argv.slice(2)).then(
  (c) => {
    process.exitCode = c;
  },
  (e: unknown) => {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exitCode = e instanceof Fail ? e.code : 1;
  },
);
