/**
 * `weft docker-opts`: a drop-in for flannel's mk-docker-opts.sh, same flags and defaults,
 * byte-identical output, written atomically. One difference, on purpose: a missing subnet
 * file is an error (exit 1, output untouched) instead of silently writing empty options that
 * start Docker on the wrong subnet; `--allow-missing` restores flannel's behaviour. And one
 * opt-in: `-6` adds `--ipv6 --fixed-cidr-v6=<FLANNEL_IPV6_SUBNET, network form>` (the script
 * ignores IPv6); without it the output is the script's, byte for byte.
 */
import type { CommandModule } from 'yargs';
import { WeftError } from '../core/base/errors.js';
import { parseEnvFile, renderDockerOpts } from '../core/outputs/outputs.js';
import { readTextIfExists, writeFileAtomic } from '../adapters/files.js';
import { handle } from './common.js';

interface Args {
  f: string;
  d: string;
  k: string;
  i: boolean;
  c: boolean;
  m: boolean;
  ipv6: boolean;
  'allow-missing': boolean;
}

export const dockerOptsCommand: CommandModule<object, Args> = {
  command: 'docker-opts',
  describe: "Write Docker options from subnet.env (drop-in for flannel's mk-docker-opts.sh)",
  builder: (y) =>
    y
      .option('f', {
        type: 'string',
        default: '/run/flannel/subnet.env',
        describe: 'flannel env file to read',
        requiresArg: true,
      })
      .option('d', {
        type: 'string',
        default: '/run/docker_opts.env',
        describe: 'Docker env file to write',
        requiresArg: true,
      })
      .option('k', {
        type: 'string',
        default: 'DOCKER_OPTS',
        describe: 'name of the combined options variable',
        requiresArg: true,
      })
      .option('i', { type: 'boolean', default: false, describe: 'write each option as its own variable' })
      .option('c', { type: 'boolean', default: false, describe: 'write the combined variable' })
      .option('m', { type: 'boolean', default: false, describe: 'omit --ip-masq' })
      .option('ipv6', {
        type: 'boolean',
        default: false,
        alias: '6',
        describe: 'also --ipv6 --fixed-cidr-v6 from FLANNEL_IPV6_SUBNET (not in mk-docker-opts.sh)',
      })
      .option('allow-missing', {
        type: 'boolean',
        default: false,
        describe: 'like mk-docker-opts.sh: a missing env file yields empty options',
      }),
  handler: handle<Args>(async (a) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(a.k))
      throw new WeftError('E_USAGE', `-k: ${JSON.stringify(a.k)} is not a shell variable name`);
    const text = await readTextIfExists(a.f);
    if (text === undefined && !a['allow-missing']) {
      throw new WeftError(
        'E_NOT_FOUND',
        `${a.f} does not exist (has weft run leased a subnet yet?); ${a.d} left unchanged. Use --allow-missing for mk-docker-opts.sh's behaviour.`,
      );
    }
    const env = new Map<string, string>();
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env.set(k, v);
    for (const [k, v] of parseEnvFile(text ?? '')) env.set(k, v);
    const out = renderDockerOpts({ individual: a.i, combined: a.c, key: a.k, omitIpMasq: a.m, ipv6: a.ipv6 }, env);
    if (!out.ok) throw new WeftError('E_CONFIG', `${out.message} (in ${a.f}); ${a.d} left unchanged`);
    await writeFileAtomic(a.d, out.text);
  }),
};
