/*
 * RKDEPLOY LAB STAND-IN run in place of Rockchip's uClibc rknn_server on the lab's RV1106 boards. It is NOT
 * Rockchip's server. The file installed at /oem/usr/bin/rknn_server is Rockchip's own (its version is read from
 * it); it cannot run without uClibc, so the lab's stand-in /lib/ld-uClibc.so.0 executes this program instead:
 * a process named rknn_server that says what it is and waits, so that starting, finding and stopping the
 * board's server can be exercised. It serves nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

__attribute__((used)) const char rkdeploy_standin_label[] =
    "RKDEPLOY LAB STAND-IN: not Rockchip's rknn_server, built by tests/lab/fleet.py";

int main(int argc, char **argv) {
    (void)argc;
    printf("rkdeploy lab stand-in running for the uClibc program %s (Rockchip's uClibc rknn_server cannot run "
           "in this lab: no uClibc)\n", argv[0]);
    fflush(stdout);
    for (;;) pause();
}
