/**
 * Fleet-wide checks of `weft doctor` on what etcd holds: duplicate or overlapping subnets, one
 * VTEP MAC in two leases, one PublicIP in two leases (NAT or cloned hosts, flannel-compat.md
 * §12 item 6), leases weft does not program; and this host's vxlan device against the lease.
 */
import { formatPrefix, overlaps, parsePrefix } from '../net/cidr.js';
import type { DoctorObservations, Finding, Verdict } from './doctor-observations.js';
import { safeText } from '../base/escape.js';
import type { LeaseRow } from '../fleet/lease-report.js';

const fleet = (check: string, verdict: Verdict, what: string, fix = ''): Finding => ({ check, verdict, peer: null, what, fix });

/** Groups of rows that share `keyOf` (two or more), in first-seen order. */
function sharing(rows: readonly LeaseRow[], keyOf: (r: LeaseRow) => string | null): [string, LeaseRow[]][] {
  const groups = new Map<string, LeaseRow[]>();
  for (const r of rows) {
    const k = keyOf(r);
    if (k !== null) groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  return [...groups].filter(([, g]) => g.length > 1);
}

const who = (r: LeaseRow): string => `${safeText(r.subnet ?? r.key)}${r.host ? ` (${safeText(r.host)})` : ''}`;

export function duplicateFindings(rows: readonly LeaseRow[]): Finding[] {
  const out: Finding[] = [];
  const withSubnet = rows.flatMap((r) => { const p = r.subnet === null ? undefined : parsePrefix(r.subnet); return p ? [{ r, p }] : []; });
  const clashes: string[] = [];
  for (let i = 0; i < withSubnet.length; i++) {
    for (let j = i + 1; j < withSubnet.length && clashes.length < 10; j++) {
      const a = withSubnet[i];
      const b = withSubnet[j];
      if (a && b && overlaps(a.p, b.p)) clashes.push(`${who(a.r)} and ${who(b.r)}`);
    }
  }
  if (clashes.length > 0) {
    out.push(fleet('duplicates', 'fail', `overlapping subnets in etcd: ${clashes.join('; ')}: two hosts claim the same addresses, and traffic goes to one of them`,
      'keep the lease of the host that really uses the subnet; on the other host run weft release and restart weft (it leases a free subnet), then restart its container runtime'));
  }
  const macs = sharing(rows, (r) => r.vtepMAC);
  for (const [mac, g] of macs) {
    out.push(fleet('duplicates', 'fail', `VTEP MAC ${safeText(mac)} is in ${String(g.length)} leases: ${g.map(who).join(', ')}; only the oldest is programmed, the others' containers are unreachable`,
      'a cloned VM or a copied /var/lib/weft: on the newer hosts delete the vxlan device (ip link del flannel.1) and /var/lib/weft, then restart weft so it derives its own MAC'));
  }
  const ips = sharing(rows, (r) => r.publicIP);
  for (const [ip, g] of ips) {
    out.push(fleet('duplicates', 'warn', `public IP ${safeText(ip)} is in ${String(g.length)} leases: ${g.map(who).join(', ')} (hosts behind one NAT, or cloned hosts): peers cannot tell them apart`,
      'give each host its own reachable address: set host.publicIP (or host.interface) in each host\'s spec'));
  }
  if (clashes.length === 0 && macs.length === 0 && ips.length === 0) out.push(fleet('duplicates', 'ok', `no overlapping subnet, VTEP MAC or public IP among ${String(rows.length)} lease(s)`));
  const bad = rows.filter((r) => r.status !== 'ok' && !macs.some(([m]) => m === r.vtepMAC));
  if (bad.length > 0) {
    out.push(fleet('leases', 'warn', `${String(bad.length)} lease(s) not programmed by weft: ${bad.slice(0, 5).map((r) => `${who(r)}: ${safeText(r.malformed ?? r.status, 160)}`).join('; ')}${bad.length > 5 ? '; ...' : ''}`,
      'weft leases lists them with the fix; containers on those hosts are unreachable from here'));
  }
  return out;
}

/** This host's vxlan device as the backend wants it: present, up, the lease's MAC, the MTU. */
export function deviceFinding(o: DoctorObservations): Finding | undefined {
  // The one device kind today is vxlan; a WireGuard device gets its own finding when it lands.
  const want = o.desired?.devices[0];
  if (!want) return undefined;
  const seen = o.observed?.devices.get(want.name);
  const fix = 'restart weft: it recreates the device with all peers within 2 s';
  if (want.kind === 'wireguard') {
    if (!seen || !seen.wireguard) return fleet('device', 'fail', `the WireGuard device ${want.name} is missing${seen ? ' (its configuration cannot be read with wg)' : ''}`, fix);
    const bad: string[] = [];
    if (!seen.up) bad.push('it is down');
    if (seen.wireguard.publicKey !== want.publicKey) bad.push(`its public key ${safeText(seen.wireguard.publicKey)} is not the lease's ${want.publicKey}`);
    if (seen.wireguard.listenPort !== want.listenPort) bad.push(`it listens on ${String(seen.wireguard.listenPort)}, the lease says ${String(want.listenPort)}`);
    if (seen.mtu !== want.mtu) bad.push(`its MTU is ${String(seen.mtu)}, weft wants ${String(want.mtu)}`);
    if (bad.length > 0) return fleet('device', 'fail', `${want.name}: ${bad.join('; ')}`, fix);
    return fleet('device', 'ok', `${want.name} is up (${seen.wireguard.implementation}), UDP ${String(want.listenPort)}, MTU ${String(want.mtu)}, ${String(seen.wireguard.peers.size)} peers`);
  }
  if (!seen || seen.kind !== 'vxlan') return fleet('device', 'fail', `the vxlan device ${want.name} is missing${seen ? ` (a ${safeText(seen.kind || 'non-vxlan')} device has its name)` : ''}`, fix);
  const problems: string[] = [];
  if (!seen.up) problems.push('it is down');
  if (seen.mac !== want.mac) problems.push(`its MAC ${safeText(seen.mac)} is not the lease's VtepMAC ${want.mac}`);
  if (seen.mtu !== want.mtu) problems.push(`its MTU is ${String(seen.mtu)}, weft wants ${String(want.mtu)}`);
  if (seen.port !== undefined && seen.port !== want.port) problems.push(`its UDP port is ${String(seen.port)}, the network's is ${String(want.port)}`);
  for (const address of want.addresses) {
    if (!seen.addrs.some((a) => formatPrefix(a) === formatPrefix(address))) problems.push(`it does not hold ${formatPrefix(address)}`);
  }
  if (problems.length > 0) return fleet('device', 'fail', `${want.name}: ${problems.join('; ')}`, fix);
  return fleet('device', 'ok', `${want.name} is up, VNI ${String(want.vni)}, UDP ${String(want.port)}, MTU ${String(want.mtu)}, holds ${want.addresses.map(formatPrefix).join(', ')}`);
}

/**
 * wireguard: each peer the leases want, against `wg show` (at most 20): present with the lease's
 * endpoint and subnet, and whether a handshake ever completed.
 */
export function wireguardPeerFindings(o: DoctorObservations): Finding[] {
  const want = o.desired?.devices.find((d) => d.kind === 'wireguard');
  if (want?.kind !== 'wireguard') return [];
  const seen = o.observed?.devices.get(want.name)?.wireguard;
  if (!seen) return [];
  const fix = 'restart weft (it sets every peer again), then weft doctor; check UDP to the peer\'s port on its public IP';
  return [...want.peers.values()].slice(0, 20).map((p): Finding => {
    const subnet = p.allowedIPs.map(formatPrefix).join(', ');
    const peer = safeText(subnet);
    const o2 = seen.peers.get(p.publicKey);
    if (!o2) return { check: 'wireguard-peer', verdict: 'fail', peer, what: `no peer with the lease's key ${p.publicKey} on ${want.name}`, fix };
    if (o2.endpoint !== p.endpoint || !o2.allowedIPs.includes(subnet)) {
      return { check: 'wireguard-peer', verdict: 'fail', peer, what: `the peer is endpoint ${safeText(o2.endpoint ?? '(none)')}, allowed ips ${safeText(o2.allowedIPs.join(',') || '(none)')}; the lease wants ${p.endpoint}, ${subnet}`, fix };
    }
    if (o2.latestHandshake === 0) return { check: 'wireguard-peer', verdict: 'warn', peer, what: `no handshake with ${p.endpoint} yet: nothing was sent to it, or UDP to it is blocked`, fix: `send traffic to ${subnet}; if it stays so, open UDP ${p.endpoint.split(':').pop() ?? ''} between the hosts` };
    return { check: 'wireguard-peer', verdict: 'ok', peer, what: `peer ${p.endpoint} with the lease's key; a handshake has completed`, fix: '' };
  });
}

export function fleetFindings(o: DoctorObservations): Finding[] {
  const out: Finding[] = [];
  if (o.etcd.ok) out.push(...duplicateFindings(o.etcd.rows));
  const dev = deviceFinding(o);
  if (dev) out.push(dev);
  out.push(...wireguardPeerFindings(o));
  for (const s of o.desired?.skipped ?? []) {
    out.push({ check: 'peers', verdict: 'warn', peer: safeText(s.subnetKey.replace('-', '/')), what: `not programmed on this host: ${safeText(s.reason)}`, fix: 'see weft leases and journalctl -u weft ("peer not programmed")' });
  }
  if (o.peerFilterUnmatched !== undefined) {
    out.push(fleet('peers', 'fail', `--peer ${safeText(o.peerFilterUnmatched)} matches no programmed peer (by subnet, address in a subnet, or public IP)`, 'weft leases lists the peers and their public IPs'));
  }
  if (o.peersOmitted > 0) {
    out.push(fleet('peers', 'skip', `${String(o.peersOmitted)} more peer(s) not probed: at most ${String(o.peerCap)} peers are probed per run`, 'name one with --peer SUBNET|IP to check it'));
  }
  return out;
}
