#!/usr/bin/env bash
# Mutation testing, on demand (not part of scripts/test.sh): mutmut 3 changes one pure module at a time
# (a `<` into `<=`, a string into another, a return value into None, ...) and runs that module's unit tests
# against each change; a change no test notices ("survived") is a line the tests do not really check.
#
#   bash scripts/mutation.sh                      # every module of the list below (about an hour on 2 cores)
#   bash scripts/mutation.sh socs versions        # some of them
#   MUTATION_JOBS=1 bash scripts/mutation.sh remote   # fewer test processes at once (default: 2)
#
# Each module runs in a scratch copy of the checkout (its files, with a pyproject.toml that holds only the
# module's [tool.mutmut] section), under $RKDEPLOY_CACHE/mutation/<module> (default
# ~/.cache/rkdeploy/mutation): mutmut writes its mutants/ tree there and never into the checkout. It prints
# the score per module and per function what was not killed (MUTATION_LIST=1: every surviving mutant's name;
# all of them are in <module>/results.txt); `cd` there and `mutmut show NAME` shows one
# (with PYTHONPATH set as below). tests/README.md keeps the last scores.
#
# mutmut itself is not a dependency of rkdeploy: the first run installs the pinned version with pip into
# $RKDEPLOY_CACHE/mutmut-<version> (only what the venv lacks; the venv is left as setup.sh made it).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
MUTMUT_VERSION=3.8.1
CACHE=${RKDEPLOY_CACHE:-$HOME/.cache/rkdeploy}
LIB=$CACHE/mutmut-$MUTMUT_VERSION
JOBS=${MUTATION_JOBS:-2}

# module -> the unit test files that exercise it (mutmut runs only these, for speed; test_properties.py, whose
# hypothesis runs take ~9 s per mutant here, only for perf_parse; bundle: the manifest tests only, since
# test_bundle.py's SDK imports make a run 19 min instead of 2.5, for the same scored result)
declare -A TESTS=(
  [socs]="tests/unit/test_socs.py tests/unit/test_plans.py tests/unit/test_rknn_model.py"
  [versions]="tests/unit/test_versions.py tests/unit/test_policy.py tests/unit/test_probe.py"
  [remote]="tests/unit/test_remote.py tests/unit/test_deploy_scripts.py tests/unit/test_lock.py"
  [policy]="tests/unit/test_policy_findings.py tests/unit/test_policy.py tests/unit/test_check_report.py"
  [perf_parse]="tests/unit/test_perf_parse_snapshot.py tests/unit/test_perf_parse.py tests/unit/test_properties.py"
  [inventory]="tests/unit/test_inventory_edges.py tests/unit/test_inventory.py"
  [rknn_model]="tests/unit/test_rknn_model_snapshot.py tests/unit/test_rknn_model.py tests/unit/test_rknn_model_edges.py"
  [probe]="tests/unit/test_probe_parse.py tests/unit/test_probe.py tests/unit/test_session.py"
  [bundle]="tests/unit/test_bundle_manifest.py"
  [provision]="tests/unit/test_provision_plans.py tests/unit/test_plans.py tests/unit/test_promises.py"
  [deploy]="tests/unit/test_deploy_plan.py tests/unit/test_plans.py tests/unit/test_deploy_scripts.py tests/unit/test_promises.py"
)
DEFAULT=(socs versions remote policy perf_parse inventory rknn_model probe bundle provision deploy)
# module -> the functions scored, where the goal is about part of a module (its pure part: the probe's parser,
# deploy's and provision's plans, bundle's manifests); the rest of such a module runs on a board and is e2e
# territory. The whole module's score is printed too. "Class." names a class's methods.
declare -A SCOPE=(
  [probe]="_number parse_probe _derive_root _parse_id _add_file"
  [deploy]="board_model_dir model_name model_state _is_sha12 validate plan_deploy _metadata DeployPlan."
  [provision]="plan_provision _plan_lite2 install_script"
  [bundle]="lib_name board_arch libc_mismatch elf_libc _soc_label Bundle. sha256_of load_bundle _validated _validated_file list_versions verify parse_runtime_options"
)

if ! PYTHONPATH=$LIB "$PYTHON" -c "import mutmut" 2>/dev/null; then
  echo "mutation.sh: installing mutmut $MUTMUT_VERSION into $LIB" >&2
  rm -rf "$LIB.partial"
  "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-warn-script-location --target "$LIB.partial" "mutmut==$MUTMUT_VERSION"
  # drop what the venv already has (pytest, rich, ...), so that the tests run with the venv's own versions
  "$PYTHON" - "$LIB.partial" <<'EOF'
