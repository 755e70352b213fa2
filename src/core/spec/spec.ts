/**
 * The YAML network spec (interface.md §2) -> a frozen, complete `Spec`, or a SpecError whose
 * problems each carry `file:line:col` and the key path. Pure: the caller reads the file and
 * passes the environment (for the WEFT_* overrides).
 */
import {
  type IP,
  type Prefix,
  contains,
  formatPrefix,
  isNetworkAddress,
  maskPrefix,
  parseIPv4,
  parseIPv6,
  parsePrefix,
  within,
} from '../net/cidr.js';
import { type NetworkConfig, checkNetworkConfig } from '../flannel/config-check.js';
import { parseDuration } from '../base/duration.js';
import { IPV4_MAPPED, reservedIPv6, reservedIPv6Overlap, reservedOverlap } from '../net/ip-scope.js';
import { SpecError, type SourcePosition } from '../base/errors.js';
import { ConfigError, type RawNetworkConfig, decodeBackend, encodeNetworkConfig } from '../flannel/network-config.js';
import { typeList } from '../flannel/backend-codec.js';
import { type Entry, YamlReader } from './yaml-reader.js';
import { type SpecBackend, type SpecBackends, backendKeys, familyServers, readersOf } from './spec-backend.js';
import { DEFAULT_MAX_PEERS } from '../fleet/store-limits.js';

export interface EtcdSpec {
  readonly endpoints: readonly string[];
  readonly prefix: string;
  readonly caFile?: string;
  readonly certFile?: string;
  readonly keyFile?: string;
  readonly username?: string;
  readonly passwordFile?: string;
}

export interface NetworkSpec {
  /** The IPv4 network (flannel `Network`); absent for an IPv6-only network (`ipv4: false`). */
  readonly cidr?: Prefix;
  /** The IPv6 network (flannel `IPv6Network`, `EnableIPv6`); absent when IPv6 is off. */
  readonly ipv6?: Prefix;
  /** The backend's type (a key of the registry parseSpec was given). */
  readonly backendType: string;
  /** The checked config (defaults filled) this network stands for. */
  readonly config: NetworkConfig;
  /** The flannel JSON text weft stores in `<prefix>/config`. */
  readonly configJson: string;
  readonly raw: RawNetworkConfig;
}

export interface HostSpec {
  readonly interface?: string;
  readonly interfaceRegex?: string;
  readonly canReach?: IP;
  readonly publicIP?: IP;
  /** The IPv6 address peers send to (never link-local, multicast, loopback or inside the IPv6 overlay); WEFT_PUBLIC_IPV6 overrides. */
  readonly publicIPv6?: IP;
  readonly ipMasq: boolean;
  readonly mtu?: number;
  readonly subnetFile: string;
  readonly leaseTTLSeconds: number;
  readonly leaseRenewMarginSeconds: number;
  /** Health/metrics address; absent when disabled with `listen: ""`. */
  readonly listen?: { readonly host: string; readonly port: number };
  /** How long etcd may be unreachable before /readyz says not ready (the datapath stays). */
  readonly etcdGraceSeconds: number;
  /** Where weft keeps state that must survive reboots (default /var/lib/weft, systemd's StateDirectory). */
  readonly stateDir: string;
  /**
   * A program (absolute path, run without a shell or arguments) weft runs after a live network
   * config change rewrote the bridge-relevant outputs (MTU, subnet), e.g. to restart
   * Docker; WEFT_CHANGED and friends in its environment say what changed (docs/operations.md).
   */
  readonly onOutputsChanged?: string;
  /** wireguard: this host's private key file (default `<stateDir>/wireguard/private.key`, created 0600 when missing). */
  readonly wireguardKeyFile?: string;
  /** wireguard: a preshared key file applied to every peer (overrides the stored config's PSK). */
  readonly wireguardPSKFile?: string;
  /**
   * Apply changes of `<prefix>/config` live (default true). false: the host runs the config it
   * started with and reports a newer stored one (status, a log line, a metric) until its next start.
   */
  readonly followConfig: boolean;
  /** A changed stored config is applied once it has been unchanged this long (core/config/config-pace.ts). */
  readonly configHoldDownSeconds: number;
  /** At least this long between two applied config changes (the latest value wins). */
  readonly configMinIntervalSeconds: number;
  /**
   * At most this many peers are programmed, and twice as many entries of `<prefix>/subnets/`
   * kept in memory; the oldest leases first (core/fleet/store-limits.ts). Default 65,536.
   */
  readonly maxPeers: number;
}

