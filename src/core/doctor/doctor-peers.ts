/**
 * Per-peer checks of `weft doctor`: the datapath entries against the lease, the kernel's route
 * lookup against weft's route (a foreign, more specific route shadows it), reachability through
 * the overlay, the underlay path, and the MTU (a do-not-fragment probe at the overlay MTU).
 *
 * How operators read the probes (and so this code): the overlay ping fails while the datapath
 * entries are right and the peer's public IP answers a plain ping: for an encapsulating backend
 * (the descriptor's `encapsulation`: vxlan's UDP to its port) the encapsulated packets are
 * dropped on the way, which a plain UDP probe cannot show (the peer's kernel drops a stray
 * datagram silently either way). Small overlay pings pass but DF-sized ones do not: an MTU black
 * hole on the underlay.
 */
import { type IP, formatIP, formatPrefix } from '../net/cidr.js';
import type { Route } from '../datapath/datapath.js';
import type { DoctorObservations, Finding, PeerObservation, Verdict } from './doctor-observations.js';
import { safeText } from '../base/escape.js';

const routeText = (r: { via: IP; dev: string; onlink: boolean }): string =>
  `via ${formatIP(r.via)} dev ${r.dev}${r.onlink ? ' onlink' : ''}`;
const REPAIR =
  'restart weft if it is not running (it repairs drift within 2 s); weft plan shows the exact commands it would run';

/** The datapath entries for one peer against what the backend wants; problems in words. */
function datapathProblems(o: DoctorObservations, want: Route): string[] {
  const seen = o.observed;
  if (!seen) return ['the kernel datapath could not be read'];
  const key = formatPrefix(want.dst);
  const problems: string[] = [];
  const r = seen.routes.find((x) => formatPrefix(x.dst) === key);
  if (!r) problems.push(`the route ${key} ${routeText(want)} is missing`);
  else if (
    r.dev !== want.dev ||
    r.via === undefined ||
    formatIP(r.via) !== formatIP(want.via) ||
    r.onlink !== want.onlink
  ) {
    problems.push(
      `the route to ${key} is ${r.via ? `via ${formatIP(r.via)} ` : ''}dev ${safeText(r.dev)}${r.onlink ? ' onlink' : ''} (proto ${safeText(r.proto)}), the lease wants ${routeText(want)}`,
    );
  }
  const neigh = o.desired?.neighs.get(formatIP(want.via));
  if (neigh && want.onlink) {
    const n = seen.neighs.find((x) => formatIP(x.ip) === formatIP(neigh.ip));
    if (!n) problems.push(`the neighbour ${formatIP(neigh.ip)} lladdr ${neigh.mac} on ${neigh.dev} is missing`);
    else if (n.mac !== neigh.mac)
      problems.push(
        `the neighbour ${formatIP(neigh.ip)} has MAC ${safeText(n.mac)}, the lease's VtepMAC is ${neigh.mac}`,
      );
    const f = o.desired?.fdb.get(neigh.mac);
    const seenF = seen.fdb.find((x) => x.mac === neigh.mac);
    if (f && !seenF) problems.push(`the fdb entry ${f.mac} dst ${formatIP(f.dst)} on ${f.dev} is missing`);
    else if (f && seenF && formatIP(seenF.dst) !== formatIP(f.dst))
      problems.push(
        `the fdb entry for ${f.mac} sends to ${formatIP(seenF.dst)}, the lease's PublicIP is ${formatIP(f.dst)}`,
      );
  }
  return problems;
}

/**
 * Does the kernel's lookup for the target use weft's route? Else a finding naming what it uses:
 * a more specific foreign route (found by `ip route show match`), or, when weft's own route is
 * missing or wrong (`datapathBroken`), that (the datapath finding has the fix).
 */
