#!/usr/bin/env bash
# Installs the peers and load generator of the datapath benchmark
# (e2e/bench datapath) from the distribution's packages: HAProxy, nginx
# (light flavour when available, with its stream module for TCP) and wrk.
# Safe to re-run: nothing is installed when every program is present.
#
# Usage: scripts/install-bench-tools.sh
set -euo pipefail

log() { printf 'install-bench-tools: %s\n' "$*" >&2; }

have_all() {
    command -v haproxy >/dev/null 2>&1 &&
        command -v nginx >/dev/null 2>&1 &&
        command -v wrk >/dev/null 2>&1 &&
        nginx_has_stream
}

# nginx proxies TCP with its stream module, built in or loadable.
nginx_has_stream() {
    nginx -V 2>&1 | grep -q -- '--with-stream' ||
        ls /usr/lib/nginx/modules/ngx_stream_module.so >/dev/null 2>&1
}

if have_all; then
    log "haproxy, nginx (with stream) and wrk present"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    log "apt-get not found: install haproxy, nginx (with the stream module) and wrk by hand"
    exit 1
fi
SUDO=()
if [[ "$(id -u)" != 0 ]]; then
    if ! command -v sudo >/dev/null 2>&1; then
        log "not root and no sudo: cannot install packages"
        exit 1
    fi
    SUDO=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
log "apt-get update"
if ! "${SUDO[@]}" apt-get update -qq; then
    log "apt-get update failed (no network or no package sources?)"
    exit 1
fi
nginx_pkg=nginx-light
if ! apt-cache show nginx-light >/dev/null 2>&1; then
    nginx_pkg=nginx
fi
pkgs=(haproxy "$nginx_pkg" wrk)
# Debian ships the stream module separately for some flavours.
if apt-cache show libnginx-mod-stream >/dev/null 2>&1; then
    pkgs+=(libnginx-mod-stream)
fi
log "apt-get install ${pkgs[*]}"
if ! "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null; then
    log "apt-get install ${pkgs[*]} failed"
    exit 1
fi
# The packages start system services; the benchmark runs its own instances.
for svc in haproxy nginx; do
    "${SUDO[@]}" service "$svc" stop >/dev/null 2>&1 || true
done
if ! have_all; then
    log "installed, but haproxy, nginx with stream or wrk is still missing"
    exit 1
fi
log "done: $(haproxy -v | head -n1); $(nginx -v 2>&1); wrk present"