export interface OutputsSpec {
  /** `ipv6`: opt-in; the options also carry `--ipv6 --fixed-cidr-v6=<this host's IPv6 subnet>`. */
  readonly docker?: { readonly file: string; readonly key: string; readonly ipv6?: boolean };
  readonly dockerDaemonJson?: string;
  readonly podman?: string;
}

/** A parsed spec: complete (every default filled), frozen, never re-checked downstream. */
export interface Spec {
  readonly file: string;
  readonly etcd: EtcdSpec;
  readonly network?: NetworkSpec;
  readonly host: HostSpec;
  readonly outputs: OutputsSpec;
}

export const DEFAULTS = Object.freeze({
  endpoints: ['http://127.0.0.1:2379'],
  prefix: '/coreos.com/network',
  subnetFile: '/run/flannel/subnet.env',
  leaseTTL: '24h',
  leaseRenewMargin: '60m',
  listen: '127.0.0.1:9473',
  etcdGrace: '60s',
  stateDir: '/var/lib/weft',
  configHoldDown: '5s',
  configMinInterval: '30s',
  dockerFile: '/run/flannel/docker',
  dockerKey: 'DOCKER_NETWORK_OPTIONS',
});

export type Env = Readonly<Record<string, string | undefined>>;

/** `host:port` a client dials for host.listen (a wildcard listener is reached on loopback). */
export function dialAddress(listen: { readonly host: string; readonly port: number }): string {
  const host =
    listen.host === '0.0.0.0' || listen.host === '' ? '127.0.0.1' : listen.host === '::' ? '::1' : listen.host;
  return host.includes(':') ? `[${host}]:${String(listen.port)}` : `${host}:${String(listen.port)}`;
}

/**
 * Parse spec text; `backends` is the registry (src/backends/index.ts BACKENDS) that says which
 * backend types and keys exist. Throws SpecError listing every problem found.
 */
export function parseSpec(file: string, text: string, backends: SpecBackends, env: Env = {}): Spec {
  const r = new YamlReader(file, text);
  if (r.problems.length > 0) throw new SpecError(r.problems);
  const top = r.map(r.root, '', ['etcd', 'network', 'host', 'outputs']);
  const etcd = readEtcd(r, top?.get('etcd'), env);
  const network = top?.has('network') ? readNetwork(r, top.get('network'), backends) : undefined;
  const host = readHost(r, top?.get('host'), env, network?.ipv6);
  const outputs = readOutputs(r, top?.get('outputs'));
  if (r.problems.length > 0 || !etcd || !host || !outputs) throw new SpecError(r.problems);
  return deepFreeze({ file, etcd, ...(network ? { network } : {}), host, outputs });
}

const opt = <K extends string, V>(k: K, v: V | undefined): { [P in K]?: V } =>
  v === undefined ? {} : ({ [k]: v } as { [P in K]?: V });

function dirOf(file: string): string {
  const i = file.lastIndexOf('/');
  return i < 0 ? '.' : i === 0 ? '/' : file.slice(0, i);
}

/** Relative credential paths are read relative to the spec's own directory. */
function besideSpec(file: string, p: string | undefined): string | undefined {
  if (p === undefined || p.startsWith('/')) return p;
  return `${dirOf(file)}/${p}`;
}

/** Clean an etcd prefix as Go's path.Join does: one leading slash, no doubled or trailing slash. */
export function cleanPrefix(p: string): string {
  const parts = p.split('/').filter((s) => s !== '' && s !== '.');
  return `/${parts.join('/')}`;
}

function checkEndpoints(
  r: YamlReader,
  list: { value: string; pos: SourcePosition | undefined }[],
  path: string,
): string[] {
  const schemes = new Set<string>();
  const out: string[] = [];
  for (const { value, pos } of list) {
    const m = /^(https?):\/\/(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})\/?$/.exec(value);
    const port = m ? Number(m[3]) : 0;
    if (!m || port < 1 || port > 65535) {
      r.problem(path, `${path}: ${JSON.stringify(value)} is not an etcd endpoint like http://192.0.2.10:2379`, pos);
      continue;
    }
    schemes.add(m[1] ?? '');
    out.push(value.replace(/\/$/, ''));
  }
  if (schemes.size > 1)
    r.problem(path, `${path} mixes http:// and https:// endpoints; use one scheme for all`, list[0]?.pos);
  return out;
}

