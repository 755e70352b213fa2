// Stored bytes read as flanneld reads them. Each case gives flanneld's outcome, worked out from
// flannel's code (cite) and Go's encoding/json; weft's decoder must agree (accept with the same
// values, or reject) unless the case names a deliberate difference, where weft must do the
// opposite. Stages, each the whole of what flanneld does with the bytes at that point:
//   config  — pkg/subnet/config.go ParseConfig + CheckNetworkConfig (+ vxlan.go parseVXLANConfig
//             for a vxlan Backend); weft: decodeNetworkConfig + checkNetworkConfig
//   backend — the same, then pkg/backend/manager.go GetBackend; weft: backendFor
//   key     — pkg/subnet/subnet.go ParseSubnetKey; weft: parseSubnetKey
//   lease   — pkg/subnet/etcd/registry.go kvToIPLease: json.Unmarshal into lease.LeaseAttrs;
//             weft: decodeLeaseAttrs
//   vxlan   — that, then vxlan_network.go handleSubnetEvents: json.Unmarshal(BackendData,
//             &vxlanLeaseAttrs); weft: decodeLeaseAttrs + decodeVxlanData
// An input is text; `stored(...)` makes it from bytes as the etcd adapter does (core/flannel/go-text.ts
// storedText), for the cases where stored bytes are not valid UTF-8.
import test from 'ava';
import { formatIP, formatPrefix } from '../../src/core/net/cidr.js';
import { checkNetworkConfig, effectiveSettings } from '../../src/core/flannel/config-check.js';
import { decodeLeaseAttrs, parseSubnetKey } from '../../src/core/flannel/lease.js';
import { decodeVxlanData } from '../../src/backends/vxlan-lease.js';
import { wireguardOptions } from '../../src/backends/wireguard-options.js';
import { ConfigError, decodeNetworkConfig } from '../../src/core/flannel/network-config.js';
import { storedText } from '../../src/core/flannel/go-text.js';
import { backendFor } from '../../src/backends/index.js';
import { BACKENDS } from '../helpers/backends.js';

type Stage = 'config' | 'backend' | 'key' | 'lease' | 'vxlan';
type Outcome =
  | { readonly ok: true; readonly values: Readonly<Record<string, string>> }
  | { readonly ok: false; readonly reason: string };

interface Case {
  readonly stage: Stage;
  readonly input: string;
  readonly flanneld: 'accept' | 'reject';
  /** The flannel (or Go) function whose code gives flanneld's outcome. */
  readonly cite: string;
  /** Values weft must read when it accepts (a subset of the stage's summary). */
  readonly want?: Readonly<Record<string, string>>;
  /** weft's outcome is the opposite of flanneld's, on purpose: why. */
  readonly deliberate?: string;
  /** For a rejection by weft: what the reason must say. */
  readonly reason?: RegExp;
}

const configOutcome = (text: string): Outcome => {
  try {
    const c = checkNetworkConfig(decodeNetworkConfig(text, BACKENDS));
    return {
      ok: true,
      values: {
        ...Object.fromEntries(effectiveSettings(c)),
        ...(wireguardOptions(c).psk !== undefined ? { psk: wireguardOptions(c).psk } : {}),
      },
    };
  } catch (e) {
    if (e instanceof ConfigError) return { ok: false, reason: e.message };
    throw e;
  }
};

const RUN: Readonly<Record<Stage, (input: string) => Outcome>> = {
  config: configOutcome,
  backend: (text) => {
    const c = configOutcome(text);
    if (!c.ok) return c;
    try {
      return { ok: true, values: { type: backendFor(c.values['Backend.Type'] ?? '').type } };
    } catch (e) {
      if (e instanceof ConfigError) return { ok: false, reason: e.message };
      throw e;
    }
  },
  key: (text) => {
    const k = parseSubnetKey(text);
    if (!k) return { ok: false, reason: 'no subnet' };
    return {
      ok: true,
      values: {
        v4: k.v4 ? formatPrefix(k.v4) : '',
        v6: k.v6 ? formatPrefix(k.v6) : '',
        canonical: String(k.canonical),
      },
    };
  },
  lease: (text) => {
    const a = decodeLeaseAttrs(text);
    if (!a.ok) return a;
    const v = a.value;
    return {
      ok: true,
      values: {
        publicIP: formatIP(v.publicIP),
        publicIPv6: v.publicIPv6 ? formatIP(v.publicIPv6) : '',
        backendType: v.backendType ?? '',
        backendData: v.backendData ?? '',
      },
    };
  },
  vxlan: (text) => {
    const a = decodeLeaseAttrs(text);
    if (!a.ok) return a;
    const d = decodeVxlanData(a.value.backendData);
    return d.ok
      ? { ok: true, values: { vni: d.value.vni === undefined ? '' : String(d.value.vni), vtepMAC: d.value.vtepMAC } }
      : d;
  },
};

