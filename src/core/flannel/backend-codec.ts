/**
 * What core/flannel needs of a backend: its options codec and what its leases carry. As flanneld
 * splits it: the network config keeps the Backend object as JSON (a RawMessage) and each backend
 * decodes its own options from it (its New()); a lease keeps BackendData / BackendV6Data as JSON
 * and the backend that wrote it says what it means. Core cannot import src/backends/: the registry (src/backends/index.ts) is passed
 * in where these are needed, and a backend type core has no entry for is simply unknown.
 */
import type { Decoded, JsonNode } from './gojson.js';
import type { LeaseAttrs } from './lease.js';

/** A backend's options, decoded by the backend (defaults filled as flanneld fills them): opaque to core. */
export type BackendOptions = object;

/** A backend's reading of a lease's BackendData or BackendV6Data: opaque to core. */
export type LeaseData = object;

/**
 * One setting a live change compares (`Backend.VNI: 1`), defaults applied. A secret (WireGuard's
 * PSK) is compared by `secret` and shown as `value` only (`(set)`); when only the secret
 * differs, the change is shown as `replaced`.
 */
export interface BackendSetting {
  readonly name: string;
  readonly value: string;
  readonly secret?: { readonly compared: string; readonly replaced: string };
}

/** What `weft leases`, `weft plan` and `weft doctor` show of a lease's data: flannel's fields, where the backend has them. */
export interface LeaseDataView {
  readonly vtepMAC?: string;
  readonly vni?: number;
  readonly publicKey?: string;
}

/** What a backend's leases carry: the BackendType it writes and how its data is read. */
export interface LeaseCodec {
  /** The BackendType its leases carry; absent: none (flannel's `alloc` writes `{"PublicIP":…,"PublicIPv6":null}`). */
  readonly leaseType?: string;
  /**
   * Where its data lives. `half`: BackendData belongs to the IPv4 half and BackendV6Data to the
   * IPv6 half, each judged alone (a bad one makes only its half unusable: vxlan). `lease`: one
   * BackendData for the whole lease (BackendV6Data when it is absent), and a bad one rejects the
   * lease (wireguard). Absent: the backend's leases carry no data (host-gw).
   */
  readonly dataScope?: 'half' | 'lease';
  /** Read data as flanneld reads it (json.Unmarshal into the backend's lease attrs); `field` names it in messages. */
  decodeData?(text: string | undefined, field: 'BackendData' | 'BackendV6Data'): Decoded<LeaseData>;
  /** Why data flanneld reads cannot be trusted all the same (a zero VTEP MAC floods traffic to its writer), or undefined. */
  untrusted?(data: LeaseData, field: 'BackendData' | 'BackendV6Data'): string | undefined;
  /** What the data shows (`weft leases` columns, this host's own lease). */
  viewData?(data: LeaseData): LeaseDataView;
  /**
   * Why a lease of this backend cannot be programmed under the network's `options`: the setting
   * that differs and its values in the lease and in the network, e.g. `VNI`, `2` and `1`;
   * undefined when it fits.
   */
  mismatch?(data: LeaseData, options: BackendOptions | undefined): Mismatch | undefined;
}

/** A setting in which a lease differs from the network (LeaseCodec.mismatch). */
export interface Mismatch {
  readonly setting: string;
  readonly lease: string;
  readonly network: string;
}

/** A backend as core/flannel sees it: its options codec and what its leases carry. */
export interface FlannelBackend {
  /** flannel's Backend.Type, lower-cased (the registry's key). */
  readonly type: string;
  /** Decode its options from the stored Backend object with flanneld's messages (throws ConfigError); absent: it has none. */
  decodeOptions?(node: JsonNode): BackendOptions;
  /** The settings a live change compares, in the order they are shown. */
  settings?(options: BackendOptions | undefined): readonly BackendSetting[];
  readonly lease: LeaseCodec;
}

/** The registry as core/flannel sees it (src/backends/index.ts BACKENDS). */
export type FlannelBackends = ReadonlyMap<string, FlannelBackend>;

/** The codec of leases whose BackendType is `backendType` (absent: none), when a backend writes such leases. */
export function leaseCodecOf(backends: FlannelBackends, backendType: string | undefined): LeaseCodec | undefined {
  for (const b of backends.values()) if (b.lease.leaseType === backendType) return b.lease;
  return undefined;
}

/** Is this lease one `backend` writes (its BackendType, or none for a backend that writes none)? */
export const isOwnLease = (backend: FlannelBackend, attrs: { readonly backendType?: string | undefined }): boolean =>
  attrs.backendType === backend.lease.leaseType;

/** A lease half's data as a backend judges it: flanneld's reading, then weft's trust checks. */
export function judgeData(
  codec: LeaseCodec,
  text: string | undefined,
  field: 'BackendData' | 'BackendV6Data',
): Decoded<LeaseData> | undefined {
  if (!codec.decodeData) return undefined;
  const d = codec.decodeData(text, field);
  if (!d.ok) return d;
  const why = codec.untrusted?.(d.value, field);
  return why === undefined ? d : { ok: false, reason: why };
}

/** The registry's types as a sentence: `vxlan, host-gw or wireguard` (`and` with `conjunction`). */
export function typeList(types: readonly string[], conjunction: 'or' | 'and' = 'or'): string {
  return types.length <= 1
    ? types.join('')
    : `${types.slice(0, -1).join(', ')} ${conjunction} ${types[types.length - 1] ?? ''}`;
}

/** What a lease publishes per half, or for the whole lease, as `codec` reads it (flanneld's reading, no trust checks). */
export interface PublishedView {
  readonly v4?: LeaseDataView;
  readonly v6?: LeaseDataView;
  readonly lease?: LeaseDataView;
}

/** What this host's own lease publishes, read by its backend's `codec` (`weft plan`, `weft doctor`: the MACs, the public key). */
export function publishedView(codec: LeaseCodec | undefined, attrs: LeaseAttrs): PublishedView {
  const read = (text: string | undefined, field: 'BackendData' | 'BackendV6Data'): LeaseDataView | undefined => {
    const d = text === undefined ? undefined : codec?.decodeData?.(text, field);
    return d?.ok ? codec?.viewData?.(d.value) : undefined;
  };
  if (codec?.dataScope === 'lease') {
    const lease = read(attrs.backendData ?? attrs.backendV6Data, 'BackendData');
    return lease ? { lease } : {};
  }
  if (codec?.dataScope !== 'half') return {};
  const v4 = read(attrs.backendData, 'BackendData');
  const v6 = read(attrs.backendV6Data, 'BackendV6Data');
  return { ...(v4 ? { v4 } : {}), ...(v6 ? { v6 } : {}) };
}