/**
 * Secrets and TLS settings that plain http:// would make a lie: a password sent in clear text,
 * a CA or client certificate that is never used (the user believes the link is protected).
 * And a client certificate needs the CA that signed etcd's server certificate: without it the
 * server is checked against the system's public CAs, which an internal etcd never passes.
 */
function checkTransport(
  r: YamlReader,
  m: Map<string, Entry>,
  endpoints: readonly string[],
  source: string,
  hasCA: boolean,
): void {
  const plain = endpoints.some((e) => e.startsWith('http://'));
  const at = (k: string): SourcePosition | undefined => {
    const e = m.get(k);
    return e ? r.at(e) : undefined;
  };
  if (plain && m.has('passwordFile')) {
    r.problem(
      'etcd.passwordFile',
      `etcd.passwordFile: the password would cross the network in clear text to the http:// endpoints of ${source}; use https:// endpoints (with etcd.caFile)`,
      at('passwordFile'),
    );
  }
  for (const k of ['caFile', 'certFile', 'keyFile']) {
    if (plain && m.has(k))
      r.problem(
        `etcd.${k}`,
        `etcd.${k} is set but ${source} use http://, so TLS is off and it would be ignored; use https:// endpoints`,
        at(k),
      );
  }
  if (!plain && !hasCA && m.has('certFile')) {
    r.problem(
      'etcd.certFile',
      "etcd.certFile needs etcd.caFile: the CA that signed etcd's server certificate",
      at('certFile'),
    );
  }
}

function readEtcd(r: YamlReader, e: Entry | undefined, env: Env): EtcdSpec | undefined {
  const m = r.map(
    e?.node ?? null,
    'etcd',
    ['endpoints', 'prefix', 'caFile', 'certFile', 'keyFile', 'username', 'passwordFile'],
    e?.keyPos,
  );
  if (!m) return undefined;
  const envEndpoints = env.WEFT_ETCD_ENDPOINTS;
  const listed =
    envEndpoints !== undefined && envEndpoints !== ''
      ? envEndpoints.split(',').map((s) => ({ value: s.trim(), pos: undefined }))
      : (r.stringList(m.get('endpoints')) ?? DEFAULTS.endpoints.map((value) => ({ value, pos: undefined })));
  const endpoints = checkEndpoints(r, listed, envEndpoints ? 'WEFT_ETCD_ENDPOINTS' : 'etcd.endpoints');
  const prefixEntry = m.get('prefix');
  const rawPrefix = env.WEFT_ETCD_PREFIX || r.string(prefixEntry) || DEFAULTS.prefix;
  if (!rawPrefix.startsWith('/') || cleanPrefix(rawPrefix) === '/') {
    r.problem(
      'etcd.prefix',
      `etcd.prefix must be an absolute etcd path such as /coreos.com/network, got ${JSON.stringify(rawPrefix)}`,
      prefixEntry ? r.at(prefixEntry) : undefined,
    );
  }
  const file = (k: string): string | undefined => besideSpec(r.file, r.string(m.get(k), 'a file path'));
  const [caFile, certFile, keyFile, passwordFile] = [
    file('caFile'),
    file('certFile'),
    file('keyFile'),
    file('passwordFile'),
  ];
  const username = r.string(m.get('username'));
  const pair = (a: string, av: unknown, b: string, bv: unknown): void => {
    const ea = m.get(a) ?? m.get(b);
    if ((av === undefined) !== (bv === undefined) && ea)
      r.problem(ea.path, `etcd.${a} and etcd.${b} must be given together`, ea.keyPos);
  };
  pair('certFile', certFile, 'keyFile', keyFile);
  pair('username', username, 'passwordFile', passwordFile);
  checkTransport(r, m, endpoints, envEndpoints ? 'WEFT_ETCD_ENDPOINTS' : 'etcd.endpoints', caFile !== undefined);
  return {
    endpoints,
    prefix: cleanPrefix(rawPrefix),
    ...opt('caFile', caFile),
    ...opt('certFile', certFile),
    ...opt('keyFile', keyFile),
    ...opt('username', username),
    ...opt('passwordFile', passwordFile),
  };
}

