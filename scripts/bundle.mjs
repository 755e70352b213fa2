// One-file weft: dist/weft.mjs needs only `node` (>= 20.19). Built with esbuild from the
// TypeScript sources (options in scripts/lib/bundle-options.mjs, shared with the standalone
// executable of scripts/build-exe.mjs).
import { build } from 'esbuild';
import { bundleOptions, pkg } from './lib/bundle-options.mjs';

const out = process.argv[2] ?? 'dist/weft.mjs';
await build(bundleOptions('esm', out));
console.log(`bundled ${out} (weft ${pkg.version})`);
