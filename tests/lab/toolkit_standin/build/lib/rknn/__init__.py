"""RKDEPLOY LAB STAND-IN for Rockchip's rknn-toolkit2 package (not Rockchip's code)."""
