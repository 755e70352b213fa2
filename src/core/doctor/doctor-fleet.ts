/**
 * Fleet-wide checks of `weft doctor` on what etcd holds: duplicate or overlapping subnets, one
 * VTEP MAC in two leases, one PublicIP in two leases (NAT or cloned hosts, flannel-compat.md
 * §12 item 6), leases weft does not program; and this host's device (and its peers, for a kind
 * that checks them itself) against the lease, as the device's kind checks it.
 */
import { overlaps, parsePrefix } from '../net/cidr.js';
import { checksOwnPeers, deviceCheck, devicePeerChecks } from '../datapath/devices.js';
import type { DoctorObservations, Finding, Verdict } from './doctor-observations.js';
import { safeText } from '../base/escape.js';
import type { LeaseRow } from '../fleet/lease-report.js';

const fleet = (check: string, verdict: Verdict, what: string, fix = ''): Finding => ({
  check,
  verdict,
  peer: null,
  what,
  fix,
});

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
  const withSubnet = rows.flatMap((r) => {
    const p = r.subnet === null ? undefined : parsePrefix(r.subnet);
    return p ? [{ r, p }] : [];
  });
  const clashes: string[] = [];
  for (let i = 0; i < withSubnet.length; i++) {
    for (let j = i + 1; j < withSubnet.length && clashes.length < 10; j++) {
      const a = withSubnet[i];
      const b = withSubnet[j];
      if (a && b && overlaps(a.p, b.p)) clashes.push(`${who(a.r)} and ${who(b.r)}`);
    }
  }
  if (clashes.length > 0) {
    out.push(
      fleet(
        'duplicates',
        'fail',
        `overlapping subnets in etcd: ${clashes.join('; ')}: two hosts claim the same addresses, and traffic goes to one of them`,
        'keep the lease of the host that really uses the subnet; on the other host run weft release and restart weft (it leases a free subnet), then restart its container runtime',
      ),
    );
  }
  const macs = sharing(rows, (r) => r.vtepMAC);
  for (const [mac, g] of macs) {
    out.push(
      fleet(
        'duplicates',
        'fail',
        `VTEP MAC ${safeText(mac)} is in ${String(g.length)} leases: ${g.map(who).join(', ')}; only the oldest is programmed, the others' containers are unreachable`,
        'a cloned VM or a copied /var/lib/weft: on the newer hosts delete the vxlan device (ip link del flannel.1) and /var/lib/weft, then restart weft so it derives its own MAC',
      ),
    );
  }
  const ips = sharing(rows, (r) => r.publicIP);
  for (const [ip, g] of ips) {
    out.push(
      fleet(
        'duplicates',
        'warn',
        `public IP ${safeText(ip)} is in ${String(g.length)} leases: ${g.map(who).join(', ')} (hosts behind one NAT, or cloned hosts): peers cannot tell them apart`,
        "give each host its own reachable address: set host.publicIP (or host.interface) in each host's spec",
      ),
    );
  }
  if (clashes.length === 0 && macs.length === 0 && ips.length === 0)
    out.push(
      fleet('duplicates', 'ok', `no overlapping subnet, VTEP MAC or public IP among ${String(rows.length)} lease(s)`),
    );
  const bad = rows.filter((r) => r.status !== 'ok' && !macs.some(([m]) => m === r.vtepMAC));
  if (bad.length > 0) {
    out.push(
      fleet(
        'leases',
        'warn',
        `${String(bad.length)} lease(s) not programmed by weft: ${bad
          .slice(0, 5)
          .map((r) => `${who(r)}: ${safeText(r.malformed ?? r.status, 160)}`)
          .join('; ')}${bad.length > 5 ? '; ...' : ''}`,
        'weft leases lists them with the fix; containers on those hosts are unreachable from here',
      ),
    );
  }
  return out;
}

/**
 * This host's first device against what the backend wants, as its kind checks it (vxlan:
 * present, up, the lease's MAC, the MTU; WireGuard: readable with wg, the lease's key and port).
 */
export function deviceFinding(o: DoctorObservations): Finding | undefined {
  const want = o.desired?.devices[0];
  return want ? deviceCheck(want, o.observed?.devices.get(want.name)) : undefined;
}

/** Each peer of the device whose kind checks its peers itself (WireGuard, against `wg show`); none for others. */
export function devicePeerFindings(o: DoctorObservations): Finding[] {
  const want = o.desired?.devices.find(checksOwnPeers);
  return want ? devicePeerChecks(want, o.observed?.devices.get(want.name)) : [];
}

export function fleetFindings(o: DoctorObservations): Finding[] {
  const out: Finding[] = [];
  if (o.etcd.ok) out.push(...duplicateFindings(o.etcd.rows));
  const dev = deviceFinding(o);
  if (dev) out.push(dev);
  out.push(...devicePeerFindings(o));
  for (const s of o.desired?.skipped ?? []) {
    out.push({
      check: 'peers',
      verdict: 'warn',
      peer: safeText(s.subnetKey.replace('-', '/')),
      what: `not programmed on this host: ${safeText(s.reason)}`,
      fix: 'see weft leases and journalctl -u weft ("peer not programmed")',
    });
  }
  if (o.peerFilterUnmatched !== undefined) {
    out.push(
      fleet(
        'peers',
        'fail',
        `--peer ${safeText(o.peerFilterUnmatched)} matches no programmed peer (by subnet, address in a subnet, or public IP)`,
        'weft leases lists the peers and their public IPs',
      ),
    );
  }
  if (o.peersOmitted > 0) {
    out.push(
      fleet(
        'peers',
        'skip',
        `${String(o.peersOmitted)} more peer(s) not probed: at most ${String(o.peerCap)} peers are probed per run`,
        'name one with --peer SUBNET|IP to check it',
      ),
    );
  }
  return out;
}