const PARSE = 'pkg/subnet/config.go ParseConfig';
const CHECK = 'pkg/subnet/config.go CheckNetworkConfig';
const LITERAL = 'encoding/json literalStore';
const OBJECT = 'encoding/json object (byExactName, then byFoldedName with foldName)';
const IP4 = 'pkg/ip/ipnet.go IP4.UnmarshalJSON (bytes.Trim quotes, ParseIP4 = net.ParseIP + To4)';
const IP4NET = 'pkg/ip/ipnet.go IP4Net.UnmarshalJSON (bytes.Trim quotes, net.ParseCIDR, To4)';
const IP6 = 'pkg/ip/ip6net.go IP6.UnmarshalJSON (bytes.Trim quotes, ParseIP6 = net.ParseIP)';
const IP6NET = 'pkg/ip/ip6net.go IP6Net.UnmarshalJSON (bytes.Trim quotes, net.ParseCIDR)';
const VXCFG = 'pkg/backend/vxlan/vxlan.go parseVXLANConfig (VXLANConfig: int and bool fields)';
const BTYPE = 'pkg/subnet/config.go parseBackendType (struct { Type string })';
const KEY = 'pkg/subnet/subnet.go ParseSubnetKey (subnetRegex, net.ParseIP + To4, strconv.ParseUint)';
const LEASE = 'pkg/subnet/etcd/registry.go kvToIPLease (json.Unmarshal into pkg/lease LeaseAttrs)';
const VXLEASE =
  'pkg/backend/vxlan/vxlan_network.go handleSubnetEvents (json.Unmarshal into vxlanLeaseAttrs: VNI uint32, VtepMAC hardwareAddr)';
const HWADDR = 'pkg/backend/vxlan/vxlan.go hardwareAddr.UnmarshalJSON (needs quotes, net.ParseMAC)';

const N16 = { Network: '10.3.0.0/16', SubnetLen: '24', SubnetMin: '10.3.1.0', SubnetMax: '10.3.255.0' };
const net16 = (extra: string): string => `{"Network":"10.3.0.0/16"${extra}}`;
const vxBackend = (opts: string): string => net16(`,"Backend":{"Type":"vxlan"${opts}}`);
const V6ONLY = '"EnableIPv4":false,"EnableIPv6":true';
const MAC = '02:aa:bb:cc:dd:ee';
const vxLease = (data: string): string =>
  `{"PublicIP":"192.0.2.2","PublicIPv6":null,"BackendType":"vxlan","BackendData":${data}}`;
/** What the etcd adapter makes of stored bytes: text pieces (UTF-8) and byte runs. */
const stored = (...parts: (string | readonly number[])[]): string =>
  storedText(Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p)))));
const JSON_STRING = 'encoding/json unquote (utf8.DecodeRune: each byte of invalid UTF-8 is RuneError, 1)';
const TOLOWER = 'pkg/backend/manager.go GetBackend (strings.ToLower: unicode.ToLower per rune, the simple mapping)';
const WGKEY = 'pkg/backend/wireguard/device.go wgtypes.ParseKey (base64.StdEncoding, not strict)';
const wgBackend = (psk: string): string => net16(`,"Backend":{"Type":"wireguard","PSK":"${psk}"}`);
const PSK = 'YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE=';
const NESTED_5000 = `{"PublicIP":"10.0.0.1","BackendData":${'['.repeat(5000)}${']'.repeat(5000)}}`;