function ipv4Of(r: YamlReader, e: Entry | undefined): IP | undefined {
  const s = r.string(e, 'an IPv4 address');
  if (s === undefined || !e) return undefined;
  return (
    parseIPv4(s) ??
    r.problem(e.path, `${e.path} must be an IPv4 address such as 192.0.2.11, got ${JSON.stringify(s)}`, r.at(e))
  );
}

/**
 * `network.backend`: its type (the registry's first when absent), each key only under a backend
 * that reads it, and the stored Backend object the backend makes of them.
 */
function readBackend(
  r: YamlReader,
  e: Entry | undefined,
  backends: SpecBackends,
): { backend: SpecBackend; json: Record<string, unknown> } | undefined {
  const keys = backendKeys(backends);
  const m = r.map(e?.node ?? null, 'network.backend', ['type', ...keys], e?.keyPos);
  if (!m) return undefined;
  const typeEntry = m.get('type');
  const t = typeEntry ? r.string(typeEntry) : [...backends.keys()][0];
  if (t === undefined) return undefined;
  const backend = backends.get(t);
  if (!backend) {
    return r.problem(
      'network.backend.type',
      `network.backend.type must be ${typeList([...backends.keys()])}, got ${JSON.stringify(t)}`,
      typeEntry ? r.at(typeEntry) : undefined,
    );
  }
  for (const k of keys) {
    const x = m.get(k);
    if (x && !backend.specKeys.includes(k))
      r.problem(x.path, `${x.path} applies to ${readersOf(backends, k)} only`, x.keyPos);
  }
  return { backend, json: backend.backendObject(r, m) };
}

/** flannel config field (ConfigError.field) -> the spec key under `network` that sets it. */
const CONFIG_FIELD_TO_KEY: Record<string, string> = {
  Network: 'cidr',
  SubnetLen: 'subnetLen',
  SubnetMin: 'subnetMin',
  SubnetMax: 'subnetMax',
  EnableIPv4: 'ipv4',
  IPv6Network: 'ipv6.cidr',
  IPv6SubnetLen: 'ipv6.subnetLen',
  IPv6SubnetMin: 'ipv6.subnetMin',
  IPv6SubnetMax: 'ipv6.subnetMax',
};

/** One family's range as the spec gives it (unset values stay unset: flannel's defaults apply). */
interface RangeKeys<A> {
  readonly cidr: Prefix;
  readonly subnetLen?: number;
  readonly subnetMin?: A;
  readonly subnetMax?: A;
}

function ipv6Of(r: YamlReader, e: Entry | undefined): IP | undefined {
  const s = r.string(e, 'an IPv6 address');
  if (s === undefined || !e) return undefined;
  return (
    parseIPv6(s) ??
    r.problem(e.path, `${e.path} must be an IPv6 address such as fd00:10:244:1::, got ${JSON.stringify(s)}`, r.at(e))
  );
}

/** The IPv4 range: `network.cidr` and its subnet keys (the checks flannel's config cannot express). */
function readIPv4Range(r: YamlReader, m: ReadonlyMap<string, Entry>, e: Entry): RangeKeys<IP> | undefined {
  const cidrEntry = m.get('cidr');
  if (!cidrEntry)
    return r.problem(
      'network.cidr',
      'network.cidr is required (the overlay network, e.g. 10.244.0.0/16) unless network.ipv4 is false (an IPv6-only network)',
      e.keyPos,
    );
  const cidrText = r.string(cidrEntry, 'an IPv4 CIDR');
  const cidr = cidrText === undefined ? undefined : parsePrefix(cidrText);
  if (cidrText !== undefined && (!cidr || cidr.ip.family !== 4)) {
    r.problem(
      'network.cidr',
      `network.cidr must be an IPv4 CIDR such as 10.244.0.0/16, got ${JSON.stringify(cidrText)}`,
      r.at(cidrEntry),
    );
  } else if (cidr && !isNetworkAddress(cidr)) {
    r.problem(
      'network.cidr',
      `network.cidr ${cidrText ?? ''} has host bits set; the network address is needed`,
      r.at(cidrEntry),
    );
  }
  // Every host would refuse it (core/config/config-fit.ts): say so before it is stored.
  const reserved = cidr?.ip.family === 4 ? reservedOverlap(cidr) : undefined;
  if (reserved)
    r.problem(
      'network.cidr',
      `network.cidr ${cidrText ?? ''} overlaps ${reserved}; use a private range such as 10.244.0.0/16`,
      r.at(cidrEntry),
    );
  const subnetLen = r.integer(m.get('subnetLen'), 1, 30);
  const subnetMin = ipv4Of(r, m.get('subnetMin'));
  const subnetMax = ipv4Of(r, m.get('subnetMax'));
  if (!cidr || cidr.ip.family !== 4 || !isNetworkAddress(cidr) || reserved) return undefined;
  return { cidr, ...opt('subnetLen', subnetLen), ...opt('subnetMin', subnetMin), ...opt('subnetMax', subnetMax) };
}

