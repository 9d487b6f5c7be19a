# Prologue of the tests that run ustack on a kernel-bypass backend against
# the kernel (sourced first, not run): root, the TCP tools and the shared
# ustack steps.
. "$(dirname "${BASH_SOURCE[0]}")/netns.sh"
netns_require_root
. "$(dirname "${BASH_SOURCE[0]}")/tcp.sh"
tcp_require_tools
. "$(dirname "${BASH_SOURCE[0]}")/ustack.sh"
