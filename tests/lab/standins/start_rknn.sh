#!/bin/sh
# RKDEPLOY LAB STAND-IN for Rockchip's start_rknn.sh (same documented behaviour):
# keep rknn_server running, restarting it a second after it exits.
while true; do
    /usr/bin/rknn_server
    sleep 1
done
