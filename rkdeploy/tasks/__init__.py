"""The Invoke tasks, one module per area; `rkdeploy.cli` puts them together."""
