// The Debian package: dist/weft_<version>_<arch>.deb, built with dpkg-deb from the standalone
// executable (scripts/build-exe.mjs; built first when missing or older than the sources).
// debhelper is not used: there is nothing to compile, and dh_strip/dh_shlibdeps would rewrite
// an executable whose injected blob must stay byte-for-byte. The maintainer scripts in
// packaging/debian/ are what dh_installsystemd generates, plus weft's own rules (no start
// without a spec; purge removes the datapath). What goes where:
//   /usr/bin/weft                                   the executable (Node.js inside)
//   /lib/systemd/system/weft.service                units/weft.service, ExecStart=/usr/bin/weft,
//                                                   ExecCondition= "a spec is there"
//   /usr/share/weft/docker-weft.conf                the Docker drop-in, opt-in (see README)
//   /etc/weft/network.yaml                          conffile: the commented example spec
//   /var/lib/weft/                                  state (cached lease and config)
//   /usr/share/bash-completion/completions/weft     generated from `weft --help`
//   /usr/share/man/man8/weft.8.gz                   `weft --help` of every command, as a man page
//   /usr/share/doc/weft/                            copyright, changelog, monitoring examples
//   /usr/share/lintian/overrides/weft               the tags that come with Node.js, explained
//
// Usage: node scripts/build-deb.mjs [--version V] [--out DIR] [--exe FILE] [--fast]
// (--fast: gzip -1 instead of xz, for test packages: a few seconds instead of ~25 s on 2 cores)
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import { parseArgs } from 'node:util';
import { pkg } from './lib/bundle-options.mjs';

const REPO = resolve(dirname(new URL(import.meta.url).pathname), '..');
const { values: opt } = parseArgs({
  options: { version: { type: 'string' }, out: { type: 'string' }, exe: { type: 'string' }, fast: { type: 'boolean' } },
});
const version = opt.version ?? pkg.version;
const outDir = resolve(opt.out ?? join(REPO, 'dist'));
const exe = resolve(opt.exe ?? join(REPO, 'dist/weft'));
const arch = execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim();
const sh = (cmd, args, o = {}) => execFileSync(cmd, args, { encoding: 'utf8', ...o });
// Timestamps and dates from the last commit, so two builds of one commit are identical.
const epoch =
  Number(
    process.env.SOURCE_DATE_EPOCH ??
      (() => {
        try {
          return sh('git', ['-C', REPO, 'log', '-1', '--format=%ct']).trim();
        } catch {
          return '0';
        }
      })(),
  ) || Math.floor(Date.now() / 1000);
const date = new Date(epoch * 1000);

/** The newest modification time under `p` (a file or a directory). */
function newest(p) {
  const st = statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  return Math.max(st.mtimeMs, ...readdirSync(p).map((e) => newest(join(p, e))));
}
if (
  !existsSync(exe) ||
  (opt.exe === undefined &&
    statSync(exe).mtimeMs < Math.max(newest(join(REPO, 'src')), newest(join(REPO, 'package.json'))))
) {
  execFileSync(process.execPath, [join(REPO, 'scripts/build-exe.mjs'), exe], { stdio: 'inherit' });
}

const root = join(outDir, `deb-${version}-${arch}`);
rmSync(root, { recursive: true, force: true });
const put = (path, content, mode = 0o644) => {
  const f = join(root, path);
  mkdirSync(dirname(f), { recursive: true });
  if (typeof content === 'string' || Buffer.isBuffer(content)) writeFileSync(f, content);
  else copyFileSync(content.from, f);
  chmodSync(f, mode);
};
const gz = (text) => gzipSync(Buffer.from(text), { level: 9 }).fill(0, 4, 8); // -n: no timestamp

// The executable and the systemd unit.
put('usr/bin/weft', { from: exe }, 0o755);
const unit = readFileSync(join(REPO, 'units/weft.service'), 'utf8');
if (!unit.includes('ExecStart=/usr/local/bin/weft run'))
  throw new Error('units/weft.service: ExecStart is not /usr/local/bin/weft run ...');
