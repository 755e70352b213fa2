# Shared by scripts/test-all and scripts/demo: install what each needs, and nothing more.
# Debian packages (as root, only when something is missing) and the npm packages (npm ci).
#
# Each entry: a Debian package, the command (or file) that shows it is installed, and why.
# The demo needs only the first group; the test suite needs both.

# package            | installed when this exists      | why
DEMO_DEPS="
etcd-server          | etcd                            | the fabric's etcd (v3 API)
etcd-client          | etcdctl                         | the lab checks etcd's health
iproute2             | bridge                          | weft programs links, routes, neighbours and FDB entries
iptables             | iptables-restore                | weft installs the masquerade and forward rules
iputils-ping         | ping                            | every pair of hosts is pinged across the overlay
util-linux           | nsenter                         | processes run inside the hosts' network namespaces
procps               | sysctl                          | IPv4 forwarding inside each host
"
TEST_DEPS="
docker.io            | dockerd                         | e2e: real dockerd on namespaced hosts
busybox-static       | busybox                         | e2e: the container image (no registry here)
podman               | podman                          | e2e: Podman reads weft's network definition
netavark             | /usr/lib/podman/netavark        | e2e: Podman's network backend
iperf3               | iperf3                          | benchmarks: throughput
systemd              | systemd-analyze                 | the unit is verified, sd_notify through systemd-notify
python3-prometheus-client | python3:prometheus_client  | an independent parser of weft's /metrics
ansible-core         | ansible-playbook                | e2e: the Ansible role run for real over SSH
ansible-lint         | ansible-lint                    | the Ansible role is linted
openssh-server       | sshd                            | e2e: an sshd on each Ansible-managed lab host
openssh-client       | ssh-keygen                      | e2e: the Ansible controller's keys and client
lintian              | lintian                         | the Debian package is checked, its result in the test log
prometheus           | promtool                        | the shipped alert rules are checked and unit-tested (promtool)
curl                 | curl                            | e2e: the quick start's health check, run as the guide writes it
wireguard-tools      | wg                              | e2e: the wireguard backend configures its device and peers with wg
wireguard-go         | wireguard-go                    | e2e: userspace WireGuard (this kernel has no wireguard module)
tcpdump              | tcpdump                         | e2e: the wireguard capture shows only encrypted UDP on the underlay
"

_trim() { local s="$1"; s="${s#"${s%%[![:space:]]*}"}"; printf '%s' "${s%"${s##*[![:space:]]}"}"; }

# Is the thing that shows a package is installed there? (a command, a file, or python3:module)
_dep_present() {
  case "$1" in
    /*) [ -e "$1" ] ;;
    python3:*) /usr/bin/python3 -c "import ${1#python3:}" >/dev/null 2>&1 ;;
    *) command -v "$1" >/dev/null 2>&1 ;;
  esac
}

# ensure_debian_packages demo|test: install the missing packages of that group (test includes demo).
ensure_debian_packages() {
  local lists="$DEMO_DEPS"
  [ "${1:-test}" = test ] && lists="$DEMO_DEPS$TEST_DEPS"
  local missing="" pkg probe why
  while IFS='|' read -r pkg probe why; do
    pkg=$(_trim "$pkg"); probe=$(_trim "$probe"); why=$(_trim "$why")
    [ -n "$pkg" ] || continue
    if ! _dep_present "$probe"; then
      missing="$missing $pkg"
      printf '  to install: %-26s %s\n' "$pkg" "$why"
    fi
  done <<< "$lists"
  [ -z "$missing" ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages:$missing; run as root so they can be installed" >&2
    return 1
  fi
  echo "installing Debian packages:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  # Packages must not start services on this machine (sshd, dockerd, etcd): tests start their
  # own, inside namespaces. policy-rc.d 101 is Debian's "do not start" answer.
  local policy=${WEFT_POLICY_RC_D:-/usr/sbin/policy-rc.d} own_policy=""
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod 755 "$policy"; own_policy=1; fi
  local rc=0
  # shellcheck disable=SC2086
  apt-get install -y -q --no-install-recommends $missing >/dev/null || rc=$?
  if [ -n "$own_policy" ]; then rm -f "$policy"; fi
  return "$rc"
}

ensure_npm_packages() {
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "installing npm packages (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error
  fi
}
