// What a live config change tells the operator about the bridge outputs (the warning, status and
// the host.onOutputsChanged hook's environment), per address family: IPv4's FLANNEL_SUBNET and
// WEFT_SUBNET/WEFT_NETWORK, IPv6's FLANNEL_IPV6_SUBNET and WEFT_IPV6_*. Before, the agent handed
// the core the "primary" subnet (IPv4, else IPv6): turning IPv4 off read as an IPv4 subnet
// becoming an IPv6 one, and an IPv6-only host's move was reported twice.
import test from 'ava';
import { type Prefix, parsePrefix } from '../../src/core/net/cidr.js';
import { type BridgeState, bridgeChanges, hookEnvironment } from '../../src/core/outputs/bridge-outputs.js';

const pfx = (s: string): Prefix => {
  const p = parsePrefix(s);
  if (!p) throw new Error(s);
  return p;
};
const V4 = { network: pfx('198.18.0.0/16'), subnet: pfx('198.18.1.0/24') };
const V6 = { network: pfx('fd18::/48'), subnet: pfx('fd18:0:0:1::/64') };
const DUAL: BridgeState = { mtu: 1450, v4: V4, v6: V6 };

test("MTU and each family's subnet are named; the networks are not (they are not in Docker's options)", (t) => {
  const a: BridgeState = { mtu: 1450, v4: V4 };
  t.deepEqual(bridgeChanges(a, a), []);
  t.deepEqual(bridgeChanges(a, { mtu: 1500, v4: { ...V4, network: pfx('198.18.0.0/15') } }), [
    'FLANNEL_MTU 1450 -> 1500',
  ]);
  t.deepEqual(bridgeChanges(a, { mtu: 1450, v4: { ...V4, subnet: pfx('198.18.9.0/24') } }), [
    'FLANNEL_SUBNET 198.18.1.0/24 -> 198.18.9.0/24',
  ]);
});

test('IPv4 turned off reads as the IPv4 subnet gone, not as it becoming the IPv6 one', (t) => {
  t.deepEqual(bridgeChanges(DUAL, { mtu: 1450, v6: V6 }), ['FLANNEL_SUBNET 198.18.1.0/24 -> (none)']);
  const env = hookEnvironment(DUAL, { mtu: 1450, v6: V6 }, '/run/flannel/subnet.env');
  t.like(env, {
    WEFT_CHANGED: 'FLANNEL_SUBNET',
    WEFT_SUBNET: '',
    WEFT_NETWORK: '',
    WEFT_PREVIOUS_SUBNET: '198.18.1.0/24',
    WEFT_IPV6_SUBNET: 'fd18:0:0:1::/64',
    WEFT_PREVIOUS_IPV6_SUBNET: 'fd18:0:0:1::/64',
  });
});

test('an IPv6-only host that moves is reported once, as FLANNEL_IPV6_SUBNET', (t) => {
  const before: BridgeState = { mtu: 1430, v6: V6 };
  const after: BridgeState = { mtu: 1430, v6: { ...V6, subnet: pfx('fd18:0:0:7::/64') } };
  t.deepEqual(bridgeChanges(before, after), ['FLANNEL_IPV6_SUBNET fd18:0:0:1::/64 -> fd18:0:0:7::/64']);
  t.deepEqual(hookEnvironment(before, after, '/run/flannel/subnet.env'), {
    WEFT_CHANGED: 'FLANNEL_IPV6_SUBNET',
    WEFT_MTU: '1430',
    WEFT_NETWORK: '',
    WEFT_SUBNET: '',
    WEFT_IPV6_NETWORK: 'fd18::/48',
    WEFT_IPV6_SUBNET: 'fd18:0:0:7::/64',
    WEFT_PREVIOUS_MTU: '1430',
    WEFT_PREVIOUS_NETWORK: '',
    WEFT_PREVIOUS_SUBNET: '',
    WEFT_PREVIOUS_IPV6_NETWORK: 'fd18::/48',
    WEFT_PREVIOUS_IPV6_SUBNET: 'fd18:0:0:1::/64',
    WEFT_SUBNET_FILE: '/run/flannel/subnet.env',
  });
});

test('IPv6 turned on: FLANNEL_IPV6_SUBNET from (none), the IPv4 values kept', (t) => {
  const before: BridgeState = { mtu: 1450, v4: V4 };
  t.deepEqual(bridgeChanges(before, DUAL), ['FLANNEL_IPV6_SUBNET (none) -> fd18:0:0:1::/64']);
  t.like(hookEnvironment(before, DUAL, '/s'), {
    WEFT_CHANGED: 'FLANNEL_IPV6_SUBNET',
    WEFT_SUBNET: '198.18.1.0/24',
    WEFT_NETWORK: '198.18.0.0/16',
    WEFT_IPV6_NETWORK: 'fd18::/48',
    WEFT_PREVIOUS_IPV6_NETWORK: '',
  });
});