const condition = [
  '# No spec yet (the packaged example is all comments, or the file is gone): skip, do not fail',
  '# and do not restart. "$$" is a literal "$" for systemd.',
  'ExecCondition=/bin/grep -qsEv "^[[:space:]]*(#|$$)" /etc/weft/network.yaml',
].join('\n');
put(
  'lib/systemd/system/weft.service',
  unit.replace('ExecStart=/usr/local/bin/weft', `${condition}\nExecStart=/usr/bin/weft`),
);
put('usr/share/weft/docker-weft.conf', { from: join(REPO, 'units/docker-weft.conf') });
put('etc/weft/network.yaml', { from: join(REPO, 'packaging/network.yaml') });
mkdirSync(join(root, 'var/lib/weft'), { recursive: true });

// What the executable says about itself: the man page and the completion are made from it.
const help = (args) => sh(exe, [...args, '--help'], { env: { PATH: '/usr/bin:/bin' } });
const top = help([]);
const commands = [...top.matchAll(/^ {2}weft (\S+)\s/gm)].map((m) => m[1]);
if (commands.length < 5) throw new Error(`weft --help lists ${commands.length} commands:\n${top}`);
const sub = Object.fromEntries(commands.map((c) => [c, help([c])]));
const nested = (text, c) => [...text.matchAll(new RegExp(`^ {2}weft ${c} (\\w[\\w-]*)`, 'gm'))].map((m) => m[1]);
const flags = (text) => [...new Set([...text.matchAll(/^ {2,}(?:-\w, )?(--[\w-]+)/gm)].map((m) => m[1]))];