function lookupProblem(
  p: PeerObservation,
  want: Route,
  datapathBroken: boolean,
): { what: string; fix: string } | undefined {
  const l = p.lookup;
  const t = formatIP(p.target);
  const key = formatPrefix(want.dst);
  const other = p.matching.find(
    (m) =>
      m.dst !== key &&
      !(m.dst === 'default' || m.dst.endsWith('/0')) &&
      Number(m.dst.split('/')[1] ?? 32) > want.dst.len,
  );
  const name = other
    ? `${other.type === 'unicast' ? '' : `${safeText(other.type)} `}${safeText(other.dst)}${other.gateway ? ` via ${safeText(other.gateway)}` : ''}${other.dev ? ` dev ${safeText(other.dev)}` : ''}${other.proto ? ` proto ${safeText(other.proto)}` : ''}`
    : '';
  const fix = other
    ? `remove the shadowing route if nothing needs it: ip route del ${other.type === 'unicast' ? '' : `${safeText(other.type)} `}${safeText(other.dst)}${other.dev ? ` dev ${safeText(other.dev)}` : ''}`
    : datapathBroken
      ? REPAIR
      : "check ip rule and ip route get for the target: something other than weft's route decides";
  const because = !other && datapathBroken ? " (weft's route is missing or wrong, see the datapath finding)" : '';
  if (!l.ok)
    return {
      what: `the kernel has no usable route to ${t} (${safeText(l.error)})${other ? `: the more specific route ${name} shadows weft's ${key}` : because}`,
      fix,
    };
  if (l.dev === want.dev && l.gateway === formatIP(want.via)) return undefined;
  const got = `${l.gateway ? `via ${safeText(l.gateway)} ` : ''}dev ${safeText(l.dev)}`;
  return {
    what: `the kernel sends ${t} ${got}, not through weft's route ${key} ${routeText(want)}${other ? `: the more specific route ${name} shadows it` : because}`,
    fix,
  };
}

function one(check: string, verdict: Verdict, peer: string, what: string, fix = ''): Finding {
  return { check, verdict, peer, what, fix };
}

/** The findings for one peer, given what its programmed route should be. */
export function findingsForPeer(o: DoctorObservations, p: PeerObservation, want: Route): Finding[] {
  const peer = formatPrefix(p.subnet);
  const pub = safeText(p.publicIP);
  const t = formatIP(p.target);
  const out: Finding[] = [];
  const dp = datapathProblems(o, want);
  // Through the backend's encapsulating device (not a direct route to an adjacent peer).
  const enc = o.etcd.ok ? o.etcd.doctor.encapsulation : undefined;
  const tunnel = enc !== undefined && o.device !== undefined && want.dev === o.device ? enc : undefined;
  const neigh = want.onlink ? o.desired?.neighs.get(formatIP(want.via)) : undefined;
  const entries =
    neigh && o.desired?.fdb.has(neigh.mac) ? 'route, neighbour and fdb entry' : neigh ? 'route and neighbour' : 'route';
  out.push(
    dp.length > 0
      ? one('datapath', 'fail', peer, dp.join('; '), REPAIR)
      : one(
          'datapath',
          'ok',
          peer,
          `${entries} match the lease (${routeText(want)}${tunnel ? `, PublicIP ${pub}` : ''})`,
        ),
  );
  const lk = lookupProblem(p, want, dp.length > 0);
  out.push(
    lk
      ? one('route-lookup', 'fail', peer, lk.what, lk.fix)
      : one('route-lookup', 'ok', peer, `the kernel routes ${t} through weft's route`),
  );
  if (!p.source || !p.overlay) {
    out.push(
      one(
        'overlay',
        'skip',
        peer,
        "this host holds no overlay address to probe from (host-gw: no container bridge holds the subnet's gateway yet)",
        "start the container runtime (Docker or Podman) with weft's options",
      ),
    );
    return out;
  }
  const u = p.underlay;
  const underlayOk = (u?.received ?? 0) > 0;
  if (p.overlay.received > 0) {
    out.push(
      one(
        'overlay',
        'ok',
        peer,
        `${t} answers through the overlay from ${formatIP(p.source)} (${String(p.overlay.received)}/${String(p.overlay.sent)})`,
      ),
    );
    out.push(
      one(
        'underlay',
        'ok',
        peer,
        tunnel
          ? `the underlay carries ${tunnel.name} (${tunnel.protocol} ${String(tunnel.port)}) to ${pub}`
          : `the underlay reaches ${pub}`,
      ),
    );
  } else {
    const why = p.overlay.error ? ` (${safeText(p.overlay.error)})` : '';
    if (dp.length > 0 || lk) {
      out.push(
        one(
          'overlay',
          'fail',
          peer,
          `no reply from ${t} through the overlay${why}: the datapath above is wrong`,
          dp.length > 0 ? REPAIR : (lk?.fix ?? REPAIR),
        ),
      );
    } else if (!underlayOk) {
      out.push(
        one('overlay', 'fail', peer, `no reply from ${t} through the overlay${why}`, 'see the underlay finding'),
      );
      out.push(
        one(
          'underlay',
          'fail',
          peer,
          `no reply from the peer's public IP ${pub} on the underlay either: the peer is down or unreachable (or ICMP is filtered)`,
          `check the peer host and the path to ${pub} (ping, ip route get ${pub}); run weft doctor on the peer`,
        ),
      );
    } else if (tunnel) {
      const carrier = `${tunnel.protocol} ${String(tunnel.port)}`;
      out.push(
        one(
          'overlay',
          'fail',
          peer,
          `no reply from ${t} through the overlay${why}, though the datapath is right and ${pub} answers on the underlay`,
          'see the underlay finding',
        ),
      );
      out.push(
        one(
          'underlay',
          'fail',
          peer,
          `${carrier} is probably dropped between here and the peer ${pub}: the peer answers a plain ping, but not through ${tunnel.name}`,
          `check firewalls / security groups for ${carrier} in both directions (iptables -S INPUT on both hosts, cloud security groups, the switch); run weft doctor on the peer`,
        ),
      );
    } else {
      out.push(
        one(
          'overlay',
          'warn',
          peer,
          `no reply from ${t}${why}, though ${pub} answers on the underlay: the peer may have no container bridge holding ${t} yet, or drops the traffic`,
          "run weft doctor on the peer; start its container runtime with weft's options",
        ),
      );
    }
  }
  out.push(mtuFinding(o, p, peer));
  return out;
}

