// The esbuild options shared by the one-file bundle (ESM, dist/weft.mjs) and the standalone
// executable (CommonJS, the only module format Node's single-executable applications run).
// etcd3 reads its gRPC .proto files from disk at load time; here they are parsed at build time
// and inlined as a JSON descriptor (proto-loader's fromJSON), so the output has no files
// beside it. The version is fixed in at build time.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
export const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));

function inlineProtos() {
  const protobuf = require('protobufjs');
  const etcd3Dir = dirname(require.resolve('etcd3/package.json'));
  const root = new protobuf.Root();
  root.loadSync(join(etcd3Dir, 'proto/rpc.proto'), { keepCase: true });
  const descriptor = JSON.stringify(root.toJSON());
  const LOAD = '(0, proto_loader_1.loadSync)(`${__dirname}/../proto/rpc.proto`, {';
  return {
    name: 'etcd3-inline-protos',
    setup(b) {
      b.onLoad({ filter: /etcd3[\\/]lib[\\/]connection-pool\.js$/ }, (args) => {
        const src = readFileSync(args.path, 'utf8');
        if (!src.includes(LOAD)) throw new Error(`etcd3 changed: ${args.path} no longer loads its protos as expected`);
        return { contents: src.replace(LOAD, `(0, proto_loader_1.fromJSON)(${descriptor}, {`), loader: 'js' };
      });
    },
  };
}

// CommonJS has no top-level await: the CLI's `await yargs(...)...parseAsync()` becomes a plain
// call whose rejection still ends the process (Node's default for unhandled rejections).
const TLA = 'await yargs(hideBin(process.argv))';
function noTopLevelAwait() {
  return {
    name: 'weft-cli-no-tla',
    setup(b) {
      b.onLoad({ filter: /src[\\/]cli[\\/]weft\.ts$/ }, (args) => {
        const src = readFileSync(args.path, 'utf8');
        if (!src.includes(TLA))
          throw new Error(`${args.path} no longer starts with "${TLA}": update scripts/lib/bundle-options.mjs`);
        return { contents: src.replace(TLA, 'void yargs(hideBin(process.argv))'), loader: 'ts' };
      });
    },
  };
}

/** esbuild options for `format` 'esm' (needs node >= 20.19) or 'cjs' (the standalone executable). */
export function bundleOptions(format, outfile) {
  const common = {
    entryPoints: ['src/cli/weft.ts'],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format,
    minify: false,
    legalComments: 'none',
    logLevel: 'warning',
  };
  if (format === 'esm') {
    return {
      ...common,
      define: { __WEFT_VERSION__: JSON.stringify(pkg.version) },
      // The CommonJS dependencies (etcd3, grpc) call require(); give the ESM bundle one.
      banner: {
        js: "import { createRequire as __weftCreateRequire } from 'node:module'; const require = __weftCreateRequire(import.meta.url);",
      },
      plugins: [inlineProtos()],
    };
  }
  return {
    ...common,
    // import.meta.url is only read when the version was not fixed in (it is, here).
    define: {
      __WEFT_VERSION__: JSON.stringify(pkg.version),
      __WEFT_STANDALONE__: 'true',
      'import.meta.url': '"file:///weft"',
    },
    plugins: [inlineProtos(), noTopLevelAwait()],
  };
}
