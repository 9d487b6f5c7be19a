#!/usr/bin/env bash
# The TCP interop scenarios of tcp_kernel_client.sh, tcp_ustack_client.sh and
# tcp_impaired.sh over the kernel-bypass backends (issue 7's "done means"):
# for each of afxdp native, afxdp generic and dpdk (net_af_packet vdev,
# --no-huge), with ustack in a namespace with no IP address:
#   - over a veth pair: the kernel's tcppeer.py client streams through
#     ust-echo (byte-exact); ust-tcpclient uploads to a kernel sink that
#     answers the SHA-256 of what it got, echoes through a kernel echo
#     server on 8 connections, and downloads (SHA-256 compared);
#   - through the impairing bridge (ust-impair; ustack on $NETNS_RIGHT_IF):
#     kernel -> ust-echo and ust-tcpclient -> kernel sink under 1% loss,
#     under 5% loss + 25% reordering + 1% duplicates, and across a 1 s
#     blackout that starts mid-transfer.
# Sizes are those of the TCP scripts (stream/upload/download 64 MiB, 8 x 2
# MiB echo, loss 64 MiB, mixed 8 MiB, blackout 16 MiB) times TCP_SIZE_SCALE,
# which here defaults to 0.25 (16 MiB streams) to keep CI time low (about
# 55 s for all three backends on the 2-core test machine); TCP_SIZE_SCALE=1
# gives the full sizes. TCP_BACKENDS="afxdp-native dpdk" picks backends.
# A backend the build lacks is skipped; exit 77 when all are.
set -u
. "$(dirname "$0")/../lib/netns.sh"
netns_require_root
TCP_SIZE_SCALE=${TCP_SIZE_SCALE:-0.25}
. "$(dirname "$0")/../lib/tcp.sh"
tcp_require_tools
BACKENDS=${TCP_BACKENDS:-afxdp-native afxdp-generic dpdk}

netns_setup_pair tb || exit 1
netns_tmpdir || exit 1
netns_setup_bridge tbi --stats || exit 1
trap 'netns_cleanup; tcp_dev_cleanup' EXIT
PKNS=$NETNS_A PUNS=$NETNS_B PUIF=$NETNS_IF_B PKIP=10.84.0.1 PUIP=10.84.0.2
ip -n "$PKNS" addr add "$PKIP/24" dev "$NETNS_IF_A" || exit 1
BKNS=$NETNS_LEFT BKIP=$NETNS_LEFT_IP BUNS=$NETNS_RIGHT BUIF=$NETNS_RIGHT_IF BUIP=$NETNS_RIGHT_IP

# if_bytes NS IF: bytes the interface has received and sent.


# run_backend KIND: every scenario with ustack on KIND.
run_backend() {
    local k=$1 bytes t0=$SECONDS
    k=${k//-/_}
    echo "==== $TCP_DEV_KIND: $(tcp_dev_spec IF scenario)"
    bytes=$(tcp_bytes 64)
    tcp_kernel_echo "${k}_kernel_echo" "$PKNS" "$PUNS" "$PUIF" "$PUIP" "$bytes" 1
    tcp_ustack_upload "${k}_ustack_upload" "$PKNS" "$PKIP" "$PUNS" "$PUIF" "$PUIP" "$bytes"
    tcp_ustack_echo "${k}_ustack_echo_8x2m" "$PKNS" "$PKIP" "$PUNS" "$PUIF" "$PUIP" "$(tcp_bytes 2)" 8
    tcp_ustack_download "${k}_ustack_download" "$PKNS" "$PKIP" "$PUNS" "$PUIF" "$PUIP" "$bytes"

    echo "== $TCP_DEV_KIND: bridge with 1% loss"
    netns_impair_restart --seed 11 --stats --loss 0.01 || { tcp_result "${k}_loss1" 1; return; }
    tcp_kernel_echo "${k}_loss1_kernel_echo" "$BKNS" "$BUNS" "$BUIF" "$BUIP" "$bytes" 1
    tcp_ustack_upload "${k}_loss1_ustack_upload" "$BKNS" "$BKIP" "$BUNS" "$BUIF" "$BUIP" "$bytes"
    netns_impair_stop
    grep -E "drop_" "$NETNS_IMPAIR_LOG" | sed "s/^/[${k}_loss1 bridge] /"

    echo "== $TCP_DEV_KIND: bridge with 5% loss, 25% reordering, 1% duplicates"
    netns_impair_restart --seed 11 --stats --loss 0.05 --reorder 0.25 --dup 0.01 || { tcp_result "${k}_mixed" 1; return; }
    bytes=$(tcp_bytes 8)
    tcp_kernel_echo "${k}_mixed_kernel_echo" "$BKNS" "$BUNS" "$BUIF" "$BUIP" "$bytes" 1
    tcp_ustack_upload "${k}_mixed_ustack_upload" "$BKNS" "$BKIP" "$BUNS" "$BUIF" "$BUIP" "$bytes"
    netns_impair_stop
    grep -E "drop_" "$NETNS_IMPAIR_LOG" | sed "s/^/[${k}_mixed bridge] /"

    echo "== $TCP_DEV_KIND: 1 s blackout once 1 MiB has moved"
    # The bridge itself starts the blackout after 1 MiB (tcp_blackout).
    bytes=$(tcp_bytes 16)
    tcp_blackout "${k}_blackout_kernel_echo" tcp_kernel_echo "${k}_blackout_kernel_echo" \
        "$BKNS" "$BUNS" "$BUIF" "$BUIP" "$bytes" 1
    tcp_blackout "${k}_blackout_ustack_upload" tcp_ustack_upload "${k}_blackout_ustack_upload" \
        "$BKNS" "$BKIP" "$BUNS" "$BUIF" "$BUIP" "$bytes"
    echo "==== $TCP_DEV_KIND: $((SECONDS - t0)) s"
}

ran=0
for TCP_DEV_KIND in $BACKENDS; do
    if ! why=$(tcp_dev_available); then
        echo "SKIP $TCP_DEV_KIND: $why"
        continue
    fi
    ran=$((ran + 1))
    run_backend "$TCP_DEV_KIND"
    tcp_dev_cleanup
done
[ "$ran" -gt 0 ] || { echo "SKIP: no backend of '$BACKENDS' is built in"; exit 77; }
tcp_finish
