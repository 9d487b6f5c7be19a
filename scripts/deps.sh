#!/usr/bin/env bash
# Installs what building and testing ustack needs, when missing (Debian 12).
set -eu
need=()
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
for p in build-essential clang libclang-rt-14-dev make pkg-config iproute2 iputils-ping ethtool \
         socat netcat-openbsd tshark python3 dpdk dpdk-dev procps curl wrk \
         libxdp-dev libbpf-dev; do
    have "$p" || need+=("$p")
done
if ((${#need[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "deps: missing packages: ${need[*]} (run as root to install them)" >&2
        exit 0
    fi
    echo "deps: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # tshark asks whether non-root users may capture: answer no, without a prompt.
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