const roff = (text) =>
  text
    .replace(/\\/g, '\\e')
    .replace(/^([.'])/gm, '\\&$1')
    .replace(/-/g, '\\-');
const man = [
  `.TH WEFT 8 "${date.toISOString().slice(0, 10)}" "weft ${version}" "System Administration"`,
  '.SH NAME',
  'weft \\- flannel\\-compatible network fabric agent (etcd v3; vxlan and host\\-gw)',
  '.SH SYNOPSIS',
  '.B weft',
  '.I command',
  '.RI [ options ]',
  '.SH DESCRIPTION',
  "weft leases this host a subnet from an overlay network kept in etcd, programs the kernel datapath to every other host (vxlan or host\\-gw) and writes the options Docker or Podman need, in flanneld's formats.",
  'Under systemd it runs as',
  '.BR "weft run \\-\\-spec /etc/weft/network.yaml" ;',
  'the unit starts once that file holds a spec. This page is the output of',
  '.B weft \\-\\-help',
  'for every command.',
  '.SH COMMANDS',
  '.nf',
  roff(top.trimEnd()),
  '.fi',
  ...commands.flatMap((c) => ['.SS', `weft ${c}`, '.nf', roff((sub[c] ?? '').trimEnd()), '.fi']),
  '.SH FILES',
  '.TP',
  '.I /etc/weft/network.yaml',
  'the spec (a conffile; shipped as a commented example).',
  '.TP',
  '.I /var/lib/weft/',
  'state that survives reboots: the cached lease and network config. Removed on purge.',
  '.TP',
  '.I /run/flannel/subnet.env',
  "flanneld's subnet.env, written by weft run.",
  '.TP',
  '.I /run/flannel/docker',
  'DOCKER_NETWORK_OPTIONS for dockerd (see /usr/share/weft/docker\\-weft.conf).',
  '.SH DECOMMISSIONING',
  'Removing the package stops weft and leaves the datapath in place; purging removes the datapath and /var/lib/weft but releases nothing in etcd: the lease stays until its TTL. To take a host out of the fabric, run',
  '.B weft release \\-\\-spec /etc/weft/network.yaml',
  'before purging.',
  '.SH SEE ALSO',
  '.BR systemctl (1),',
  '.BR dockerd (8),',
  '.BR etcdctl (1)',
  '',
].join('\n');
put('usr/share/man/man8/weft.8.gz', gz(man));

const cases = commands
  .map((c) => `    ${c}) words_here="${[...nested(sub[c] ?? '', c), ...flags(sub[c] ?? '')].join(' ')}" ;;`)
  .join('\n');
put(
  'usr/share/bash-completion/completions/weft',
  `# bash completion for weft ${version} (generated from \`weft --help\` by scripts/build-deb.mjs)
_weft() {
  local cur prev words cword
  _init_completion || return
  if [ "$cword" -eq 1 ]; then
    COMPREPLY=($(compgen -W "${commands.join(' ')} --help --version" -- "$cur"))
    return
  fi
  case $prev in
    --spec|--*-file|--file|--out) _filedir; return ;;
  esac
  local words_here=""
  case \${words[1]} in
${cases}
  esac
  COMPREPLY=($(compgen -W "$words_here" -- "$cur"))
}
complete -F _weft weft
`,
);

// Documentation: copyright, a changelog, and the monitoring examples.
put('usr/share/lintian/overrides/weft', { from: join(REPO, 'packaging/debian/lintian-overrides') });
put('usr/share/doc/weft/copyright', { from: join(REPO, 'packaging/debian/copyright') });
const maintainer =
  /^Maintainer: (.*)$/m.exec(readFileSync(join(REPO, 'packaging/debian/control.in'), 'utf8'))?.[1] ?? '';
put(
  'usr/share/doc/weft/changelog.gz',
  gz(
    `weft (${version}) unstable; urgency=medium\n\n  * weft ${version}: see https://example.org/weft for what changed.\n\n -- ${maintainer}  ${date.toUTCString().replace('GMT', '+0000')}\n`,
  ),
);
const mon = join(REPO, 'examples/monitoring');
if (existsSync(mon)) cpSync(mon, join(root, 'usr/share/doc/weft/examples/monitoring'), { recursive: true });

// Control files. Shared-library dependencies come from dpkg-shlibdeps when it is there.
const shlibs = (() => {
  const tmp = join(outDir, `shlibs-${process.pid}`);
  try {
    mkdirSync(join(tmp, 'debian'), { recursive: true });
    writeFileSync(join(tmp, 'debian/control'), 'Source: weft\n\nPackage: weft\nArchitecture: any\n');
    const out = sh('dpkg-shlibdeps', ['-O', join(root, 'usr/bin/weft')], {
      cwd: tmp,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return /shlibs:Depends=(.*)/.exec(out)?.[1]?.trim() ?? '';
  } catch {
    return 'libc6 (>= 2.28), libgcc-s1 (>= 3.0), libstdc++6 (>= 9)';
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
})();
const files = (dir) =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)],
  );
const sizeKiB = Math.ceil(files(root).reduce((n, f) => n + statSync(f).size, 0) / 1024);
const control = readFileSync(join(REPO, 'packaging/debian/control.in'), 'utf8')
  .replace('@VERSION@', version)
  .replace('@ARCH@', arch)
  .replace('@SIZE@', String(sizeKiB))
  .replace('@SHLIBS@', shlibs);
const md5sums = files(root)
  .filter((f) => !relative(root, f).startsWith('etc/'))
  .sort()
  .map((f) => `${createHash('md5').update(readFileSync(f)).digest('hex')}  ${relative(root, f)}`)
  .join('\n');
put('DEBIAN/control', control);
put('DEBIAN/md5sums', `${md5sums}\n`);
put('DEBIAN/conffiles', { from: join(REPO, 'packaging/debian/conffiles') });
for (const s of ['postinst', 'prerm', 'postrm']) put(`DEBIAN/${s}`, { from: join(REPO, 'packaging/debian', s) }, 0o755);
for (const d of [root, ...files(root).map(dirname)]) chmodSync(d, 0o755);

const deb = join(outDir, `weft_${version}_${arch}.deb`);
execFileSync(
  'dpkg-deb',
  ['--root-owner-group', ...(opt.fast ? ['-Zgzip', '-z1'] : ['-Zxz', '-z6']), '--build', root, deb],
  { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, SOURCE_DATE_EPOCH: String(epoch) } },
);
rmSync(root, { recursive: true, force: true });
console.log(
  `built ${deb}: ${(statSync(deb).size / 2 ** 20).toFixed(1)} MiB (installed ${(sizeKiB / 1024).toFixed(1)} MiB)`,
);
