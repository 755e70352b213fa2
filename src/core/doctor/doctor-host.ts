/**
 * Host-wide checks of `weft doctor`: the agent, the lease, IPv4 forwarding, the FORWARD chain
 * and weft's FLANNEL-FWD, rp_filter, the vxlan checksum-offload problem, the clock against etcd.
 */
import { formatPrefix } from '../net/cidr.js';
import type { DoctorObservations, Finding, Verdict } from './doctor-observations.js';
import { safeText } from '../base/escape.js';
import { FWD_CHAIN, parseIptablesSave } from '../datapath/masq.js';

const host = (check: string, verdict: Verdict, what: string, fix = ''): Finding => ({
  check,
  verdict,
  peer: null,
  what,
  fix,
});

/** Above this the clock is reported (Date headers have 1 s resolution; leases are in seconds). */
export const CLOCK_SKEW_WARN_MS = 5000;

const RESTART = 'start weft (systemctl start weft; journalctl -u weft says why it stopped)';
/** Shared with `weft status`: where to look when the port answers with something else. */
export const FOREIGN_FIX =
  'see which process listens there (ss -ltnp), stop it or move host.listen; weft keeps working and retries the port, and systemctl status weft shows its own status line';

export function agentFinding(o: DoctorObservations): Finding {
  const s = o.status;
  if (s.kind === 'disabled')
    return host(
      'agent',
      'skip',
      'host.listen is "" in the spec: the daemon has no status endpoint to ask',
      'set host.listen (default 127.0.0.1:9473) to let weft status and weft doctor read the daemon',
    );
  if (s.kind === 'silent') {
    return host(
      'agent',
      'fail',
      `agent not running: no weft daemon answers on ${s.url} (${safeText(s.error)}); nothing repairs the datapath or renews the lease`,
      RESTART,
    );
  }
  if (s.kind === 'foreign') {
    return host(
      'agent',
      'fail',
      `what answers on ${s.url} is not weft's status (${safeText(s.reason)}): another process may hold host.listen`,
      FOREIGN_FIX,
    );
  }
  const r = s.report;
  if (!r.ready)
    return host(
      'agent',
      'fail',
      `weft is running but not ready: ${r.reasons.map((x) => safeText(x)).join('; ')}`,
      'see weft status and journalctl -u weft; the reasons above say what it waits for',
    );
  return host('agent', 'ok', `weft is running and ready: ${safeText(r.status)}`);
}

export function leaseFinding(o: DoctorObservations): Finding {
  const e = o.etcd;
  if (!e.ok)
    return host(
      'lease',
      'fail',
      `cannot read the leases: etcd is unreachable or refused (${safeText(e.error)})`,
      "check etcd (etcdctl endpoint health) and the spec's etcd endpoints and credentials from this host",
    );
  const own = e.own;
  if (!own)
    return host('lease', 'fail', 'this host holds no lease in etcd: peers have no route to its containers', RESTART);
  const subnet = formatPrefix(own.subnet);
  if (own.ttlSeconds === 0) return host('lease', 'fail', `the lease on ${subnet} has expired`, RESTART);
  if (o.status.kind === 'answered' && o.status.report.lease && o.status.report.lease.subnet !== subnet) {
    return host(
      'lease',
      'fail',
      `the daemon holds ${safeText(o.status.report.lease.subnet)} but etcd says this host owns ${subnet}`,
      'restart weft so that it re-reads its lease; then check weft leases for a second host with this identity',
    );
  }
  const ttl = own.ttlSeconds > 0 ? `expires in ${String(own.ttlSeconds)} s` : 'no etcd lease (never expires)';
  return host(
    'lease',
    'ok',
    `this host holds ${subnet} (public IP ${safeText(own.publicIP)}, ${ttl}; found by ${own.how})`,
  );
}

