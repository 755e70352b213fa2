// One-file weft: dist/weft.mjs needs only `node` (>= 20.19). Built with esbuild from the
// TypeScript sources. etcd3 reads its gRPC .proto files from disk at load time; here they are
// parsed at build time and inlined as a JSON descriptor (proto-loader's fromJSON), so the
// bundle has no files beside it. The version is fixed in at build time.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { build } from 'esbuild';

const require = createRequire(import.meta.url);
const protobuf = require('protobufjs');
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const etcd3Dir = dirname(require.resolve('etcd3/package.json'));

const root = new protobuf.Root();
root.loadSync(join(etcd3Dir, 'proto/rpc.proto'), { keepCase: true });
const descriptor = JSON.stringify(root.toJSON());

const LOAD = '(0, proto_loader_1.loadSync)(`${__dirname}/../proto/rpc.proto`, {';
const inlineProtos = {
  name: 'etcd3-inline-protos',
  setup(b) {
    b.onLoad({ filter: /etcd3[\\/]lib[\\/]connection-pool\.js$/ }, (args) => {
      const src = readFileSync(args.path, 'utf8');
      if (!src.includes(LOAD)) throw new Error(`etcd3 changed: ${args.path} no longer loads its protos as expected`);
      return { contents: src.replace(LOAD, `(0, proto_loader_1.fromJSON)(${descriptor}, {`), loader: 'js' };
    });
  },
};

const out = process.argv[2] ?? 'dist/weft.mjs';
await build({
  entryPoints: ['src/cli/weft.ts'],
  outfile: out,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  minify: false,
  legalComments: 'none',
  logLevel: 'warning',
  define: { __WEFT_VERSION__: JSON.stringify(pkg.version) },
  // The CommonJS dependencies (etcd3, grpc) call require(); give the ESM bundle one.
  banner: { js: "import { createRequire as __weftCreateRequire } from 'node:module'; const require = __weftCreateRequire(import.meta.url);" },
  plugins: [inlineProtos],
});
console.log(`bundled ${out} (weft ${pkg.version})`);
