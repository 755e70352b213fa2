/**
 * This host's WireGuard keys. The private key is generated once (X25519, node:crypto) and kept
 * in a file outside tmpfs (default `<stateDir>/wireguard/private.key`, mode 0600, in a 0700
 * directory), so a reboot keeps the key and peers keep their sessions (flanneld keeps it in
 * /run and gets a new key every boot, flannel-ipv6-wireguard.md §2.2). The file holds the
 * base64 text `wg genkey` writes, so `wg` reads it (`wg set DEV private-key FILE`) and an
 * operator may provide one. Secrets are never logged and never leave this module except as
 * file paths; only the public key is.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { chmod, mkdir, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { WeftError } from '../core/base/errors.js';
import { WG_KEY } from '../core/flannel/wg-key.js';
import { readTextIfExists, writeFileAtomic } from './files.js';

/** PKCS#8 DER header of an X25519 private key (RFC 8410); the raw 32 bytes follow. */
const X25519_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex');

const fromB64url = (s: string): string => Buffer.from(s, 'base64url').toString('base64');

/** The public key (base64) of a private key given as base64 text. Throws on a malformed key (the message never quotes it). */
export function publicKeyOf(privateKey: string): string {
  const raw = Buffer.from(privateKey, 'base64');
  if (!WG_KEY.test(privateKey) || raw.length !== 32)
    throw new WeftError('E_CONFIG', 'the WireGuard private key is not the base64 of 32 bytes (wg genkey)');
  const key = createPrivateKey({ key: Buffer.concat([X25519_PKCS8, raw]), format: 'der', type: 'pkcs8' });
  const jwk = createPublicKey(key).export({ format: 'jwk' });
  if (typeof jwk.x !== 'string') throw new WeftError('E_CONFIG', 'cannot derive the WireGuard public key');
  return fromB64url(jwk.x);
}

/** A new private key as base64 text (clamped as WireGuard clamps it). */
export function generatePrivateKey(): string {
  const jwk = generateKeyPairSync('x25519').privateKey.export({ format: 'jwk' });
  if (typeof jwk.d !== 'string') throw new WeftError('E_HOST', 'cannot generate an X25519 key');
  const raw = Buffer.from(jwk.d, 'base64url');
  raw[0] = (raw[0] ?? 0) & 248;
  raw[31] = ((raw[31] ?? 0) & 127) | 64;
  return raw.toString('base64');
}

/** Write a private key file: 0600, in a 0700 directory, atomically (a reader sees the old key or the new). */
export async function writeKeyFile(path: string, key: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFileAtomic(path, `${key}\n`, 0o600);
}

/**
 * The key in `path`, created when missing: copied from `adoptFrom` when that holds a valid key
 * (flanneld's key file, so a host moving from flanneld keeps its key and its peers' sessions),
 * else generated. A readable-by-others file is tightened to 0600 (`fixedMode`, for a warning).
 * Returns only the public key and what was done, never the secret.
 */
export async function loadOrCreateKey(
  path: string,
  adoptFrom?: string,
): Promise<{ publicKey: string; created: boolean; adopted: boolean; fixedMode: boolean }> {
  const text = await readTextIfExists(path);
  if (text === undefined) {
    const theirs =
      adoptFrom === undefined ? undefined : (await readTextIfExists(adoptFrom).catch(() => undefined))?.trim();
    if (theirs !== undefined && WG_KEY.test(theirs)) {
      await writeKeyFile(path, theirs);
      return { publicKey: publicKeyOf(theirs), created: false, adopted: true, fixedMode: false };
    }
    await writeKeyFile(path, generatePrivateKey());
    const again = await readTextIfExists(path);
    return { publicKey: publicKeyOf((again ?? '').trim()), created: true, adopted: false, fixedMode: false };
  }
  let fixedMode = false;
  if (((await stat(path)).mode & 0o077) !== 0) {
    await chmod(path, 0o600);
    fixedMode = true;
  }
  try {
    return { publicKey: publicKeyOf(text.trim()), created: false, adopted: false, fixedMode };
  } catch (e) {
    throw new WeftError('E_CONFIG', `${path}: ${(e as Error).message}`);
  }
}

/** A file's identity (inode and modification time): the agent reloads the key when it changes. */
export async function keyFileStamp(path: string): Promise<string> {
  const s = await stat(path).catch(() => undefined);
  return s ? `${s.ino}:${s.mtimeMs}:${s.size}` : '';
}

/** Keep a PSK that came from the stored network config in a 0600 file for `wg` (rewritten only when it differs). */
export async function ensurePSKFile(path: string, psk: string): Promise<void> {
  if ((await readTextIfExists(path))?.trim() === psk) return;
  await writeKeyFile(path, psk);
}

/** Remove a key file weft wrote and no longer uses (already gone: nothing to do). */
export async function removeKeyFile(path: string): Promise<void> {
  await rm(path, { force: true });
}
