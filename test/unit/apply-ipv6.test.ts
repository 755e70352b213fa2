// `weft apply` and IPv6: both halves of live leases judged against the new ranges; turning IPv6
// on strands no weft lease (they keep their IPv4 subnet) but does strand a flanneld host; turning
// a family off under leases that hold it is refused, naming the hosts.
import test from 'ava';
import { planApply, strandReason } from '../../src/core/config/apply.js';
import { type ListedLease, joinListing } from '../../src/core/fleet/acquire.js';
import { type NetworkConfig, checkNetworkConfig } from '../../src/core/flannel/config-check.js';
import { decodeNetworkConfig } from '../../src/core/flannel/network-config.js';
import type { KeyValue } from '../../src/core/fleet/store.js';
import { BACKENDS } from '../helpers/backends.js';

const cfg = (json: string): NetworkConfig => checkNetworkConfig(decodeNetworkConfig(json, BACKENDS));
const V4 = '{"Network":"198.18.0.0/16","Backend":{"Type":"vxlan"}}';
const DUAL = '{"Network":"198.18.0.0/16","EnableIPv6":true,"IPv6Network":"fd18::/48","Backend":{"Type":"vxlan"}}';
const V6 = '{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd18::/48","Backend":{"Type":"vxlan"}}';

const kv = (key: string, value: string): KeyValue => ({
  key,
  value,
  createRevision: '5',
  modRevision: '5',
  lease: '0',
});
const mac = (n: number) => `0e:00:00:00:00:${n.toString(16).padStart(2, '0')}`;
/** A lease value as flanneld writes it for the halves the key has. */
function value(key: string, n: number, vni = 1): string {
  const v6 = key.includes('&');
  const v6only = key.startsWith('0.0.0.0-0&');
  return JSON.stringify({
    PublicIP: v6only ? '0.0.0.0' : `192.0.2.${n}`,
    PublicIPv6: v6 ? `fd00:2::${n}` : null,
    BackendType: 'vxlan',
    ...(v6only ? {} : { BackendData: { VNI: vni, VtepMAC: mac(n) } }),
    ...(v6 ? { BackendV6Data: { VNI: vni, VtepMAC: mac(n + 100) } } : {}),
  });
}
/** Leases by key; `owned` ones have a weft owner record. */
function listing(leases: [key: string, n: number, owned: boolean, vni?: number][]): ListedLease[] {
  return joinListing(
    leases.map(([k, n, , vni]) => kv(`/p/subnets/${k}`, value(k, n, vni))),
    leases
      .filter(([, , owned]) => owned)
      .map(([k, n]) =>
        kv(`/p/owners/${k}`, JSON.stringify({ hostID: `h${n}`, hostname: `h${n}`, publicIP: `192.0.2.${n}` })),
      ),
    '/p/subnets/',
    '/p/owners/',
  );
}
const stranded = (stored: string, next: string, leases: ListedLease[]): readonly string[] => {
  const plan = planApply(stored, cfg(next), leases, BACKENDS);
  if (plan.kind !== 'write') throw new Error('expected a write');
  return plan.stranded;
};

test('turning IPv6 on strands no weft lease: weft hosts keep their IPv4 subnet and add an IPv6 half', (t) => {
  const leases = listing([
    ['198.18.1.0-24', 1, true],
    ['198.18.2.0-24', 2, true],
  ]);
  const plan = planApply(V4, cfg(DUAL), leases, BACKENDS);
  t.is(plan.kind, 'write');
  if (plan.kind !== 'write') return;
  t.deepEqual(plan.stranded, []);
  t.true(plan.diff.includes('+ IPv6Network: fd18::/48'), plan.diff.join('\n'));
  t.deepEqual(plan.effects?.moves, [], 'no host moves: every IPv4 subnet still fits');
});

test('turning IPv6 on strands a flanneld lease (no owner record): flanneld crashes on dual-stack peers and renumbers when restarted', (t) => {
  const leases = listing([
    ['198.18.1.0-24', 1, true],
    ['198.18.3.0-24', 3, false],
  ]);
  t.deepEqual(stranded(V4, DUAL, leases), [
    "198.18.3.0/24 (host 192.0.2.3) is not weft's (no owner record: a flanneld host): flanneld without IPv6 crashes on dual-stack leases, and restarted with IPv6 on it takes a new IPv4 subnet; move the host to weft first",
  ]);
  // Once the stored config has IPv6, a v4-only flanneld lease is no news: a range change does not strand it.
  t.deepEqual(stranded(DUAL, DUAL.replace('"fd18::/48"', '"fd18::/48","IPv6SubnetMax":"fd18:0:0:f0::"'), leases), []);
});