const CASES: readonly Case[] = [
  // --- stored configs ---------------------------------------------------------------------------
  {
    stage: 'config',
    input: '{ "network": "10.3.0.0/16" }',
    flanneld: 'accept',
    cite: `${PARSE}; pkg/subnet/config_test.go`,
    want: { ...N16, 'Backend.Type': 'udp' },
  },
  {
    stage: 'config',
    input: net16(',"SubnetLen":null'),
    flanneld: 'accept',
    cite: `${LITERAL} (null into uint is a no-op); ${CHECK}`,
    want: N16,
  },
  {
    stage: 'config',
    input: net16(',"SubnetLen":24,"SubnetLen":null'),
    flanneld: 'accept',
    cite: `${LITERAL} (null leaves the earlier 24)`,
    want: N16,
  },
  {
    stage: 'config',
    input: net16(',"SubnetLen":26.0'),
    flanneld: 'reject',
    cite: `${LITERAL} (strconv.ParseUint of the token)`,
    reason: /cannot unmarshal number 26\.0 into Go struct field Config\.SubnetLen of type uint/,
  },
  { stage: 'config', input: net16(',"SubnetLen":2.6e1'), flanneld: 'reject', cite: `${LITERAL} (strconv.ParseUint)` },
  {
    stage: 'config',
    input: net16(',"SubnetLen":-0'),
    flanneld: 'reject',
    cite: `${LITERAL} (ParseUint takes no sign)`,
  },
  { stage: 'config', input: net16(',"SubnetLen":1e2'), flanneld: 'reject', cite: `${LITERAL} (strconv.ParseUint)` },
  {
    stage: 'config',
    input: net16(',"SubnetLen":18446744073709551616'),
    flanneld: 'reject',
    cite: `${LITERAL} (overflow of uint)`,
  },
  {
    stage: 'config',
    input: net16(',"SubnetLen":18446744073709551615'),
    flanneld: 'reject',
    cite: `${CHECK} (SubnetLen must be less than /31)`,
    reason: /^SubnetLen must be less than \/31$/,
  },
  { stage: 'config', input: net16(',"SubnetLen":"24"'), flanneld: 'reject', cite: `${LITERAL} (string into uint)` },
  { stage: 'config', input: net16(',"SubnetLen":true'), flanneld: 'reject', cite: `${LITERAL} (bool into uint)` },
  {
    stage: 'config',
    input: net16(',"SubnetLen":28'),
    flanneld: 'accept',
    cite: CHECK,
    want: { SubnetLen: '28', SubnetMin: '10.3.0.16', SubnetMax: '10.3.255.240' },
  },
  {
    stage: 'config',
    input: '{"Network":"10.3.0.0/016"}',
    flanneld: 'accept',
    cite: `${IP4NET} (net.ParseCIDR's dtoi takes leading zeros)`,
    want: N16,
  },
  {
    stage: 'config',
    input: '{"Network":"10.3.5.7/16"}',
    flanneld: 'accept',
    cite: `${IP4NET} (the network address)`,
    want: N16,
  },
  {
    stage: 'config',
    input: '{"Network":"::ffff:10.3.0.0/112"}',
    flanneld: 'reject',
    cite: `${IP4NET} keeps the 128-bit mask length 112; ${CHECK}`,
    reason: /^network is too small\. Minimum useful network prefix is \/28$/,
  },
  {
    stage: 'config',
    input: '{"Network":"::ffff:10.3.0.0/112","SubnetLen":24}',
    flanneld: 'reject',
    cite: `${IP4NET}; ${CHECK}`,
    reason: /^network must be able to accommodate at least four subnets$/,
  },
  {
    stage: 'config',
    input: `{${V6ONLY},"IPv6Network":"fc00::/48","Network":"::ffff:10.3.0.0/112"}`,
    flanneld: 'accept',
    cite: `${IP4NET}; ${CHECK} (IPv4 checks only when EnableIPv4)`,
    want: { IPv6Network: 'fc00::/48', IPv6SubnetLen: '64' },
  },
  {
    stage: 'config',
    input: '{"Network":"::ffff:10.3.0.0/95"}',
    flanneld: 'reject',
    cite: `${IP4NET} (masked below the ffff: To4 is nil)`,
    reason: /invalid IPv4 CIDR format/,
  },
  {
    stage: 'config',
    input: '{"Network":"fc00::/8"}',
    flanneld: 'reject',
    cite: IP4NET,
    reason: /invalid IPv4 CIDR format/,
  },
  {
    stage: 'config',
    input: '{"Network":null}',
    flanneld: 'reject',
    cite: `${LITERAL} (an Unmarshaler gets null); ${IP4NET}`,
    reason: /invalid CIDR address: null/,
  },
  {
    stage: 'config',
    input: String.raw`{"Network":"10.3.0.0\/16"}`,
    flanneld: 'reject',
    cite: `${IP4NET} (the raw token: the escape is not decoded)`,
  },
  { stage: 'config', input: '{"Network":"10.3.0.0/33"}', flanneld: 'reject', cite: `${IP4NET} (net.ParseCIDR)` },
  {
    stage: 'config',
    input: '{"Network":"0.0.0.0/0"}',
    flanneld: 'reject',
    cite: `${CHECK} (Network.Empty)`,
    reason: /^please define a correct Network parameter in the flannel config$/,
  },
  {
    stage: 'config',
    input: net16(',"SubnetMin":"::ffff:10.3.5.0"'),
    flanneld: 'accept',
    cite: `${IP4} (To4 of an IPv4-mapped address)`,
    want: { SubnetMin: '10.3.5.0' },
  },
  {
    stage: 'config',
    input: net16(',"SubnetMin":"::ffff:a03:500"'),
    flanneld: 'accept',
    cite: IP4,
    want: { SubnetMin: '10.3.5.0' },
  },
  {
    stage: 'config',
    input: net16(',"SubnetMin":null'),
    flanneld: 'reject',
    cite: `${LITERAL}; ${IP4} (ParseIP4("null") fails)`,
    reason: /invalid IP address format/,
  },
  {
    stage: 'config',
    input: net16(',"SubnetMin":"::"'),
    flanneld: 'reject',
    cite: IP4,
    reason: /invalid IPv4 address format/,
  },
  {
    stage: 'config',
    input: net16(',"SubnetMin":"010.3.5.0"'),
    flanneld: 'reject',
    cite: `${IP4} (netip: leading zeros refused)`,
  },
  {
    stage: 'config',
    input: net16(',"SubnetMin":"0.0.0.0"'),
    flanneld: 'accept',
    cite: `${CHECK} (IP4(0) means unset)`,
    want: N16,
  },
  {
    stage: 'config',
    input: net16(',"SubnetMax":"10.3.1.128"'),
    flanneld: 'reject',
    cite: CHECK,
    reason: /^SubnetMax is not on a SubnetLen boundary: 10\.3\.1\.128$/,
  },
  {
    stage: 'config',
    input: net16(',"EnableIPv4":null'),
    flanneld: 'accept',
    cite: `${LITERAL} (null into bool is a no-op: stays true)`,
    want: N16,
  },
  { stage: 'config', input: net16(',"EnableIPv4":"true"'), flanneld: 'reject', cite: `${LITERAL} (string into bool)` },
  { stage: 'config', input: net16(',"EnableNFTables":null'), flanneld: 'accept', cite: LITERAL, want: N16 },
  {
    stage: 'config',
    input: '{"ſubnetLen":28,"Network":"10.3.0.0/16"}',
    flanneld: 'accept',
    cite: `${OBJECT} (U+017F folds to S)`,
    want: { SubnetLen: '28' },
  },
  {
    stage: 'config',
    input: '{"Networ\u212a":"10.3.0.0/16"}',
    flanneld: 'accept',
    cite: `${OBJECT} (U+212A folds to K)`,
    want: N16,
  },
  {
    stage: 'config',
    input: String.raw`{"\u004eetwork":"10.3.0.0/16"}`,
    flanneld: 'accept',
    cite: `${OBJECT} (the key is unquoted first)`,
    want: N16,
  },
  {
    stage: 'config',
    input: '{"NETWORK":"10.3.0.0/16","network":"10.4.0.0/16"}',
    flanneld: 'accept',
    cite: `${OBJECT}; the last duplicate wins`,
    want: { Network: '10.4.0.0/16' },
  },
  {
    stage: 'config',
    input: '{"Network":"10.3.0.0/16","SubnetLen":"x","SubnetLen":24}',
    flanneld: 'reject',
    cite: `${LITERAL} (saveError keeps the first UnmarshalTypeError)`,
  },
  {
    stage: 'config',
    input: '{"Network":"garbage","Network":"10.3.0.0/16"}',
    flanneld: 'reject',
    cite: `${LITERAL} (an Unmarshaler's error fails the decode)`,
  },
  {
    stage: 'config',
    input: net16(',"BackendType":5'),
    flanneld: 'accept',
    cite: `${PARSE} (BackendType is json:"-")`,
    want: N16,
  },
  {
    stage: 'config',
    input: net16(',"Other":[1,{"x":null}],"subnetlen":25'),
    flanneld: 'accept',
    cite: `${OBJECT} (unknown keys ignored; subnetlen is SubnetLen)`,
    want: { SubnetLen: '25' },
  },
  {
    stage: 'config',
    input: `{${V6ONLY},"IPv6Network":"fc00::/48","IPv6SubnetMin":null}`,
    flanneld: 'accept',
    cite: `${LITERAL} (null sets the *ip.IP6 to nil); ${CHECK}`,
    want: { IPv6SubnetMin: 'fc00:0:0:1::' },
  },
  {
    stage: 'config',
    input: `{${V6ONLY},"IPv6Network":"fc00::/48","IPv6SubnetMin":"0.0.0.0"}`,
    flanneld: 'reject',
    cite: `${IP6} (::ffff:0.0.0.0 is not empty); ${CHECK}`,
    reason: /^IPv6SubnetMin is not in the range of the IPv6Network$/,
  },
  {
    stage: 'config',
    input: `{${V6ONLY},"IPv6Network":"fc00::/048"}`,
    flanneld: 'accept',
    cite: IP6NET,
    want: { IPv6Network: 'fc00::/48' },
  },
  { stage: 'config', input: `{${V6ONLY},"IPv6Network":null}`, flanneld: 'reject', cite: IP6NET },
  {
    stage: 'config',
    input: `{"IPv6Network":"garbage","Network":"10.3.0.0/16"}`,
    flanneld: 'reject',
    cite: `${PARSE} (decode errors do not depend on EnableIPv6)`,
  },
  {
    stage: 'config',
    input: `{${V6ONLY},"IPv6Network":"10.0.0.0/8"}`,
    flanneld: 'reject',
    cite: `${IP6NET} (::ffff:10.0.0.0/8); ${CHECK} (IPv6SubnetMin not on a /64 boundary)`,
  },
  {
    stage: 'config',
    input: `{${V6ONLY},"IPv6Network":"10.0.0.0/8","IPv6SubnetLen":104}`,
    flanneld: 'accept',
    cite: `${IP6NET}; ${CHECK}`,
    deliberate: 'an IPv4 CIDR as IPv6Network (flannel-compat.md §12 item 20)',
    reason: /IPv6Network must be an IPv6 CIDR/,
  },
  { stage: 'config', input: '{}', flanneld: 'reject', cite: CHECK },
  {
    stage: 'config',
    input: 'null',
    flanneld: 'reject',
    cite: `${LITERAL} (null into the struct is a no-op); ${CHECK}`,
  },
  { stage: 'config', input: '[]', flanneld: 'reject', cite: 'encoding/json array (array into struct)' },
  { stage: 'config', input: '', flanneld: 'reject', cite: 'encoding/json checkValid' },
  { stage: 'config', input: '{"Network":"10.3.0.0/16"} x', flanneld: 'reject', cite: 'encoding/json checkValid' },
  {
    stage: 'config',
    input: net16(`,"Pad":"${'x'.repeat(70000)}"`),
    flanneld: 'accept',
    cite: PARSE,
    deliberate: 'a config over 64 KiB is refused unread',
    reason: /over the 65,536-byte limit/,
  },
  {
    stage: 'config',
    input: net16(`,"X":${'['.repeat(40)}${']'.repeat(40)}`),
    flanneld: 'accept',
    cite: `${PARSE} (Go's limit is depth 10000)`,
    deliberate: 'nesting deeper than 32 levels is refused',
    reason: /nested deeper than 32 levels/,
  },
  {
    stage: 'config',
    input: stored('{"Network":"10.3.0.0/16","Pad":"', new Array(30000).fill(0xff), '"}'),
    flanneld: 'accept',
    cite: `${PARSE}; ${JSON_STRING}`,
    want: N16,
  },
  {
    stage: 'config',
    input: stored('{"Network":"10.3.0.0/16","Pad":"', new Array(66000).fill(0xff), '"}'),
    flanneld: 'accept',
    cite: PARSE,
    deliberate: 'a config over 64 KiB as stored is refused unread',
    reason: /^the network config is unreadable: value is 66,034 bytes, over the 65,536-byte limit$/,
  },
  {
    stage: 'config',
    input: wgBackend(PSK),
    flanneld: 'accept',
    cite: WGKEY,
    want: { 'Backend.PSK': '(set)', psk: PSK },
  },
  {
    stage: 'config',
    input: wgBackend(`${PSK.slice(0, 42)}F=`),
    flanneld: 'accept',
    cite: `${WGKEY}: non-zero padding bits, the same 32 bytes`,
    want: { 'Backend.PSK': '(set)', psk: PSK },
  },
  {
    stage: 'config',
    input: wgBackend(`${PSK.slice(0, 20)}\\n${PSK.slice(20)}`),
    flanneld: 'accept',
    cite: `${WGKEY} (CR and LF ignored)`,
    want: { psk: PSK },
  },
  {
    stage: 'config',
    input: wgBackend(PSK.slice(0, 43)),
    flanneld: 'reject',
    cite: `${WGKEY} (padding required)`,
    reason: /could not parse psk/,
  },
  {
    stage: 'config',
    input: wgBackend(`${PSK.slice(0, 43)}==`),
    flanneld: 'reject',
    cite: WGKEY,
    reason: /could not parse psk/,
  },
  {
    stage: 'config',
    input: net16(',"Backend":"vxlan"'),
    flanneld: 'reject',
    cite: BTYPE,
    reason: /^error decoding Backend property of config: json: cannot unmarshal string/,
  },
  { stage: 'config', input: net16(',"Backend":{"Type":5}'), flanneld: 'reject', cite: BTYPE },
  {
    stage: 'config',
    input: net16(',"Backend":null'),
    flanneld: 'accept',
    cite: `${LITERAL} (RawMessage keeps null); ${BTYPE}`,
    want: { 'Backend.Type': '' },
  },
  { stage: 'config', input: net16(',"Backend":{}'), flanneld: 'accept', cite: BTYPE, want: { 'Backend.Type': '' } },
  {
    stage: 'config',
    input: net16(',"Backend":{"Type":"VXLAN"}'),
    flanneld: 'accept',
    cite: `${BTYPE}; ${VXCFG} (VNI defaults to 1)`,
    want: { 'Backend.Type': 'vxlan', 'Backend.VNI': '1', 'Backend.Port': '8472' },
  },
  {
    stage: 'config',
    input: vxBackend(',"VNI":null,"Port":null,"DirectRouting":null'),
    flanneld: 'accept',
    cite: `${VXCFG}; ${LITERAL} (null is a no-op)`,
    want: { 'Backend.VNI': '1', 'Backend.Port': '8472' },
  },
  {
    stage: 'config',
    input: vxBackend(',"VNI":"1"'),
    flanneld: 'reject',
    cite: VXCFG,
    reason:
      /^error decoding VXLAN backend config: json: cannot unmarshal string into Go struct field VXLANConfig\.vni of type int$/,
  },
  {
    stage: 'config',
    input: vxBackend(',"VNI":1.0'),
    flanneld: 'reject',
    cite: `${VXCFG}; ${LITERAL} (strconv.ParseInt)`,
  },
  {
    stage: 'config',
    input: vxBackend(',"MTU":1e3'),
    flanneld: 'reject',
    cite: `${VXCFG}; ${LITERAL} (strconv.ParseInt)`,
  },
  {
    stage: 'config',
    input: vxBackend(',"VNI":-0'),
    flanneld: 'accept',
    cite: `${VXCFG}; ${LITERAL} (ParseInt("-0") is 0)`,
    want: { 'Backend.VNI': '0' },
  },
  {
    stage: 'config',
    input: vxBackend(',"vni":5,"VNI":7'),
    flanneld: 'accept',
    cite: `${OBJECT} (tag vni: exact, then folded; last wins)`,
    want: { 'Backend.VNI': '7' },
  },
  {
    stage: 'config',
    input: vxBackend(',"Port":4789,"GBP":true'),
    flanneld: 'accept',
    cite: VXCFG,
    want: { 'Backend.Port': '4789', 'Backend.GBP': 'true' },
  },
  {
    stage: 'config',
    input: vxBackend(',"VNI":16777216'),
    flanneld: 'accept',
    cite: `${VXCFG} (int; the kernel then refuses the device)`,
    deliberate: 'VNI must be 0..16777215',
    reason: /Backend\.VNI 16777216 is outside 0\.\.16777215/,
  },
  {
    stage: 'config',
    input: vxBackend(',"VNI":-1'),
    flanneld: 'accept',
    cite: `${VXCFG} (int; uint32(-1) then fails in the kernel)`,
    deliberate: 'VNI must be 0..16777215',
    reason: /Backend\.VNI -1 is outside/,
  },
  {
    stage: 'config',
    input: vxBackend(',"Port":70000'),
    flanneld: 'accept',
    cite: `${VXCFG} (int; netlink truncates it to 16 bits)`,
    deliberate: 'Port must be 0..65535',
    reason: /Backend\.Port 70000 is outside 0\.\.65535/,
  },
  { stage: 'config', input: vxBackend(',"DirectRouting":"yes"'), flanneld: 'reject', cite: VXCFG },
  {
    stage: 'config',
    input: net16(',"Backend":{"Type":"host-gw","VNI":"x"}'),
    flanneld: 'accept',
    cite: 'pkg/backend/hostgw/hostgw.go RegisterNetwork (reads no options)',
    want: { 'Backend.Type': 'host-gw' },
  },
  {
    stage: 'config',
    input: net16(',"Bac\u212aend":{"Type":"host-gw"}'),
    flanneld: 'accept',
    cite: `${OBJECT} (U+212A folds to K)`,
    want: { 'Backend.Type': 'host-gw' },
  },
  {
    stage: 'config',
    input: net16(',"Backend":{"type":"vxlan","Type":"host-gw"}'),
    flanneld: 'accept',
    cite: `${BTYPE}; last duplicate wins`,
    want: { 'Backend.Type': 'host-gw' },
  },
  // --- backend types ----------------------------------------------------------------------------
  {
    stage: 'backend',
    input: net16(',"Backend":{"Type":"constructor"}'),
    flanneld: 'reject',
    cite: 'pkg/backend/manager.go GetBackend (unknown backend type)',
    reason: /backend type "constructor" is not supported/,
  },
  {
    stage: 'backend',
    input: net16(',"Backend":{"Type":"__proto__"}'),
    flanneld: 'reject',
    cite: 'pkg/backend/manager.go GetBackend',
    reason: /backend type "__proto__" is not supported/,
  },
  {
    stage: 'backend',
    input: net16(',"Backend":{"Type":"toString"}'),
    flanneld: 'reject',
    cite: 'pkg/backend/manager.go GetBackend (strings.ToLower first)',
  },
  {
    stage: 'backend',
    input: net16(',"Backend":{"Type":"Host-GW"}'),
    flanneld: 'accept',
    cite: 'pkg/backend/manager.go GetBackend (strings.ToLower)',
    want: { type: 'host-gw' },
  },
  {
    stage: 'backend',
    input: net16(',"Backend":{"Type":"w\u0130reguard"}'),
    flanneld: 'accept',
    cite: TOLOWER,
    want: { type: 'wireguard' },
  },
  {
    stage: 'backend',
    input: net16(',"Backend":{"Type":"HOST-GW"}'),
    flanneld: 'accept',
    cite: TOLOWER,
    want: { type: 'host-gw' },
  },
  {
    stage: 'backend',
    input: net16(',"Backend":{"Type":"vxlan\u0307"}'),
    flanneld: 'reject',
    cite: `${TOLOWER} (a combining dot stays)`,
  },
  {
    stage: 'backend',
    input: stored('{"Network":"10.3.0.0/16","Backend":{"Type":"vxlan', [0xff], '"}}'),
    flanneld: 'reject',
    cite: `${JSON_STRING}; ${TOLOWER}`,
    reason: /backend type "vxlan\ufffd" is not supported/,
  },
  {
    stage: 'backend',
    input: net16(',"Backend":null'),
    flanneld: 'reject',
    cite: 'pkg/backend/manager.go GetBackend (unknown backend type: "")',
  },
  {
    stage: 'backend',
    input: '{"Network":"10.3.0.0/16"}',
    flanneld: 'accept',
    cite: `${BTYPE} (no Backend is udp); main.go registers pkg/backend/udp`,
    deliberate: 'weft implements vxlan and host-gw only',
    reason: /backend type "udp" is not supported/,
  },
  // --- subnet keys ------------------------------------------------------------------------------
  {
    stage: 'key',
    input: '10.1.2.0-24',
    flanneld: 'accept',
    cite: `${KEY}; pkg/subnet/subnet_test.go`,
    want: { v4: '10.1.2.0/24', v6: '', canonical: 'true' },
  },
  {
    stage: 'key',
    input: 'x10.1.2.0-24',
    flanneld: 'accept',
    cite: `${KEY} (the regexp is not anchored at the start)`,
    want: { v4: '10.1.2.0/24', canonical: 'false' },
  },
  {
    stage: 'key',
    input: '1.10.1.2.0-24',
    flanneld: 'accept',
    cite: `${KEY} (leftmost match starts at "10")`,
    want: { v4: '10.1.2.0/24', canonical: 'false' },
  },
  {
    stage: 'key',
    input: '10.1.2.0-024',
    flanneld: 'accept',
    cite: `${KEY} (ParseUint takes leading zeros)`,
    want: { v4: '10.1.2.0/24', canonical: 'false' },
  },
  {
    stage: 'key',
    input: '10.1.2.0-00000000000000000024',
    flanneld: 'accept',
    cite: KEY,
    want: { v4: '10.1.2.0/24', canonical: 'false' },
  },
  {
    stage: 'key',
    input: '10.1.2.0-31',
    flanneld: 'accept',
    cite: `${KEY} (5-bit length)`,
    want: { v4: '10.1.2.0/31' },
  },
  { stage: 'key', input: '10.1.2.0-32', flanneld: 'reject', cite: `${KEY} (ParseUint(…, 10, 5): 32 overflows)` },
  {
    stage: 'key',
    input: '010.1.2.0-24',
    flanneld: 'reject',
    cite: `${KEY} (the leftmost match's IP has a leading zero; no retry)`,
  },
  {
    stage: 'key',
    input: '10.1x2y0-24',
    flanneld: 'reject',
    cite: `${KEY} (unescaped dots match x and y; ParseIP fails)`,
  },
  {
    stage: 'key',
    input: '10.1.2.5-24',
    flanneld: 'accept',
    cite: `${KEY} (no alignment check)`,
    want: { v4: '10.1.2.5/24', canonical: 'true' },
  },
  {
    stage: 'key',
    input: '10.1.2.0-24&fc00::-64',
    flanneld: 'accept',
    cite: KEY,
    want: { v4: '10.1.2.0/24', v6: 'fc00::/64', canonical: 'true' },
  },
  {
    stage: 'key',
    input: '10.1.2.0-24&fc00:0::-64',
    flanneld: 'accept',
    cite: KEY,
    want: { v6: 'fc00::/64', canonical: 'false' },
  },
  { stage: 'key', input: '10.1.2.0-24&FC00::-64', flanneld: 'reject', cite: `${KEY} ([a-f\\d:] only)` },
  { stage: 'key', input: '10.1.2.0-24&fc00::-128', flanneld: 'reject', cite: `${KEY} (ParseUint(…, 10, 7))` },
  {
    stage: 'key',
    input: '0.0.0.0-0&fc00::-64',
    flanneld: 'accept',
    cite: KEY,
    want: { v4: '', v6: 'fc00::/64', canonical: 'true' },
  },
  { stage: 'key', input: '10.1.2.0-24\n', flanneld: 'reject', cite: `${KEY} (Go's $ is the end of the text)` },
  { stage: 'key', input: '10.1.2.0-24&20011::-56', flanneld: 'reject', cite: `${KEY}; pkg/subnet/subnet_test.go` },
  // --- lease values -----------------------------------------------------------------------------
  {
    stage: 'lease',
    input: '{"PublicIP":"192.0.2.2","PublicIPv6":null,"BackendType":"host-gw"}',
    flanneld: 'accept',
    cite: LEASE,
    want: { publicIP: '192.0.2.2', publicIPv6: '', backendType: 'host-gw' },
  },
  {
    stage: 'lease',
    input: '{"PublicIP":"::ffff:10.1.5.1","PublicIPv6":null}',
    flanneld: 'accept',
    cite: `${LEASE}; ${IP4}`,
    want: { publicIP: '10.1.5.1' },
  },
  { stage: 'lease', input: '{"PublicIP":null}', flanneld: 'reject', cite: `${LITERAL}; ${IP4} (ParseIP4("null"))` },
  {
    stage: 'lease',
    input: '{}',
    flanneld: 'accept',
    cite: `${LEASE} (PublicIP keeps its zero value)`,
    want: { publicIP: '0.0.0.0' },
  },
  {
    stage: 'lease',
    input: 'null',
    flanneld: 'accept',
    cite: `${LITERAL} (null into the struct is a no-op)`,
    want: { publicIP: '0.0.0.0' },
  },
  {
    stage: 'lease',
    input: String.raw`{"PublicIP":"10.1.5.\u0031"}`,
    flanneld: 'reject',
    cite: `${IP4} (the raw token)`,
  },
  {
    stage: 'lease',
    input: '{"PublicIP":"10.1.5.1","PublicIPv6":"1.2.3.4"}',
    flanneld: 'accept',
    cite: IP6,
    want: { publicIPv6: '::ffff:102:304' },
  },
  { stage: 'lease', input: '{"PublicIP":"10.1.5.1","PublicIPv6":""}', flanneld: 'reject', cite: IP6 },
  {
    stage: 'lease',
    input: '{"PublicIP":"10.1.5.1","PublicIPv6":"fe80::1%eth0"}',
    flanneld: 'reject',
    cite: `${IP6} (net.ParseIP refuses zones)`,
  },
  {
    stage: 'lease',
    input: '{"PublicIP":"10.1.5.1","BackendType":5}',
    flanneld: 'reject',
    cite: `${LITERAL} (number into string)`,
  },
  {
    stage: 'lease',
    input: '{"PublicIP":"10.1.5.1","BackendType":null}',
    flanneld: 'accept',
    cite: LITERAL,
    want: { backendType: '' },
  },
  {
    stage: 'lease',
    input: '{"PublicIP":"10.1.5.1","publicip":"10.1.5.2"}',
    flanneld: 'accept',
    cite: `${OBJECT}; last wins`,
    want: { publicIP: '10.1.5.2' },
  },
  {
    stage: 'lease',
    input: '{"PublicIP":"bad","PublicIP":"10.1.5.1"}',
    flanneld: 'reject',
    cite: `${LITERAL} (the Unmarshaler's error fails the decode)`,
  },
  {
    stage: 'lease',
    input: '{"PublicIP":"10.1.5.1","BackendData":null}',
    flanneld: 'accept',
    cite: `${LITERAL} (RawMessage.UnmarshalJSON keeps null)`,
    want: { backendData: 'null' },
  },
  {
    stage: 'lease',
    input: '{"PublicIP":"10.1.5.1","BackendData":{ "VNI" : 1 }} ',
    flanneld: 'accept',
    cite: LEASE,
    want: { backendData: '{"VNI":1}' },
  },
  { stage: 'lease', input: '{"PublicIP":"10.1.5.1"}}', flanneld: 'reject', cite: 'encoding/json checkValid' },
  {
    stage: 'lease',
    input: stored('{"PublicIP":"192.0.2.2","BackendType":"host-gw', [0xe2, 0x82], '"}'),
    flanneld: 'accept',
    cite: `${LEASE}; ${JSON_STRING}`,
    want: { backendType: 'host-gw\ufffd\ufffd' },
  },
  {
    stage: 'lease',
    input: stored(
      '{"PublicIP":"192.0.2.2","BackendType":"',
      [0xf0, 0x9f, 0x98],
      [0xed, 0xa0, 0x80],
      [0xc0, 0xaf],
      '"}',
    ),
    flanneld: 'accept',
    cite: `${LEASE}; ${JSON_STRING}`,
    want: { backendType: '\ufffd'.repeat(8) },
  },
  {
    stage: 'lease',
    input: stored('{"PublicIP":"192.0.2.2","BackendType":"', [0xf0, 0x9f, 0x98, 0x80], [0xef, 0xbf, 0xbd], '"}'),
    flanneld: 'accept',
    cite: `${LEASE}; ${JSON_STRING} (valid runes kept, U+FFFD itself too)`,
    want: { backendType: '\u{1f600}\ufffd' },
  },
  {
    stage: 'lease',
    input: stored('{"PublicIP":"192.0.2.2","X":"', new Array(4000).fill(0x80), '"}'),
    flanneld: 'accept',
    cite: `${LEASE}; ${JSON_STRING}`,
    want: { publicIP: '192.0.2.2' },
  },
  {
    stage: 'lease',
    input: stored('{"PublicIP":"192.0.2.2","X":"', new Array(4100).fill(0x80), '"}'),
    flanneld: 'accept',
    cite: LEASE,
    deliberate: 'a value over 4 KiB as stored is quarantined unread',
    reason: /^value is 4,131 bytes, over the 4,096-byte limit$/,
  },
  {
    stage: 'lease',
    input: stored('{"PublicIP":"192.0.2.2"', [0xff], '}'),
    flanneld: 'reject',
    cite: 'encoding/json checkValid (a byte that is no token)',
  },
  {
    stage: 'lease',
    input: NESTED_5000,
    flanneld: 'accept',
    cite: `${LEASE} (Go's depth limit is 10000)`,
    deliberate: 'a value over 4 KiB is quarantined unread (it used to crash every weft agent)',
    reason: /^value is 10,038 bytes, over the 4,096-byte limit$/,
  },
  // --- vxlan BackendData ------------------------------------------------------------------------
  {
    stage: 'vxlan',
    input: vxLease(`{"VNI":1,"VtepMAC":"${MAC}"}`),
    flanneld: 'accept',
    cite: VXLEASE,
    want: { vni: '1', vtepMAC: MAC },
  },
  {
    stage: 'vxlan',
    input: vxLease(`{"VtepMAC":"${MAC}"}`),
    flanneld: 'accept',
    cite: `${VXLEASE} (the VNI is never used)`,
    want: { vni: '', vtepMAC: MAC },
  },
  {
    stage: 'vxlan',
    input: vxLease(`{"VNI":null,"VtepMAC":"${MAC}"}`),
    flanneld: 'accept',
    cite: `${VXLEASE}; ${LITERAL}`,
    want: { vni: '' },
  },
  { stage: 'vxlan', input: vxLease(`{"VNI":"1","VtepMAC":"${MAC}"}`), flanneld: 'reject', cite: VXLEASE },
  {
    stage: 'vxlan',
    input: vxLease(`{"VNI":4294967296,"VtepMAC":"${MAC}"}`),
    flanneld: 'reject',
    cite: `${VXLEASE} (uint32 overflow)`,
  },
  {
    stage: 'vxlan',
    input: vxLease(`{"VNI":4294967295,"VtepMAC":"${MAC}"}`),
    flanneld: 'accept',
    cite: VXLEASE,
    want: { vni: '4294967295' },
  },
  {
    stage: 'vxlan',
    input: vxLease(`{"VNI":1.0,"VtepMAC":"${MAC}"}`),
    flanneld: 'reject',
    cite: `${VXLEASE}; ${LITERAL}`,
  },
  {
    stage: 'vxlan',
    input: vxLease('{"VNI":1,"VtepMAC":null}'),
    flanneld: 'reject',
    cite: `${HWADDR} (null is not quoted)`,
  },
  {
    stage: 'vxlan',
    input: vxLease('{"VNI":1,"VtepMAC":"02-AA-bb-cc-dd-ee"}'),
    flanneld: 'accept',
    cite: HWADDR,
    want: { vtepMAC: MAC },
  },
  {
    stage: 'vxlan',
    input: vxLease('{"VNI":1,"VtepMAC":"02aa.bbcc.ddee"}'),
    flanneld: 'accept',
    cite: HWADDR,
    want: { vtepMAC: MAC },
  },
  {
    stage: 'vxlan',
    input: vxLease(String.raw`{"VNI":1,"VtepMAC":"02:aa:bb:cc:dd:e\u0065"}`),
    flanneld: 'reject',
    cite: `${HWADDR} (the raw token)`,
  },
  {
    stage: 'vxlan',
    input: vxLease(`{"vtepmac":"02:aa:bb:cc:dd:01","VtepMAC":"${MAC}"}`),
    flanneld: 'accept',
    cite: `${OBJECT}; last wins`,
    want: { vtepMAC: MAC },
  },
  { stage: 'vxlan', input: vxLease('[]'), flanneld: 'reject', cite: VXLEASE },
  {
    stage: 'vxlan',
    input: '{"PublicIP":"192.0.2.2","BackendType":"vxlan"}',
    flanneld: 'reject',
    cite: `${VXLEASE} (json.Unmarshal of an empty RawMessage)`,
  },
  {
    stage: 'vxlan',
    input: vxLease('{"VNI":1,"VtepMAC":"00:00:00:00:fe:80:00:02"}'),
    flanneld: 'accept',
    cite: `${HWADDR} (ParseMAC takes 8 bytes)`,
    deliberate: 'not a 6-byte Ethernet MAC: flanneld then fails to add the FDB entry (rtnl_fdb_add wants ETH_ALEN)',
    reason: /not a 6-byte Ethernet MAC/,
  },
  {
    stage: 'vxlan',
    input: vxLease('{"VNI":1}'),
    flanneld: 'accept',
    cite: `${VXLEASE} (VtepMAC stays nil)`,
    deliberate: 'no VtepMAC: flanneld programs an empty lladdr, which the kernel refuses',
    reason: /no VtepMAC/,
  },
  {
    stage: 'vxlan',
    input: vxLease('null'),
    flanneld: 'accept',
    cite: `${VXLEASE} (Unmarshal of null is a no-op)`,
    deliberate: 'no VtepMAC',
    reason: /no VtepMAC/,
  },
];

test('the table is big enough and every case cites flannel', (t) => {
  t.true(CASES.length >= 60, `${CASES.length} cases`);
  for (const c of CASES) t.true(c.cite.length > 0);
});

for (const [i, c] of CASES.entries()) {
  const shown = c.input.length > 70 ? `${c.input.slice(0, 70)}… (${c.input.length} chars)` : c.input;
  test(`#${i + 1} ${c.stage}: ${JSON.stringify(shown)} — flanneld ${c.flanneld}s${c.deliberate ? `, weft does not: ${c.deliberate}` : ''}`, (t) => {
    const got = RUN[c.stage](c.input);
    const weftAccepts = c.deliberate ? c.flanneld === 'reject' : c.flanneld === 'accept';
    t.is(got.ok, weftAccepts, `${c.cite}: ${got.ok ? 'accepted' : got.reason}`);
    if (got.ok && c.want) t.like(got.values, c.want);
    if (!got.ok && c.reason) t.regex(got.reason, c.reason);
  });
}
