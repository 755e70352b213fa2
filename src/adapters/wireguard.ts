/**
 * WireGuard, thinly: the only module that runs `wg` and `wireguard-go`. It observes a device's
 * configuration with `wg show DEV dump` (the private key in that output is dropped at once,
 * never kept or logged), applies `wireguard` tool lines (core/datapath/wireguard-plan.ts): `set ...` is
 * `wg set ...`, and `add DEV mtu N` creates the device: the kernel's (`ip link add DEV type
 * wireguard`) when the kernel has WireGuard, else a userspace one served by wireguard-go.
 *
 * wireguard-go must outlive `weft run` (a restart is hitless: the device and its peers stay,
 * and the next weft adopts them through the UAPI socket in /run/wireguard). Under systemd (weft
 * runs as a unit: INVOCATION_ID is set) it runs as its own transient unit,
 * `weft-wireguard-go-DEV.service` (systemd-run), so stopping or restarting weft.service never
 * kills it; elsewhere it is started detached, in its own session. Deleting the device
 * (`ip link del DEV`) ends it.
 */
import { createHash } from 'node:crypto';
import type { ObservedDevice, ObservedWireguard } from '../core/datapath/datapath.js';
import { parseWgDump } from '../core/datapath/wireguard-plan.js';
import { wireguardImplementationOf } from '../core/datapath/devices.js';
import { WeftError } from '../core/base/errors.js';
import { exec, execOk, spawnDetached } from './exec.js';

/** A preshared key's fingerprint: 64 bits of a domain-separated SHA-256, which says nothing usable about the key. */
export const pskTag = (psk: string): string =>
  createHash('sha256').update(`weft-wireguard-psk/${psk.trim()}`).digest('hex').slice(0, 16);

/** The implementation of each device last observed (`weft status`). */
const implementations = new Map<string, ObservedWireguard['implementation']>();
export const wireguardImplementation = (dev: string): ObservedWireguard['implementation'] | undefined =>
  implementations.get(dev);

/** A device's WireGuard configuration, or undefined when `wg` cannot read it (not a WireGuard device). */
export async function observeWireguard(dev: ObservedDevice): Promise<ObservedWireguard | undefined> {
  // Only a kind WireGuard can be (the kernel's link, wireguard-go's tun) is asked about.
  const implementation = wireguardImplementationOf(dev);
  if (implementation === undefined) return undefined;
  const r = await exec('wg', ['show', dev.name, 'dump']);
  if (r.code !== 0) return undefined;
  const o = parseWgDump(r.stdout, implementation, pskTag);
  if (o) implementations.set(dev.name, o.implementation);
  return o;
}

const sleep = (ms: number) =>
  new Promise<void>((resolve) => {
    setTimeout(resolve, ms);
  });

/** Start wireguard-go for `name` so that it outlives weft (see the module comment). */
async function startWireguardGo(name: string): Promise<void> {
  const env = { ...process.env, WG_PROCESS_FOREGROUND: '1' };
  if (process.env.INVOCATION_ID && (await exec('systemd-run', ['--version']).catch(() => undefined))?.code === 0) {
    await execOk('systemd-run', [
      '--unit',
      `weft-wireguard-go-${name}`,
      '--collect',
      '--quiet',
      '--description',
      `userspace WireGuard for ${name} (weft)`,
      'wireguard-go',
      '--foreground',
      name,
    ]);
  } else {
    await spawnDetached('wireguard-go', ['--foreground', name], env);
  }
  // Ready once its UAPI socket answers.
  for (let i = 0; i < 100; i++) {
    if ((await exec('wg', ['show', name, 'public-key'])).code === 0) return;
    await sleep(50);
  }
  throw new WeftError('E_KERNEL', `wireguard-go did not bring up ${name} within 5 s`, { retryable: true });
}

/** Create a WireGuard device: the kernel's when it has WireGuard, else userspace (wireguard-go). */
async function addDevice(name: string, mtu: string): Promise<void> {
  const k = await exec('ip', ['link', 'add', name, 'mtu', mtu, 'type', 'wireguard']);
  if (k.code === 0) {
    implementations.set(name, 'kernel');
    return;
  }
  await startWireguardGo(name);
  await execOk('ip', ['link', 'set', 'dev', name, 'mtu', mtu]);
  implementations.set(name, 'userspace');
}

/** Apply `wireguard` tool lines in order; returns the lines that failed (as ip -batch reports). */
export async function applyWireguard(lines: readonly string[]): Promise<{ index: number; message: string }[]> {
  const failures: { index: number; message: string }[] = [];
  for (const [index, line] of lines.entries()) {
    const w = line.split(' ');
    try {
      if (w[0] === 'add' && w[2] === 'mtu' && w[1] && w[3]) await addDevice(w[1], w[3]);
      else if (w[0] === 'set') {
        const r = await exec('wg', w);
        if (r.code !== 0) failures.push({ index, message: r.stderr.trim() || `wg exit ${r.code}` });
      } else failures.push({ index, message: `not a wireguard line: ${w[0] ?? ''}` });
    } catch (e) {
      failures.push({ index, message: e instanceof Error ? e.message : String(e) });
    }
  }
  return failures;
}