/**
 * `network.ipv6`: a real IPv6 unicast prefix (flanneld takes an IPv4 CIDR here and makes
 * nonsense of it), its network address, and its subnet keys.
 */
function readIPv6Range(r: YamlReader, e: Entry): { range: RangeKeys<IP>; m: Map<string, Entry> } | undefined {
  const m = r.map(e.node, 'network.ipv6', ['cidr', 'subnetLen', 'subnetMin', 'subnetMax'], e.keyPos);
  if (!m) return undefined;
  const cidrEntry = m.get('cidr');
  if (!cidrEntry)
    r.problem(
      'network.ipv6.cidr',
      'network.ipv6.cidr is required (the IPv6 overlay network, e.g. fd00:10:244::/48)',
      e.keyPos,
    );
  const text = r.string(cidrEntry, 'an IPv6 prefix');
  const cidr = text === undefined ? undefined : parsePrefix(text);
  let ok = false;
  if (text !== undefined && cidrEntry) {
    const path = 'network.ipv6.cidr';
    const mapped = cidr?.ip.family === 6 && within(cidr, IPV4_MAPPED);
    const reserved = cidr?.ip.family === 6 ? reservedIPv6Overlap(cidr) : undefined;
    if (!cidr || cidr.ip.family !== 6 || mapped) {
      r.problem(
        path,
        `${path} must be an IPv6 prefix such as fd00:10:244::/48, got ${JSON.stringify(text)}${mapped ? ' (an IPv4-mapped prefix)' : ''}`,
        r.at(cidrEntry),
      );
    } else if (!isNetworkAddress(cidr)) {
      r.problem(
        path,
        `${path} ${text} has host bits set; the network address is needed (${formatPrefix(maskPrefix(cidr))})`,
        r.at(cidrEntry),
      );
    } else if (reserved) {
      r.problem(
        path,
        `${path} ${text} overlaps ${reserved}; use a unique local (fd00::/8) or global unicast prefix`,
        r.at(cidrEntry),
      );
    } else ok = true;
  }
  const subnetLen = r.integer(m.get('subnetLen'), 1, 126);
  const subnetMin = ipv6Of(r, m.get('subnetMin'));
  const subnetMax = ipv6Of(r, m.get('subnetMax'));
  if (!ok || !cidr) return undefined;
  return {
    range: { cidr, ...opt('subnetLen', subnetLen), ...opt('subnetMin', subnetMin), ...opt('subnetMax', subnetMax) },
    m,
  };
}

