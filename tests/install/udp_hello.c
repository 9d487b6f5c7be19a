/* A user's program built out of tree against an installed ustack (see
 * tests/interop/install.sh): it only includes the public header and uses
 * the public API, so it compiles with nothing but `pkg-config ustack`. */
#include <stdio.h>
#include <string.h>

#include <ustack/ustack.h>

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--help") == 0) {
        printf("usage: udp_hello STACK-OPTIONS\n");
        ust_config_print_help(stdout);
        return 0;
    }
    struct ust_config *cfg = ust_config_new();
    if (!cfg || ust_config_parse_args(cfg, &argc, argv) < 0)
        return 2;
    struct ust_stack *s = ust_stack_create(cfg);
    ust_config_free(cfg);
    if (!s)
        return 1;
    struct ust_udp *u = ust_udp_open(s);
    ust_udp_close(u);
    ust_stack_destroy(s);
    return 0;
}