import importlib.metadata as md, pathlib, shutil, sys
lib = pathlib.Path(sys.argv[1])
doomed = set()
for info in sorted(lib.glob("*.dist-info")):
    try:
        md.version(info.name.split("-")[0])
    except md.PackageNotFoundError:
        continue
    for line in (info / "RECORD").read_text().splitlines():
        first = pathlib.Path(line.split(",")[0]).parts[0]
        if first not in ("bin", ".."):
            doomed.add(lib / first)
for path in doomed:
    shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
EOF
  mv "$LIB.partial" "$LIB"
fi

modules=("$@")
[ ${#modules[@]} -gt 0 ] || modules=("${DEFAULT[@]}")
summary=()
for m in "${modules[@]}"; do
  tests=${TESTS[$m]:-}
  [ -n "$tests" ] || { echo "mutation.sh: no test list for module '$m' (known: ${!TESTS[*]})" >&2; exit 1; }
  work=$CACHE/mutation/$m
  rm -rf "$work"
  mkdir -p "$work"
  # the checkout's files (tracked and new, not ignored ones), as the tests see them: fixtures, inventory/, docs/
  git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$work"
  rm -f "$work/pyproject.toml"
  also=$(cd "$work" && printf '"%s", ' $(ls -A | grep -vx -e rkdeploy -e tests -e pyproject.toml))
  selection=$(printf '"%s", ' $tests)
  cat > "$work/pyproject.toml" <<EOF
[tool.mutmut]
source_paths = ["rkdeploy/"]
also_copy = [${also%, }]
only_mutate = ["rkdeploy/$m.py"]
pytest_add_cli_args_test_selection = [${selection%, }]
pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", "-x"]
EOF
  start=$(date +%s)
  echo "mutation.sh: $m against $tests" >&2
  (cd "$work" && PYTHONPATH=$LIB "$PYTHON" -m mutmut run --max-children "$JOBS" > run.log 2>&1) || {
    echo "mutation.sh: mutmut failed for $m (see $work/run.log)" >&2; tail -20 "$work/run.log" >&2; exit 1; }
  seconds=$(( $(date +%s) - start ))
  (cd "$work" && PYTHONPATH=$LIB "$PYTHON" -m mutmut results --all true > results.txt 2>&1) || true
  line=$("$PYTHON" - "$work/results.txt" "$m" "$seconds" "${SCOPE[$m]:-}" <<'EOF'
import collections, sys
results, module, seconds, scope = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split()


def function(name):
    """mutmut's mutant name -> the function ("Class.method" for a method), as the code names it."""
    name = name.split("__mutmut_")[0].rsplit(".", 1)[-1]
    name = name[2:] if name.startswith("x_") else name[1:] if name.startswith("x\u01c1") else name
    return name.strip("\u01c1").replace("\u01c1", ".")


def in_scope(fn):
    return not scope or any(fn == s or (s.endswith(".") and fn.startswith(s)) for s in scope)


per = collections.defaultdict(collections.Counter)
for row in open(results):
    if ": " in row and "__mutmut_" in row:
        name, status = row.strip().rsplit(": ", 1)
        per[function(name)][status] += 1


def score(counts):
    total = sum(counts.values())
    killed = counts["killed"] + counts["timeout"]
    percent = f"{100 * killed / total:.0f} %" if total else "n/a"
    rest = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if k not in ("killed",))
    return f"{killed}/{total} killed ({percent}); {rest or 'none survived'}"


scored = sum((c for fn, c in per.items() if in_scope(fn)), collections.Counter())
whole = sum(per.values(), collections.Counter())
if scope:
    print(f"{module} ({' '.join(scope)}): {score(scored)}; whole module {score(whole)}; {seconds} s")
else:
    print(f"{module}: {score(whole)}; {seconds} s")
# per function, where something was not killed (a module's untested functions show up as "no tests")
for fn, c in sorted(per.items()):
    if set(c) - {"killed", "timeout"}:
        print(f"  {fn}{'' if in_scope(fn) else ' (not scored)'}: " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())))
EOF
)
  echo "$line"
  if [ -n "${MUTATION_LIST:-}" ]; then        # every surviving mutant's name (else: $work/results.txt)
    grep -E ": (survived|no tests)$" "$work/results.txt" | sed 's/^/    /' || true
  fi
  summary+=("$(head -n 1 <<< "$line")")
done
echo "--- mutation scores ($(date -u +%F), $(nproc) cores, mutmut $MUTMUT_VERSION)"
printf '%s\n' "${summary[@]}"