function mtuFinding(o: DoctorObservations, p: PeerObservation, peer: string): Finding {
  const mtu = o.mtu ?? 0;
  const overhead = o.etcd.ok ? o.etcd.doctor.overheadBytes : 0;
  const t = formatIP(p.target);
  if ((p.overlay?.received ?? 0) === 0 || !p.df)
    return one('mtu', 'skip', peer, 'not probed: the overlay does not answer small packets');
  if (p.df.received > 0)
    return one('mtu', 'ok', peer, `do-not-fragment packets of the overlay MTU (${String(mtu)} bytes) reach ${t}`);
  const local = p.df.error !== undefined && /too long|mtu/i.test(p.df.error);
  return one(
    'mtu',
    'fail',
    peer,
    local
      ? `do-not-fragment packets of ${String(mtu)} bytes cannot leave this host (${safeText(p.df.error ?? '')}): a local device's MTU is below the overlay MTU`
      : `MTU black hole: small packets reach ${t} but do-not-fragment packets of the overlay MTU (${String(mtu)} bytes) do not: a link between here and ${safeText(p.publicIP)} has a smaller MTU than the overlay needs (overlay MTU + ${String(overhead)})`,
    `set host.mtu on every host to the smallest path MTU${overhead ? ` − ${String(overhead)}` : ''} (or raise the underlay's MTU), restart weft, then the container runtime and containers so they use the new FLANNEL_MTU`,
  );
}

/** Every peer's findings, in subnet order of the observations. */
export function peerFindings(o: DoctorObservations): Finding[] {
  const routes = o.desired?.routes;
  if (!routes) return [];
  // A backend whose peers have no route each (WireGuard: doctor-fleet.ts checks them against `wg show`).
  if (o.etcd.ok && !o.etcd.doctor.peerRoutes) return [];
  if (o.peers.length === 0 && o.peerFilterUnmatched === undefined)
    return [
      {
        check: 'peers',
        verdict: 'skip',
        peer: null,
        what: 'no programmed peers to check (this host is alone in the fabric, or every peer was skipped)',
        fix: '',
      },
    ];
  return o.peers.flatMap((p) => {
    const want = routes.get(formatPrefix(p.subnet));
    return want ? findingsForPeer(o, p, want) : [];
  });
}
