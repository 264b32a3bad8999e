#!/bin/sh
# RKDEPLOY LAB STAND-IN for Rockchip's restart_rknn.sh (same documented behaviour).
killall start_rknn.sh > /dev/null 2>&1
killall rknn_server > /dev/null 2>&1
start_rknn.sh > /dev/null 2>&1 &
