"""Invoke wiring: rkdeploy's own tasks plus the board lab (which lives with the tests)."""
from rkdeploy.cli import build_namespace
from tests.lab.tasks import lab

ns = build_namespace()
ns.add_collection(lab)
