/*
 * PID 1 of a lab board's PID namespace (host binary, not part of the board).
 * Runs the board's boot command and reaps every orphan, as init does; exits on
 * SIGTERM, which makes the kernel end every process of the board.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_term(int sig) { (void)sig; _exit(0); }

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    pid_t child = fork();
    if (child == 0) {
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        execvp(argv[1], argv + 1);
        _exit(127);
    }
    for (;;) {
        if (wait(NULL) < 0 && errno == ECHILD)
            pause();
    }
}