function readNetwork(r: YamlReader, e: Entry | undefined, backends: SpecBackends): NetworkSpec | undefined {
  const m = r.map(
    e?.node ?? null,
    'network',
    ['cidr', 'subnetLen', 'subnetMin', 'subnetMax', 'ipv4', 'ipv6', 'backend'],
    e?.keyPos,
  );
  if (!m || !e) return undefined;
  const ipv4Entry = m.get('ipv4');
  const ipv4 = r.boolean(ipv4Entry) ?? true;
  const v6Entry = m.get('ipv6');
  let v4: RangeKeys<IP> | undefined;
  if (ipv4) v4 = readIPv4Range(r, m, e);
  else {
    for (const k of ['cidr', 'subnetLen', 'subnetMin', 'subnetMax']) {
      const x = m.get(k);
      if (x)
        r.problem(
          x.path,
          `${x.path} must be absent when network.ipv4 is false (an IPv6-only network has no IPv4 range)`,
          x.keyPos,
        );
    }
    if (!v6Entry && ipv4Entry)
      r.problem(
        'network.ipv4',
        'network.ipv4: false needs network.ipv6 (an IPv6-only network): give network.ipv6.cidr, e.g. fd00:10:244::/48',
        r.at(ipv4Entry),
      );
  }
  const v6 = v6Entry ? readIPv6Range(r, v6Entry) : undefined;
  const backend = readBackend(r, m.get('backend'), backends);
  // The backend says which families it programs (flanneld's wireguard has flannel-wg-v6; weft's not yet).
  if (backend && v6Entry && !backend.backend.families.includes(6)) {
    r.problem(
      'network.ipv6',
      `network.ipv6 needs the ${familyServers(backends, 6)} backend: weft does not program IPv6 over ${backend.backend.type} yet`,
      v6Entry.keyPos,
    );
  }
  if ((ipv4 && !v4) || (v6Entry && !v6) || (!ipv4 && !v6) || !backend || r.problems.length > 0) return undefined;
  const r6 = v6?.range;
  const raw: RawNetworkConfig = {
    subnetLen: v4?.subnetLen ?? 0,
    enableIPv4: ipv4,
    enableIPv6: r6 !== undefined,
    ipv6SubnetLen: r6?.subnetLen ?? 0,
    enableNFTables: false,
    backend: decodeBackend(JSON.stringify(backend.json), backends), // weft's own Backend object, not read from etcd
    ...opt('network', v4?.cidr),
    ...opt('subnetMin', v4?.subnetMin),
    ...opt('subnetMax', v4?.subnetMax),
    ...opt('ipv6Network', r6?.cidr),
    ...opt('ipv6SubnetMin', r6?.subnetMin),
    ...opt('ipv6SubnetMax', r6?.subnetMax),
  };
  try {
    const config = checkNetworkConfig(raw);
    return {
      ...opt('cidr', v4?.cidr),
      ...opt('ipv6', r6?.cidr),
      backendType: backend.backend.type,
      config,
      configJson: encodeNetworkConfig(raw),
      raw,
    };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const key = CONFIG_FIELD_TO_KEY[err.field ?? ''] ?? (ipv4 ? 'cidr' : 'ipv6.cidr');
    const isV6 = key.startsWith('ipv6.');
    const entries = isV6 ? v6?.m : m;
    const sub = isV6 ? key.slice('ipv6.'.length) : key;
    const at = entries?.get(sub) ?? entries?.get('cidr') ?? (isV6 ? v6Entry : undefined);
    const net = isV6 ? r6?.cidr : v4?.cidr;
    return r.problem(
      `network.${key}`,
      `network.${key}: ${err.message}${net ? ` (network ${formatPrefix(net)})` : ''}`,
      at ? r.at(at) : e.keyPos,
    );
  }
}

function readListen(r: YamlReader, e: Entry | undefined): HostSpec['listen'] | null | undefined {
  const text = e ? r.stringOrEmpty(e, 'an address:port, or "" to disable') : DEFAULTS.listen;
  if (text === undefined) return undefined;
  if (text === '') return null;
  const m = /^(\[[0-9a-fA-F:]+\]|[0-9.]+|localhost):([0-9]{1,5})$/.exec(text);
  const port = m ? Number(m[2]) : 0;
  if (!m || port < 1 || port > 65535 || (!m[1]?.startsWith('[') && m[1] !== 'localhost' && !parseIPv4(m[1] ?? ''))) {
    return r.problem(
      'host.listen',
      `host.listen must be ADDRESS:PORT such as 127.0.0.1:9473 (or "" to disable), got ${JSON.stringify(text)}`,
      e ? r.at(e) : undefined,
    );
  }
  return { host: (m[1] ?? '').replace(/^\[|\]$/g, ''), port };
}

function durationSeconds(r: YamlReader, e: Entry | undefined, dflt: string, minSeconds: number): number | undefined {
  const text = e ? r.string(e, 'a duration such as 90s, 60m or 24h') : dflt;
  if (text === undefined) return undefined;
  const ms = parseDuration(text);
  if (ms === undefined || ms % 1000 !== 0 || ms / 1000 < minSeconds) {
    const path = e?.path ?? '';
    return r.problem(
      path,
      `${path} must be a whole number of seconds of at least ${minSeconds}s written as a duration such as 90s, 60m or 24h, got ${JSON.stringify(text)}`,
      e ? r.at(e) : undefined,
    );
  }
  return ms / 1000;
}

function absPath(r: YamlReader, e: Entry | undefined, dflt: string | undefined): string | undefined {
  if (!e) return dflt;
  const s = r.string(e, 'an absolute file path');
  if (s !== undefined && !s.startsWith('/'))
    return r.problem(e.path, `${e.path} must be an absolute path, got ${JSON.stringify(s)}`, r.at(e));
  return s;
}