export function forwardingFinding(o: DoctorObservations): Finding {
  if (o.ipForward === undefined) return host('ip_forward', 'skip', 'cannot read /proc/sys/net/ipv4/ip_forward');
  if (o.ipForward !== '1')
    return host(
      'ip_forward',
      'fail',
      `IPv4 forwarding is off (net.ipv4.ip_forward=${safeText(o.ipForward)}): this host routes no container traffic`,
      'sysctl -w net.ipv4.ip_forward=1 (weft sets it when it runs; make it permanent in /etc/sysctl.d)',
    );
  return host('ip_forward', 'ok', 'IPv4 forwarding is on');
}

/** The FORWARD chain's policy from iptables-save text (`:FORWARD DROP [0:0]`). */
export function chainPolicy(text: string, chain: string): string | undefined {
  for (const line of text.split('\n')) {
    const m = /^:(\S+) (\S+)/.exec(line);
    if (m?.[1] === chain) return m[2];
  }
  return undefined;
}

/**
 * Forwarded container traffic passes when FORWARD jumps to FLANNEL-FWD and FLANNEL-FWD
 * accepts the network both ways (flanneld's rules, masq.ts). Without them it depends on the
 * policy: DROP means cross-host container traffic is dropped here.
 */
export function forwardFinding(o: DoctorObservations): Finding {
  const t = o.filterTable;
  if (!t.ok) return host('forward', 'skip', `cannot read the filter table: ${safeText(t.error)}`);
  if (!o.etcd.ok) return host('forward', 'skip', 'the overlay network is unknown (etcd unreachable)');
  const n = formatPrefix(o.etcd.network);
  const saved = parseIptablesSave(t.text);
  const policy = chainPolicy(t.text, 'FORWARD') ?? 'ACCEPT';
  const forward = saved.get('FORWARD') ?? [];
  const jumpAt = forward.findIndex((r) => r.endsWith(`-j ${FWD_CHAIN}`));
  const fwd = saved.get(FWD_CHAIN) ?? [];
  const accepts =
    fwd.some((r) => r.startsWith(`-s ${n} `) && r.endsWith('-j ACCEPT')) &&
    fwd.some((r) => r.startsWith(`-d ${n} `) && r.endsWith('-j ACCEPT'));
  const fix = `weft's ${FWD_CHAIN} accept rules: restart weft (it installs them and re-checks every 5 s), or add them yourself: iptables -A FORWARD -s ${n} -j ACCEPT; iptables -A FORWARD -d ${n} -j ACCEPT (and in your firewall's configuration)`;
  if (jumpAt < 0 || !accepts) {
    const missing = jumpAt < 0 ? `no jump from FORWARD to ${FWD_CHAIN}` : `${FWD_CHAIN} does not accept ${n} both ways`;
    if (policy !== 'ACCEPT')
      return host(
        'forward',
        'fail',
        `forwarded container traffic is dropped: the FORWARD policy is ${safeText(policy)} and there is ${missing}`,
        fix,
      );
    return host(
      'forward',
      'warn',
      `${missing}; forwarding works only because the FORWARD policy is ACCEPT (a firewall that sets DROP, as Docker does, breaks it)`,
      fix,
    );
  }
  const before = forward.slice(0, jumpAt).filter((r) => /-j (DROP|REJECT)\b/.test(r) && !r.includes(' -i lo'));
  if (before.length > 0)
    return host(
      'forward',
      'warn',
      `FORWARD drops or rejects before the jump to ${FWD_CHAIN}: ${before.map((r) => safeText(r, 120)).join(' | ')}`,
      "make sure these rules do not match overlay traffic, or put weft's jump first",
    );
  return host(
    'forward',
    'ok',
    `FORWARD jumps to ${FWD_CHAIN}, which accepts ${n} both ways (policy ${safeText(policy)})`,
  );
}

/**
 * Strict reverse-path filtering (1) on the interfaces overlay traffic crosses drops packets
 * whose source would not route back the same way (asymmetric paths, a second NIC, DirectRouting
 * through another interface). The kernel uses the larger of `all` and the interface's value.
 */