test('turning IPv6 off under leases with IPv6 halves is refused, naming each host', (t) => {
  const leases = listing([
    ['198.18.1.0-24&fd18:0:0:1::-64', 1, true],
    ['198.18.2.0-24', 2, true],
    ['0.0.0.0-0&fd18:0:0:5::-64', 5, true],
  ]);
  t.deepEqual(stranded(DUAL, V4, leases), [
    '198.18.1.0/24 & fd18:0:0:1::/64 (host 192.0.2.1) holds an IPv6 subnet, but the new config turns IPv6 off',
    'fd18:0:0:5::/64 (host fd00:2::5) holds an IPv6 subnet, but the new config turns IPv6 off',
  ]);
});

test('turning IPv4 off (IPv6 only) under leases with IPv4 halves is refused; IPv6-only leases fit', (t) => {
  const leases = listing([
    ['198.18.1.0-24&fd18:0:0:1::-64', 1, true],
    ['0.0.0.0-0&fd18:0:0:5::-64', 5, true],
  ]);
  t.deepEqual(stranded(DUAL, V6, leases), [
    '198.18.1.0/24 & fd18:0:0:1::/64 (host 192.0.2.1) holds an IPv4 subnet, but the new config turns IPv4 off',
  ]);
  // And the other way: IPv4 turned on for an IPv6-only fleet strands nothing (hosts add an IPv4 half).
  t.deepEqual(stranded(V6, DUAL, listing([['0.0.0.0-0&fd18:0:0:5::-64', 5, true]])), []);
});

test('an IPv6 half outside the new IPv6 range, or of another length, strands its lease', (t) => {
  const leases = listing([
    ['198.18.1.0-24&fd18:0:0:1::-64', 1, true],
    ['198.18.2.0-24&fd18:0:0:f2::-64', 2, true],
    ['0.0.0.0-0&fd18:0:0:f5::-64', 5, true],
  ]);
  t.deepEqual(stranded(DUAL, DUAL.replace('"fd18::/48"', '"fd18::/48","IPv6SubnetMax":"fd18:0:0:f0::"'), leases), [
    '198.18.2.0/24 & fd18:0:0:f2::/64 (host 192.0.2.2): its IPv6 half fd18:0:0:f2::/64 lies outside fd18:0:0:1::..fd18:0:0:f0:: /64',
    'fd18:0:0:f5::/64 (host fd00:2::5) lies outside fd18:0:0:1::..fd18:0:0:f0:: /64',
  ]);
  t.is(stranded(DUAL, DUAL.replace('"fd18::/48"', '"fd18::/48","IPv6SubnetLen":80'), leases).length, 3);
  // A v4 half outside still strands first, with the message it always had.
  t.deepEqual(
    stranded(DUAL, DUAL.replace('"198.18.0.0/16"', '"198.18.0.0/16","SubnetMax":"198.18.1.0"'), leases.slice(0, 2)),
    ['198.18.2.0/24 & fd18:0:0:f2::/64 (host 192.0.2.2) lies outside 198.18.1.0..198.18.1.0 /24'],
  );
});

test("a flanneld lease's BackendV6Data VNI is judged like its BackendData VNI", (t) => {
  const [flanneld] = listing([['198.18.3.0-24&fd18:0:0:3::-64', 3, false]]);
  if (!flanneld) {
    t.fail();
    return;
  }
  const withV6VNI = {
    ...flanneld,
    attrs: {
      ...flanneld.attrs!,
      backendData: '{"VtepMAC":"0e:00:00:00:00:03"}',
      backendV6Data: '{"VNI":7,"VtepMAC":"0e:00:00:00:00:67"}',
    },
  };
  t.is(
    strandReason(withV6VNI, cfg(DUAL), BACKENDS, cfg(DUAL)),
    '198.18.3.0/24 & fd18:0:0:3::/64 (host 192.0.2.3) uses VNI 7, not 1',
  );
  t.is(strandReason(flanneld, cfg(DUAL), BACKENDS, cfg(DUAL)), undefined);
});
