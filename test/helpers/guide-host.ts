/**
 * A lab host an operator's guide can be followed on (test/e2e/guides.test.ts): the lab host's
 * network namespace plus a private mount namespace in which /etc, /usr and /var are overlays
 * of this machine's (writes land in the host's own upper layer, never in the machine's files,
 * so `dpkg -i`, `cat >> /etc/default/etcd` or `cp ... /etc/systemd/system/` change only that
 * host), /run and /root are empty tmpfs (a fresh boot, root's empty home). A holder process
 * keeps the namespaces alive; everything the guide runs enters both.
 *
 * Commands run in one bash session per host, as an operator types them into a root shell
 * (variables and exports carry over from block to block), each with its exit status recorded,
 * stdin from /dev/null and stderr merged into its output.
 */
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { GuideBlock, GuideCommand } from './guide.js';
import type { Lab, LabHost } from './lab.js';
import { type Started, start, until } from './procs.js';

const ROOT_ENV = {
  HOME: '/root',
  USER: 'root',
  LOGNAME: 'root',
  SHELL: '/bin/bash',
  TERM: 'dumb',
  LANG: 'C.UTF-8',
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
};

const MOUNTS = `set -e
mount -t tmpfs -o mode=0755 guide-host "$1"
for d in etc usr var; do
  mkdir -p "$1/$d.up" "$1/$d.work"
  mount -t overlay overlay -o "lowerdir=/$d,upperdir=$1/$d.up,workdir=$1/$d.work" "/$d"
done
mount -t tmpfs -o mode=0755 run /run
mount -t tmpfs -o mode=0700 root /root
echo mounted
exec sleep infinity`;

/** What one command of a block did. */
export interface CommandResult {
  readonly command: GuideCommand;
  readonly text: string;
  readonly code: number;
  readonly out: string;
}

export class GuideHost {
  private seq = 0;
  private constructor(
    readonly name: string,
    readonly lab: Lab,
    readonly host: LabHost,
    private readonly holder: Started,
    private readonly shell: Started,
  ) {}

  /** The holder and the bash session for lab host `h`, called `name` in the guide. */
  static async open(lab: Lab, h: LabHost, name: string): Promise<GuideHost> {
    const fs = join(h.dir, 'fs');
    mkdirSync(fs, { recursive: true });
    const holder = lab.spawnIn(h.ns, 'unshare', [
      '--mount',
      '--propagation',
      'private',
      '--',
      '/bin/sh',
      '-c',
      MOUNTS,
      'sh',
      fs,
    ]);
    await until(
      () => {
        if (holder.child.exitCode !== null) throw new Error(`${name}: the mount namespace failed: ${holder.output()}`);
        return holder.output().includes('mounted');
      },
      10_000,
      20,
      `${name}'s mount namespace`,
    );
    const pid = String(holder.child.pid);
    const shell = start('nsenter', ['-t', pid, '-m', '-n', '--', '/bin/bash', '--noprofile', '--norc'], {
      env: ROOT_ENV,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    lab.onDestroy(() => shell.stop(1000));
    const g = new GuideHost(name, lab, h, holder, shell);
    shell.child.stdin?.write('exec 2>&1; cd /root\n');
    return g;
  }

  /** A path as this host sees it, usable from the test process. */
  path(p: string): string {
    return `/proc/${String(this.holder.child.pid)}/root${p}`;
  }

  read(p: string): string {
    return readFileSync(this.path(p), 'utf8');
  }

  write(p: string, text: string | Buffer, mode = 0o644): void {
    mkdirSync(dirname(this.path(p)), { recursive: true });
    writeFileSync(this.path(p), text);
    chmodSync(this.path(p), mode);
  }

  /**
   * Run commands in the host's session; resolves with each one's exit status and output.
   * `rewrite` maps a command's text to what the lab runs (the caller says why).
   */
  async run(
    commands: readonly GuideCommand[],
    rewrite: (text: string) => string = (s) => s,
    timeoutMs = 60_000,
  ): Promise<CommandResult[]> {
    const tag = `${String(process.pid)}-${String(this.seq++)}`;
    const texts = commands.map((c) => rewrite(c.text));
    const script =
      texts
        .map(
          (text, i) =>
            `printf '\\n@@cmd ${tag} ${String(i)}\\n'\n{ ${text}\n} </dev/null\nprintf '\\n@@rc ${tag} ${String(i)} %s\\n' "$?"\n`,
        )
        .join('') + `printf '\\n@@end ${tag}\\n'\n`;
    const from = this.shell.stdout().length;
    this.shell.child.stdin?.write(script);
    await until(
      () => {
        if (this.shell.child.exitCode !== null)
          throw new Error(`${this.name}: the shell exited: ${this.shell.output().slice(-2000)}`);
        return this.shell.stdout().slice(from).includes(`@@end ${tag}`);
      },
      timeoutMs,
      20,
      `${this.name}: ${texts.at(-1) ?? ''}`,
    ).catch((e: unknown) => {
      throw new Error(`${(e as Error).message}\noutput so far:\n${this.shell.stdout().slice(from).slice(-3000)}`);
    });
    const out = this.shell.stdout().slice(from);
    return commands.map((command, i) => {
      const m = new RegExp(`@@cmd ${tag} ${String(i)}\\n([\\s\\S]*?)\\n?@@rc ${tag} ${String(i)} (\\d+)`).exec(out);
      return { command, text: texts[i] ?? '', code: Number(m?.[2] ?? -1), out: (m?.[1] ?? '').trimEnd() };
    });
  }

  /** One shell command (the test's own, not the guide's); throws unless it exits 0. */
  async sh(text: string): Promise<string> {
    const [r] = await this.run([{ text, line: 0, exit: 0 }]);
    if (r?.code !== 0) throw new Error(`${this.name}: ${text}: exit ${String(r?.code)}\n${r?.out ?? ''}`);
    return r.out;
  }
}

/**
 * The first command of a block that did not do what the guide says (exit status, quoted
 * output), as a report naming the block, the line, the command as run and its output.
 */
export function failureOf(block: GuideBlock, host: string, results: readonly CommandResult[]): string | undefined {
  for (const r of results) {
    const wrongCode = r.code !== r.command.exit;
    const missing = r.command.expect !== undefined && !r.out.includes(r.command.expect);
    const noisy = r.command.silent === true && r.out !== '';
    if (!wrongCode && !missing && !noisy) continue;
    const file = block.where.replace(/:\d+$/, '');
    return [
      `${file}:${String(r.command.line)} (the block at ${block.where}) on ${host}:`,
      `  $ ${r.text.replace(/\n/g, '\n    ')}`,
      wrongCode
        ? `  exited ${String(r.code)}; the guide expects ${String(r.command.exit)}`
        : noisy
          ? '  printed something; the guide says it prints nothing'
          : `  the output lacks "${r.command.expect ?? ''}", which the guide promises`,
      `  output:\n    ${r.out.replace(/\n/g, '\n    ') || '(none)'}`,
      `  the block:\n    ${block.text.replace(/\n/g, '\n    ')}`,
    ].join('\n');
  }
  return undefined;
}