/**
 * `host.publicIPv6` (or WEFT_PUBLIC_IPV6, which wins): a unicast IPv6 address peers on other
 * links can reach, outside the spec's IPv6 overlay `overlay6`.
 */
function readPublicIPv6(
  r: YamlReader,
  e: Entry | undefined,
  envText: string | undefined,
  overlay6: Prefix | undefined,
): IP | undefined {
  const name = envText ? 'WEFT_PUBLIC_IPV6' : 'host.publicIPv6';
  const text = envText || r.string(e, 'an IPv6 address');
  if (text === undefined) return undefined;
  const pos = envText || !e ? undefined : r.at(e);
  const a = parseIPv6(text);
  if (!a)
    return r.problem(name, `${name} must be an IPv6 address such as fd00:2::11, got ${JSON.stringify(text)}`, pos);
  const reserved = reservedIPv6(a);
  if (reserved)
    return r.problem(
      name,
      `${name} ${text} ${reserved}: peers cannot reach it; give this host's global or unique local IPv6 address`,
      pos,
    );
  if (overlay6 && contains(overlay6, a)) {
    return r.problem(
      name,
      `${name} ${text} is inside the IPv6 overlay network ${formatPrefix(overlay6)} (network.ipv6.cidr); give this host's underlay address`,
      pos,
    );
  }
  return a;
}

function readHost(r: YamlReader, e: Entry | undefined, env: Env, overlay6?: Prefix): HostSpec | undefined {
  const keys = [
    'interface',
    'interfaceRegex',
    'canReach',
    'publicIP',
    'publicIPv6',
    'ipMasq',
    'mtu',
    'subnetFile',
    'leaseTTL',
    'leaseRenewMargin',
    'listen',
    'etcdGrace',
    'stateDir',
    'onOutputsChanged',
    'wireguardKeyFile',
    'wireguardPSKFile',
    'followConfig',
    'configHoldDown',
    'configMinInterval',
    'maxPeers',
  ];
  const m = r.map(e?.node ?? null, 'host', keys, e?.keyPos);
  if (!m) return undefined;
  const chosen = ['interface', 'interfaceRegex', 'canReach'].filter((k) => m.has(k));
  if (chosen.length > 1) {
    const second = m.get(chosen[1] ?? '');
    r.problem(
      `host.${chosen[1] ?? ''}`,
      `host.${chosen.join(' and host.')} are alternatives; give only one`,
      second?.keyPos,
    );
  }
  const iface = env.WEFT_INTERFACE || r.string(m.get('interface'), 'an interface name');
  const regexText = env.WEFT_INTERFACE ? undefined : r.string(m.get('interfaceRegex'), 'a regular expression');
  if (regexText !== undefined) {
    try {
      new RegExp(regexText);
    } catch (err) {
      const x = m.get('interfaceRegex');
      r.problem(
        'host.interfaceRegex',
        `host.interfaceRegex is not a valid regular expression: ${(err as Error).message}`,
        x ? r.at(x) : undefined,
      );
    }
  }
  const canReach = env.WEFT_INTERFACE ? undefined : ipv4Of(r, m.get('canReach'));
  const envIP = env.WEFT_PUBLIC_IP;
  const publicIP = envIP
    ? (parseIPv4(envIP) ??
      r.problem('WEFT_PUBLIC_IP', `WEFT_PUBLIC_IP must be an IPv4 address, got ${JSON.stringify(envIP)}`, undefined))
    : ipv4Of(r, m.get('publicIP'));
  const publicIPv6 = readPublicIPv6(r, m.get('publicIPv6'), env.WEFT_PUBLIC_IPV6, overlay6);
  const ttl = durationSeconds(r, m.get('leaseTTL'), DEFAULTS.leaseTTL, 5);
  const margin = durationSeconds(r, m.get('leaseRenewMargin'), DEFAULTS.leaseRenewMargin, 1);
  if (ttl !== undefined && margin !== undefined && margin >= ttl) {
    const x = m.get('leaseRenewMargin') ?? m.get('leaseTTL');
    r.problem(
      'host.leaseRenewMargin',
      `host.leaseRenewMargin (${margin}s) must be shorter than host.leaseTTL (${ttl}s)`,
      x ? r.at(x) : undefined,
    );
  }
  const listen = readListen(r, m.get('listen'));
  const grace = durationSeconds(r, m.get('etcdGrace'), DEFAULTS.etcdGrace, 1);
  const subnetFile = absPath(r, m.get('subnetFile'), DEFAULTS.subnetFile);
  const stateDir = absPath(r, m.get('stateDir'), DEFAULTS.stateDir);
  const onOutputsChanged = absPath(r, m.get('onOutputsChanged'), undefined);
  const mtu = r.integer(m.get('mtu'), 576, 65535);
  const wgKeyFile = absPath(r, m.get('wireguardKeyFile'), `${stateDir ?? DEFAULTS.stateDir}/wireguard/private.key`);
  const wgPSKFile = m.has('wireguardPSKFile') ? absPath(r, m.get('wireguardPSKFile'), '') : undefined;
  // `wg set` takes them as single arguments of a line split on spaces.
  for (const [k, v] of [
    ['wireguardKeyFile', wgKeyFile],
    ['wireguardPSKFile', wgPSKFile],
  ] as const) {
    const x = m.get(k);
    if (v !== undefined && /\s/.test(v) && x)
      r.problem(
        x.path,
        `${x.path} must not contain spaces (the WireGuard key file paths are passed to wg), got ${JSON.stringify(v)}`,
        r.at(x),
      );
  }
  const ipMasq = r.boolean(m.get('ipMasq')) ?? true;
  const followConfig = r.boolean(m.get('followConfig')) ?? true;
  const holdDown = durationSeconds(r, m.get('configHoldDown'), DEFAULTS.configHoldDown, 1);
  const minInterval = durationSeconds(r, m.get('configMinInterval'), DEFAULTS.configMinInterval, 1);
  const maxPeers = r.integer(m.get('maxPeers'), 1, 10_000_000) ?? DEFAULT_MAX_PEERS;
  if (
    ttl === undefined ||
    margin === undefined ||
    listen === undefined ||
    subnetFile === undefined ||
    grace === undefined ||
    stateDir === undefined ||
    wgKeyFile === undefined
  )
    return undefined;
  if (holdDown === undefined || minInterval === undefined) return undefined;
  return {
    ...opt('interface', iface),
    ...opt('interfaceRegex', regexText),
    ...opt('canReach', canReach),
    ...opt('publicIP', publicIP),
    ...opt('publicIPv6', publicIPv6),
    ipMasq,
    ...opt('mtu', mtu),
    subnetFile,
    leaseTTLSeconds: ttl,
    leaseRenewMarginSeconds: margin,
    ...(listen ? { listen } : {}),
    etcdGraceSeconds: grace,
    stateDir,
    wireguardKeyFile: wgKeyFile,
    ...opt('wireguardPSKFile', wgPSKFile),
    ...opt('onOutputsChanged', onOutputsChanged),
    followConfig,
    configHoldDownSeconds: holdDown,
    configMinIntervalSeconds: minInterval,
    maxPeers,
  };
}

