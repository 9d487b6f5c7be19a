#include <signal.h>
#include <string.h>

#include "ustack/ustack.h"

static volatile sig_atomic_t stop_flag;

static void stop_handler(int sig)
{
    (void)sig;
    stop_flag = 1;
}

volatile sig_atomic_t *ust_stop_on_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = stop_handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    /* A closed peer socket (memif control channel) must not kill us. */
    signal(SIGPIPE, SIG_IGN);
    return &stop_flag;
}