export function rpFilterFinding(o: DoctorObservations): Finding {
  const all = o.rpFilter.all;
  if (all === undefined) return host('rp_filter', 'skip', 'cannot read net.ipv4.conf.all.rp_filter');
  const devs = [o.iface, o.device].filter((d): d is string => d !== undefined);
  const strict = devs.filter((d) => Math.max(all, o.rpFilter[d] ?? 0) === 1);
  if (all === 1 || strict.length > 0) {
    const where =
      all === 1
        ? 'net.ipv4.conf.all.rp_filter=1'
        : strict.map((d) => `net.ipv4.conf.${safeText(d)}.rp_filter=1`).join(', ');
    const ownStrict = devs.filter((d) => o.rpFilter[d] === 1);
    const targets = all === 1 ? ['all', ...ownStrict] : ownStrict;
    return host(
      'rp_filter',
      'warn',
      `strict reverse-path filtering (${where}) is a risk: packets from a peer that arrive on another interface than the route back (asymmetric paths, several NICs, directRouting) are dropped silently`,
      `use loose mode: ${targets.map((d) => `sysctl -w net.ipv4.conf.${safeText(d)}.rp_filter=2`).join('; ')} (and in /etc/sysctl.d)`,
    );
  }
  return host(
    'rp_filter',
    'ok',
    `reverse-path filtering is loose or off on ${devs.length ? devs.map((d) => safeText(d)).join(', ') : 'all interfaces'}`,
  );
}

/**
 * The vxlan checksum problem: with tx checksum offload on flannel.N, some kernels and NICs
 * (notably behind NAT, VMware vmxnet3) send vxlan packets with bad inner UDP/TCP checksums,
 * which receivers drop: ping works, TCP does not. flannel documents the work-around
 * (flannel-io/flannel#1279, #2152, troubleshooting PR #1929; flanneld turned offload off in
 * PR #1282). Reported as a warning: on a healthy kernel offload is harmless and faster.
 */
export function offloadFinding(o: DoctorObservations): Finding {
  const x = o.offload;
  if (x.kind === 'not-vxlan') return host('checksum-offload', 'skip', 'not a vxlan fabric');
  if (x.kind === 'no-ethtool')
    return host(
      'checksum-offload',
      'skip',
      'ethtool is not installed, so tx checksum offload on the vxlan device cannot be read',
      'apt-get install ethtool to have this checked',
    );
  if (x.kind === 'error') return host('checksum-offload', 'skip', `ethtool -k failed: ${safeText(x.error)}`);
  const dev = safeText(x.device);
  if (x.txChecksumIPGeneric === 'on') {
    return host(
      'checksum-offload',
      'warn',
      `tx checksum offload is on for ${dev}: on some kernels and NICs (behind NAT, VMware vmxnet3) vxlan packets then carry bad checksums; symptom: ping works, TCP stalls`,
      `if TCP across hosts stalls: ethtool -K ${dev} tx-checksum-ip-generic off (re-apply whenever the device is recreated, e.g. a udev rule)`,
    );
  }
  return host('checksum-offload', 'ok', `tx-checksum-ip-generic is ${x.txChecksumIPGeneric} for ${dev}`);
}

export function clockFinding(o: DoctorObservations): Finding {
  const c = o.clock;
  if (!c.ok) return host('clock', 'skip', `cannot compare the clock with etcd's: ${safeText(c.error)}`);
  const s = (Math.abs(c.skewMs) / 1000).toFixed(1);
  if (Math.abs(c.skewMs) > CLOCK_SKEW_WARN_MS) {
    return host(
      'clock',
      'warn',
      `this host's clock is ${s} s ${c.skewMs > 0 ? 'ahead of' : 'behind'} etcd's (${safeText(c.source)}): lease expiry in weft status and log times are off by as much`,
      'synchronise the clock (timedatectl set-ntp true; chronyc tracking)',
    );
  }
  return host('clock', 'ok', `the clock agrees with etcd's within ${s} s`);
}

export function hostFindings(o: DoctorObservations): Finding[] {
  return [
    agentFinding(o),
    leaseFinding(o),
    forwardingFinding(o),
    forwardFinding(o),
    rpFilterFinding(o),
    offloadFinding(o),
    clockFinding(o),
  ];
}
