// The standalone executable: dist/weft runs on a host with no Node.js installed.
//
// Node's single-executable applications (SEA, https://nodejs.org/api/single-executable-applications.html):
//  1. esbuild bundles weft into ONE CommonJS script (SEA runs CommonJS only; no files beside it,
//     etcd3's protos inlined: scripts/lib/bundle-options.mjs);
//  2. `node --experimental-sea-config` turns it into a blob (without V8's code cache: it saved
//     nothing measurable here, and is rejected, with a warning at every start, when the flags
//     differ, as under weft.service's NODE_OPTIONS);
//  3. a copy of this node binary gets the blob injected as its NODE_SEA_BLOB section (postject)
//     and its SEA fuse flipped; at start Node finds the blob and runs it instead of a script.
// The executable embeds the Node.js that builds it (process.execPath): build with the Node.js
// whose security fixes you want shipped. `dist/weft --version` names both versions.
//
// Usage: node scripts/build-exe.mjs [out]   (default dist/weft)
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { build } from 'esbuild';
import { bundleOptions, pkg } from './lib/bundle-options.mjs';

const require = createRequire(import.meta.url);
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

/** Run a build step; its output is shown only when it fails. */
function quiet(cmd, args) {
  try {
    execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    process.stderr.write(`${e.stdout ?? ''}${e.stderr ?? ''}`);
    throw e;
  }
}

const out = resolve(process.argv[2] ?? 'dist/weft');
const work = `${out}.build`;
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });
const main = join(work, 'weft.cjs');
const blob = join(work, 'weft.blob');
await build(bundleOptions('cjs', main));
const config = join(work, 'sea-config.json');
writeFileSync(config, JSON.stringify({ main, output: blob, disableExperimentalSEAWarning: true, useCodeCache: false }));
quiet(process.execPath, ['--experimental-sea-config', config]);

const tmp = `${out}.tmp`;
mkdirSync(dirname(out), { recursive: true });
// Node's release binary carries its symbol table and debug info (~12 MB): strip them (binutils)
// before the blob goes in. Without `strip` the executable is only bigger.
try {
  execFileSync('strip', ['--strip-all', '--remove-section=.comment', '-o', tmp, process.execPath], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
} catch {
  console.warn("build-exe: strip (binutils) not found or failed: the executable keeps Node's symbols");
  copyFileSync(process.execPath, tmp);
}
chmodSync(tmp, 0o755);
const postject = join(dirname(require.resolve('postject/package.json')), 'dist', 'cli.js');
// (postject warns "Can't find string offset for section name '.note.100'": harmless.)
quiet(process.execPath, [postject, tmp, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', FUSE]);
// Check what we ship: it runs, as weft, from the blob (not as a plain node).
const version = execFileSync(tmp, ['--version'], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } }).trim();
if (!version.startsWith(`${pkg.version} (standalone executable, embedded Node.js ${process.version})`))
  throw new Error(`${tmp} --version printed "${version}"`);
execFileSync('mv', ['-f', tmp, out]);
rmSync(work, { recursive: true, force: true });
console.log(`built ${out}: ${version}, ${(statSync(out).size / 2 ** 20).toFixed(1)} MiB`);
