// The reconciler's observation cache, with a fake host (no kernel, no root): a pass poked only
// by peer changes plans against the last clean observation; anything else observes afresh.
import test from 'ava';
import { type Prefix, parseIPv4, parsePrefix } from '../../src/core/cidr.js';
import { checkNetworkConfig } from '../../src/core/config-check.js';
import type { ObservedDatapath, ObservedDevice, ObservedRoute } from '../../src/core/datapath.js';
import type { HostFacts } from '../../src/core/host-facts.js';
import { decodeNetworkConfig } from '../../src/core/network-config.js';
import { type PeerLease, validatePeerLease } from '../../src/core/peer-lease.js';
import { vxlan } from '../../src/backends/vxlan.js';
import { jsonLogger } from '../../src/adapters/log.js';
import { type HostPort, type ReconcileInputs, Reconciler } from '../../src/agent/reconciler.js';

const ip = (s: string) => { const a = parseIPv4(s); if (!a) throw new Error(s); return a; };
const pfx = (s: string): Prefix => { const p = parsePrefix(s); if (!p) throw new Error(s); return p; };
const VX = checkNetworkConfig(decodeNetworkConfig('{"Network":"198.18.0.0/16","Backend":{"Type":"vxlan"}}'));
const facts: HostFacts = { iface: 'eth0', ifaceIP: ip('192.0.2.1'), ifaceMTU: 1500, publicIP: ip('192.0.2.1'), why: 'test' };
const underlay: ObservedRoute[] = [{ dst: pfx('192.0.2.0/24'), dev: 'eth0', proto: 'kernel', onlink: false, scopeLink: true }];
const own = pfx('198.18.1.0/24');

function peer(n: number): PeerLease {
  const v = validatePeerLease(`198.18.${n}.0-24`, `{"PublicIP":"192.0.2.${n + 10}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:00:00:00:00:${n.toString(16).padStart(2, '0')}"}}`, VX);
  if (!v.ok) throw new Error(v.reason);
  return v.lease;
}

/** A host whose kernel ends up exactly as desired after any batch (the adapters' contract). */
class FakeHost implements HostPort {
  state: ObservedDatapath = { routes: underlay, neighs: [], fdb: [] };
  observed = 0;
  applied: string[] = [];
  duringObserve: (() => void) | undefined;
  constructor(private readonly peers: () => PeerLease[]) {}
  observeDatapath(): Promise<ObservedDatapath> {
    this.observed++;
    this.duringObserve?.();
    return Promise.resolve(this.state);
  }
  applyBatch(_tool: 'ip' | 'bridge', lines: readonly string[]): Promise<{ index: number; message: string }[]> {
    this.applied.push(...lines);
    const d = vxlan.desired({ config: VX, ownSubnet: own, facts, routes: underlay, peers: this.peers(), mtu: 1450, vtepMAC: '0e:11:11:11:11:11' });
    const dev = d.device;
    const device: ObservedDevice | undefined = dev && { name: dev.name, kind: 'vxlan', vni: dev.vni, local: '192.0.2.1', underlay: 'eth0', port: dev.port, learning: false, gbp: false, mtu: dev.mtu, mac: dev.mac, up: true, addrs: [dev.address] };
    this.state = {
      ...(device ? { device } : {}),
      routes: [...underlay, ...[...d.routes.values()].map((r) => ({ dst: r.dst, via: r.via, dev: r.dev, proto: '175', onlink: r.onlink, scopeLink: false }))],
      neighs: [...d.neighs.values()], fdb: [...d.fdb.values()],
    };
    return Promise.resolve([]);
  }
  saveTables(): Promise<Map<string, ReadonlyMap<string, readonly string[]>>> { return Promise.resolve(new Map<string, ReadonlyMap<string, readonly string[]>>()); }
  restoreRules(): Promise<void> { return Promise.resolve(); }
  ensureForwarding(): Promise<boolean> { return Promise.resolve(false); }
}

function setup(resyncMs = 60_000): { r: Reconciler; host: FakeHost; peers: PeerLease[] } {
  const peers: PeerLease[] = [peer(2)];
  const host = new FakeHost(() => peers);
  const r = new Reconciler({ host, log: jsonLogger({ write: () => undefined }), clock: Date, resyncMs });
  const inputs: ReconcileInputs = {
    backend: vxlan, config: VX, network: pfx('198.18.0.0/16'), ownSubnet: own, facts, mtu: 1450, vtepMAC: '0e:11:11:11:11:11',
    ipMasq: true, randomFully: false, peers: () => peers,
  };
  r.setInputs(inputs);
  return { r, host, peers };
}

test('a peer change after a clean observation plans against the cache; its own changes drop the cache', async (t) => {
  const { r, host, peers } = setup();
  await r.settle();
  t.is(host.observed, 1);
  t.true(host.applied.some((l) => l.includes('198.18.2.0/24')));
  r.poke('netlink'); // the echo of our own batch: a fresh look, nothing to do, and a clean snapshot
  await r.settle();
  t.is(host.observed, 2);
  peers.push(peer(3));
  r.poke('peers');
  await r.settle();
  t.is(host.observed, 2, 'no new observation for a peer change');
  t.is(r.stats.cachedPasses, 1);
  t.true(host.applied.some((l) => l.includes('198.18.3.0/24')), 'the new peer is programmed');
  peers.push(peer(4));
  r.poke('peers');
  await r.settle();
  t.is(host.observed, 3, 'after applying changes the cache is gone: observe afresh');
  t.true(host.applied.some((l) => l.includes('198.18.4.0/24')));
});

test('netlink events always observe afresh (drift is never planned against a stale view); a timer tick only when the resync is due', async (t) => {
  const { r, host } = setup();
  await r.settle();
  r.poke('netlink');
  await r.settle();
  const n = host.observed;
  // Someone deletes a route: the netlink event forces a fresh observation, which sees it.
  host.state = { ...host.state, routes: host.state.routes.filter((x) => x.dev !== 'flannel.1') };
  r.poke('netlink');
  await r.settle();
  t.is(host.observed, n + 1);
  t.true(host.applied.filter((l) => l.includes('route replace 198.18.2.0/24')).length >= 2, 'the route is put back');
  r.poke('netlink');
  await r.settle();
  const m = host.observed;
  r.poke('timer');
  await r.settle();
  t.is(host.observed, m, 'between resyncs a timer tick checks the rules only');
  const due = setup(0);
  await due.r.settle();
  const k = due.host.observed;
  due.r.poke('timer');
  await due.r.settle();
  t.is(due.host.observed, k + 1, 'a timer tick with the resync due looks at the kernel afresh');
});

test('a netlink event during an observation is not lost: the view it may have missed is looked at again', async (t) => {
  const { r, host, peers } = setup();
  await r.settle();
  const before = host.observed;
  host.duringObserve = () => { r.poke('netlink'); host.duringObserve = undefined; };
  r.poke('netlink');
  await r.settle();
  t.is(host.observed, before + 2, 'the poked pass, then a fresh one for the event that came during it');
  peers.push(peer(5));
  r.poke('peers');
  await r.settle();
  t.is(host.observed, before + 2, 'that second, clean observation is what the peer change plans against');
  t.true(host.applied.some((l) => l.includes('198.18.5.0/24')));
  await r.stop();
});
