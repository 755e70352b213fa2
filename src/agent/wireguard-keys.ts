/**
 * The wireguard backend's keys on this host: the private key file (created once, 0600; see
 * adapters/wireguard-keys.ts), the preshared key (the spec's file, else the stored config's
 * `PSK` kept in a 0600 file in the state dir, since `wg` reads keys from files), and a watcher
 * that notices a replaced key file (`weft wireguard rotate-key`) within a second.
 */
import type { Spec } from '../core/spec/spec.js';
import type { WireguardKeys, WireguardNeed } from '../backends/types.js';
import type { Logger } from '../adapters/log.js';
import { WeftError } from '../core/base/errors.js';
import { WG_KEY } from '../core/flannel/wg-key.js';
import { readTextIfExists } from '../adapters/files.js';
import { privilegedFileProblem } from '../adapters/credentials.js';
import { pskTag } from '../adapters/wireguard.js';
import { ensurePSKFile, keyFileStamp, loadOrCreateKey, removeKeyFile } from '../adapters/wireguard-keys.js';

/** The key file a spec names (default `<stateDir>/wireguard/private.key`). */
export const wireguardKeyFile = (spec: Spec): string =>
  spec.host.wireguardKeyFile ?? `${spec.host.stateDir}/wireguard/private.key`;

/** Where the stored config's PSK is copied for `wg` (host.wireguardPSKFile unset). */
const storedPSKFile = (spec: Spec): string => `${spec.host.stateDir}/wireguard/preshared.key`;

/** Load (or create) this host's keys for a backend that asks for them (`need`); logs the public key and where the private one is, never a secret. */
export async function wireguardKeys(spec: Spec, need: WireguardNeed, log: Logger): Promise<WireguardKeys> {
  const privateKeyFile = wireguardKeyFile(spec);
  // flanneld's key file (its default, or WIREGUARD_KEY_FILE as flanneld reads it): adopted once.
  const flanneldKey = process.env.WIREGUARD_KEY_FILE ?? '/run/flannel/wgkey';
  const k = await loadOrCreateKey(privateKeyFile, flanneldKey);
  if (k.adopted)
    log.info("adopted flanneld's WireGuard key, so peers keep their sessions", {
      from: flanneldKey,
      file: privateKeyFile,
      publicKey: k.publicKey,
    });
  if (k.created) log.info("generated this host's WireGuard key", { file: privateKeyFile, publicKey: k.publicKey });
  if (k.fixedMode)
    log.warn('the WireGuard key file was readable by others; set its mode to 0600', { file: privateKeyFile });
  let presharedKeyFile = spec.host.wireguardPSKFile;
  const stored = need.storedPSK;
  if (presharedKeyFile === undefined && stored !== undefined) {
    presharedKeyFile = storedPSKFile(spec);
    await ensurePSKFile(presharedKeyFile, stored);
  }
  // The stored config no longer has a PSK: its copy is a secret nothing uses any more.
  if (presharedKeyFile === undefined) await removeKeyFile(storedPSKFile(spec));
  if (presharedKeyFile === undefined) return { privateKeyFile, publicKey: k.publicKey };
  // Checked here, once: wg would otherwise fail on every peer. The message never quotes the key.
  const psk = (await readTextIfExists(presharedKeyFile))?.trim();
  if (psk === undefined)
    throw new WeftError(
      'E_CONFIG',
      `the WireGuard preshared key file ${presharedKeyFile} does not exist (host.wireguardPSKFile)`,
    );
  // The spec's file (weft's own copy is written 0600): checked on every load, a rotation too.
  const unsafe =
    spec.host.wireguardPSKFile === undefined
      ? undefined
      : await privilegedFileProblem('host.wireguardPSKFile', presharedKeyFile, { secret: true });
  if (unsafe) throw new WeftError('E_HOST', unsafe);
  if (!WG_KEY.test(psk))
    throw new WeftError(
      'E_CONFIG',
      `the WireGuard preshared key file ${presharedKeyFile} does not hold the base64 of 32 bytes (wg genpsk)`,
    );
  return { privateKeyFile, publicKey: k.publicKey, presharedKeyFile, presharedKeyTag: pskTag(psk) };
}

/**
 * Calls `onChange` when the key file (or the PSK file) is replaced: its inode, time or size
 * change. Polled, so it works on any file system.
 */
export class KeyWatcher {
  private stamp = '';
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly paths: readonly string[],
    private readonly log: Logger,
    private readonly onChange: () => Promise<void>,
    private readonly everyMs = 250,
  ) {}

  private async stamps(): Promise<string> {
    const all = await Promise.all(this.paths.map(keyFileStamp));
    return all.includes('') ? '' : all.join(' ');
  }

  async start(): Promise<void> {
    this.stamp = await this.stamps();
    this.timer = setInterval(() => {
      if (!this.running)
        this.running = this.check().finally(() => {
          this.running = undefined;
        });
    }, this.everyMs);
  }

  private async check(): Promise<void> {
    const now = await this.stamps();
    if (now === this.stamp || now === '') return;
    try {
      await this.onChange();
      this.stamp = now;
    } catch (e) {
      this.log.warn('cannot use the new WireGuard key file yet; retrying', {
        files: this.paths,
        error: e instanceof Error ? e.message : String(e),
      });
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}

/**
 * The keys as a one-shot command (`weft plan`, `weft doctor`) sees them, reading nothing
 * secret: the key file's path, the public key this host's lease publishes, and the PSK file
 * `weft run` uses. Undefined for a backend that asks for no keys (`need`) or a lease without a key.
 */
export function wireguardKeysOfLease(
  spec: Spec,
  need: WireguardNeed | undefined,
  publicKey: string | undefined,
): WireguardKeys | undefined {
  if (need === undefined || publicKey === undefined) return undefined;
  const psk = spec.host.wireguardPSKFile ?? (need.storedPSK !== undefined ? storedPSKFile(spec) : undefined);
  return { privateKeyFile: wireguardKeyFile(spec), publicKey, ...(psk !== undefined ? { presharedKeyFile: psk } : {}) };
}
