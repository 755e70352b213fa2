/**
 * `weft wireguard rotate-key [--spec F]`: replace this host's WireGuard private key (the file
 * the spec names, atomically, 0600). A running `weft run` notices within a second, switches its
 * device to the new key and publishes the new public key in its lease; every peer replaces the
 * old peer with the new one on that lease change (no restart anywhere). docs/operations.md has
 * the runbook and the measured interruption.
 * `weft wireguard public-key [--spec F]`: print this host's public key (none is created).
 */
import type { CommandModule } from 'yargs';
import { WeftError } from '../core/base/errors.js';
import { readTextIfExists } from '../adapters/files.js';
import { generatePrivateKey, publicKeyOf, writeKeyFile } from '../adapters/wireguard-keys.js';
import { wireguardKeyFile } from '../agent/wireguard-keys.js';
import { handle, loadSpec, withSpec } from './common.js';

interface Args {
  spec: string;
}

const rotateKey: CommandModule<object, Args> = {
  command: 'rotate-key',
  describe: "Replace this host's WireGuard key; a running weft publishes it and peers converge",
  builder: (y) => withSpec(y),
  handler: handle<Args>(async (args) => {
    const spec = await loadSpec(args.spec);
    const file = wireguardKeyFile(spec);
    const old = await readTextIfExists(file);
    const key = generatePrivateKey();
    await writeKeyFile(file, key);
    process.stdout.write(`${old === undefined ? 'created' : 'replaced'} ${file}; new public key ${publicKeyOf(key)}\n`);
  }),
};

const publicKey: CommandModule<object, Args> = {
  command: 'public-key',
  describe: "Print this host's WireGuard public key",
  builder: (y) => withSpec(y),
  handler: handle<Args>(async (args) => {
    const spec = await loadSpec(args.spec);
    const file = wireguardKeyFile(spec);
    const text = await readTextIfExists(file);
    if (text === undefined) throw new WeftError('E_HOST', `${file} does not exist (weft run creates it)`);
    process.stdout.write(`${publicKeyOf(text.trim())}\n`);
  }),
};

export const wireguardCommand: CommandModule = {
  command: 'wireguard <command>',
  describe: 'WireGuard keys of this host (rotate-key, public-key)',
  builder: (y) => y.command(rotateKey).command(publicKey).demandCommand(1),
  handler: () => undefined,
};
