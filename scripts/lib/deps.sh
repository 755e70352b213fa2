# Shared by scripts/test-all and scripts/demo: install what weft's tests and demo need.
# Debian packages (as root, only when something is missing) and the npm packages (npm ci).

# systemd: systemd-analyze (unit checks) and systemd-notify (sd_notify); python3 with the
# Prometheus project's client: an independent parser of weft's /metrics in the tests.
# ansible-core, ansible-lint, openssh: the Ansible role is linted and run for real over SSH.
# podman, netavark: Podman reads weft's network definition in the e2e tests.
DEBIAN_PACKAGES="etcd-server etcd-client iproute2 iptables iperf3 iputils-ping docker.io busybox-static util-linux procps systemd python3 python3-prometheus-client ansible-core ansible-lint openssh-server openssh-client podman netavark"
NEEDED_COMMANDS="etcd etcdctl ip bridge iptables-restore iperf3 ping dockerd docker busybox nsenter pgrep systemd-analyze systemd-notify ansible-playbook ansible-lint sshd ssh-keygen podman"

ensure_debian_packages() {
  local missing=""
  for c in $NEEDED_COMMANDS; do command -v "$c" >/dev/null 2>&1 || missing="$missing $c"; done
  /usr/bin/python3 -c 'import prometheus_client.parser' >/dev/null 2>&1 || missing="$missing python3-prometheus-client"
  [ -x /usr/lib/podman/netavark ] || missing="$missing netavark"
  [ -z "$missing" ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing commands:$missing; run as root so Debian packages can be installed ($DEBIAN_PACKAGES)" >&2
    return 1
  fi
  echo "installing Debian packages (missing:$missing)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  # Packages must not start services on this machine (sshd, dockerd, etcd): tests start their
  # own, inside namespaces. policy-rc.d 101 is Debian's "do not start" answer.
  local policy=/usr/sbin/policy-rc.d own_policy=""
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod 755 "$policy"; own_policy=1; fi
  # shellcheck disable=SC2086
  apt-get install -y -q --no-install-recommends $DEBIAN_PACKAGES >/dev/null
  if [ -n "$own_policy" ]; then rm -f "$policy"; fi
}

ensure_npm_packages() {
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
  fi
}