function readOutputs(r: YamlReader, e: Entry | undefined): OutputsSpec | undefined {
  const m = r.map(e?.node ?? null, 'outputs', ['docker', 'dockerDaemonJson', 'podman'], e?.keyPos);
  if (!m) return undefined;
  let docker: OutputsSpec['docker'];
  const d = m.get('docker');
  if (d) {
    const dm = r.map(d.node, 'outputs.docker', ['file', 'key', 'ipv6'], d.keyPos);
    const file = absPath(r, dm?.get('file'), DEFAULTS.dockerFile);
    const keyEntry = dm?.get('key');
    const key = keyEntry ? r.string(keyEntry) : DEFAULTS.dockerKey;
    if (key !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(key) && keyEntry)
      r.problem(
        keyEntry.path,
        `${keyEntry.path} must be a shell variable name, got ${JSON.stringify(key)}`,
        r.at(keyEntry),
      );
    const ipv6 = r.boolean(dm?.get('ipv6'));
    if (file !== undefined && key !== undefined) docker = { file, key, ...opt('ipv6', ipv6) };
  }
  const daemonJson = absPath(r, m.get('dockerDaemonJson'), undefined);
  const podman = absPath(r, m.get('podman'), undefined);
  return { ...opt('docker', docker), ...opt('dockerDaemonJson', daemonJson), ...opt('podman', podman) };
}

function deepFreeze<T>(o: T): T {
  if (typeof o === 'object' && o !== null && !Object.isFrozen(o)) {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
