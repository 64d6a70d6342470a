#!/usr/bin/env bash
# Mutation testing of the security core with mutmut 3 (not part of the default CI run: it is slow).
#
# Usage: scripts/mutation.sh [--list] [--rerun] [--max-children N] [--workdir DIR] [MODULE...]
#
#   MODULE          a section of scripts/mutation.cfg (pickle_scan, policy, restricted, crypto, keys,
#                   signing, loader, auth, limits, auditlog, fairness_metrics, membership);
#                   none: every module (hours).
#   --list          print the modules, their source files and test files, and exit.
#   --rerun         keep the previous run of each module, refresh its tests from this checkout and
#                   run again only the mutants that were not killed and are not listed as
#                   equivalent (after adding tests).
#   --max-children  parallel mutant workers (default 1: one core).
#   --workdir       where the scratch copies go (default ${TMPDIR:-/tmp}/modelshield-mutation).
#
# Each module is mutated in a scratch copy of this checkout (tracked files plus untracked files
# that git does not ignore), so the checkout itself is never touched. For each module it prints
# the score (killed / (mutants - equivalent)) and every surviving mutant with its diff; the full
# mutmut log and a summary are kept in <workdir>/<module>/. Exit status: 0 after a run (whatever
# the score), 2 on a usage or setup error.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
CFG="$ROOT/scripts/mutation.cfg"
VENV="${MODELSHIELD_VENV:-.venv}"
PY="$ROOT/$VENV/bin/python"
[[ "$VENV" = /* ]] && PY="$VENV/bin/python"
WORKDIR="${TMPDIR:-/tmp}/modelshield-mutation"
CHILDREN=1
RERUN=0
LIST=0
MODULES=()

die() { echo "mutation.sh: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --list) LIST=1 ;;
    --rerun) RERUN=1 ;;
    --max-children) [ $# -ge 2 ] || die "--max-children needs a number"; CHILDREN="$2"; shift ;;
    --max-children=*) CHILDREN="${1#*=}" ;;
    --workdir) [ $# -ge 2 ] || die "--workdir needs a directory"; WORKDIR="$2"; shift ;;
    --workdir=*) WORKDIR="${1#*=}" ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) MODULES+=("$1") ;;
  esac
  shift
done
[[ "$CHILDREN" =~ ^[1-9][0-9]*$ ]] || die "--max-children must be a positive integer, not '$CHILDREN'"
[ -x "$PY" ] || die "no virtual environment at $VENV: run scripts/setup.sh first"
[ -f "$CFG" ] || die "missing $CFG"
command -v git >/dev/null || die "git is needed (the scratch copy is made from git ls-files)"

# cfg <command> [args]: read scripts/mutation.cfg (modules | source M | tests M | marks)
cfg() {
  "$PY" - "$CFG" "$@" <<'PYEOF'
import configparser, sys
cp = configparser.ConfigParser(interpolation=None)
cp.optionxform = str
cp.read(sys.argv[1], encoding="utf-8")
cmd, args = sys.argv[2], sys.argv[3:]
mods = [s for s in cp.sections() if s not in ("settings", "equivalent")]
if cmd == "modules":
    print("\n".join(mods))
elif cmd == "marks":
    print(cp.get("settings", "marks", fallback=""))
elif cmd in ("source", "tests", "deselect"):
    if args[0] not in mods:
        sys.exit(f"mutation.sh: unknown module {args[0]!r}; known: {', '.join(mods)}")
    print("\n".join(x for x in cp.get(args[0], cmd, fallback="").split() if x))
PYEOF
}

mapfile -t KNOWN < <(cfg modules)
if [ "$LIST" = 1 ]; then
  for m in "${KNOWN[@]}"; do
    echo "$m: $(cfg source "$m")"
    cfg tests "$m" | sed 's/^/    /'
  done
  exit 0
fi
[ ${#MODULES[@]} -gt 0 ] || MODULES=("${KNOWN[@]}")
for m in "${MODULES[@]}"; do
  cfg source "$m" >/dev/null || exit 2
done

# mutmut 3 into the venv when missing (it is not a runtime dependency)
if ! "$PY" -c "import mutmut, sys; sys.exit(int(mutmut.__version__.split('.')[0]) < 3)" 2>/dev/null; then
  echo "installing mutmut 3 into $VENV"
  "$PY" -m pip --disable-pip-version-check -q install "mutmut>=3.8,<4" || die "could not install mutmut"
fi
MUTMUT="$(dirname "$PY")/mutmut"
MARKS="$(cfg marks)"

summarize() {  # summarize <workdir of a module> <module> <source>
  "$PY" - "$CFG" "$@" <<'PYEOF'
import configparser, json, subprocess, sys
from collections import Counter
from pathlib import Path

cfg_path, wd, module, source = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4]
cp = configparser.ConfigParser(interpolation=None)
cp.optionxform = str
cp.read(cfg_path, encoding="utf-8")
equivalent = dict(cp.items("equivalent")) if cp.has_section("equivalent") else {}
meta = wd / "mutants" / (source + ".meta")
if not meta.exists():
    sys.exit(f"mutation.sh: {module}: no results ({meta} missing); see {wd}/mutmut.log")
codes = json.loads(meta.read_text("utf-8"))["exit_code_by_key"]
KILLED = {1, 3, 36, 37, 24, -24, 152, 255, -9, -11}  # failed test, timeout, type check, crash
status = {}
for name, code in codes.items():
    if code is None:
        status[name] = "not checked"
    elif code in KILLED:
        status[name] = "killed"
    elif code == 0:
        status[name] = "survived"
    elif code in (5, 33):
        status[name] = "no tests"
    elif code == 34:
        status[name] = "skipped"
    else:
        status[name] = "suspicious"
alive = [n for n, s in status.items() if s != "killed"]
eq = [n for n in alive if n in equivalent]
source_module = source.removeprefix("src/").removesuffix(".py").replace("/", ".")
stale = sorted(n for n in equivalent if n.startswith(source_module + ".") and status.get(n) == "killed")
mutmut_bin = str(Path(sys.executable).with_name("mutmut"))
real = [n for n in alive if n not in equivalent]
c = Counter(status.values())
total = len(status)
scored = total - len(eq)
killed = c["killed"]
score = 100.0 * killed / scored if scored else 100.0
lines = [f"== {module} ({source}): {killed} of {scored} non-equivalent mutants killed = {score:.1f}%  "
         f"[{total} mutants: " + ", ".join(f"{v} {k}" for k, v in sorted(c.items())) + f"; {len(eq)} equivalent]"]
for n in real:
    diff = subprocess.run([mutmut_bin, "show", n], cwd=wd, capture_output=True, text=True).stdout
    changed = [ln for ln in diff.splitlines() if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]
    lines.append(f"  {status[n]:<11} {n}")
    lines += [f"      {ln.strip()[:150]}" for ln in changed[:4]]
for n in eq:
    lines.append(f"  equivalent  {n}: {equivalent[n]}")
for n in stale:
    lines.append(f"  NOTE: {n} is listed as equivalent in scripts/mutation.cfg but was killed: remove it")
text = "\n".join(lines)
(wd / "summary.txt").write_text(text + "\n", encoding="utf-8")
print(text)
PYEOF
}

mkdir -p "$WORKDIR"
for m in "${MODULES[@]}"; do
  SRC="$(cfg source "$m")"
  mapfile -t TESTS < <(cfg tests "$m")
  mapfile -t DESELECT < <(cfg deselect "$m")
  WD="$WORKDIR/$m"
  NEWCFG="$(
    echo "[mutmut]"
    echo "source_paths = src/modelshield"
    echo "only_mutate = $SRC"
    echo "use_git_change_detection = false"
    echo "pytest_add_cli_args_test_selection ="
    for t in "${TESTS[@]}"; do echo "    $t"; done
    echo "pytest_add_cli_args ="
    echo "    -pno:cacheprovider"
    echo "    -m"
    echo "    $MARKS"
    for d in "${DESELECT[@]}"; do
      if [ -n "$d" ]; then echo "    --deselect"; echo "    $d"; fi
    done
  )"
  if [ "$RERUN" = 1 ] && [ -f "$WD/setup.cfg" ] && [ "$(cat "$WD/setup.cfg")" != "$NEWCFG" ]; then
    # mutmut drops every stored result when its configuration changes: a rerun would report the earlier
    # kills as "not checked", so the module runs in full instead
    echo "== $m: the test list changed since the last run: a full run instead of --rerun"
    rm -f "$WD/mutants/$SRC.meta"
  fi
  for t in "${TESTS[@]}"; do [ -e "$t" ] || die "$m: test file $t (scripts/mutation.cfg) does not exist"; done
  [ -f "$SRC" ] || die "$m: source $SRC (scripts/mutation.cfg) does not exist"
  if [ "$RERUN" = 1 ] && [ -f "$WD/mutants/$SRC.meta" ]; then
    # refresh the tests only (the mutants of the unchanged source and their results are kept)
    rm -rf "$WD/tests"
    git ls-files -co --exclude-standard -z -- tests | tar --null -T - -cf - | tar -xf - -C "$WD"
    # every mutant not killed, except those listed as equivalent in scripts/mutation.cfg
    mapfile -t NAMES < <("$PY" -c "
import configparser, json, sys
cp = configparser.ConfigParser(interpolation=None)
cp.optionxform = str
cp.read(sys.argv[2], encoding='utf-8')
eq = set(cp.options('equivalent')) if cp.has_section('equivalent') else set()
codes = json.load(open(sys.argv[1]))['exit_code_by_key']
print('\n'.join(k for k, v in codes.items() if v not in (1, 3, 36, 37, 24, -24, 152, 255, -9, -11) and k not in eq))" \
      "$WD/mutants/$SRC.meta" "$CFG")
    if ! cmp -s "$SRC" "$WD/$SRC"; then
      die "$m: $SRC changed since the last run; run without --rerun"
    fi
    if [ ${#NAMES[@]} -eq 0 ]; then
      echo "== $m: nothing to rerun (every mutant killed)"; summarize "$WD" "$m" "$SRC"; continue
    fi
  else
    rm -rf "$WD"
    mkdir -p "$WD"
    git ls-files -co --exclude-standard -z | tar --null -T - -cf - 2>/dev/null | tar -xf - -C "$WD"
    NAMES=()
  fi
  grep -q '^\[tool\.mutmut\]' "$WD/pyproject.toml" 2>/dev/null \
    && die "pyproject.toml has a [tool.mutmut] section, which would override the per-module setup.cfg"
  printf '%s\n' "$NEWCFG" > "$WD/setup.cfg"
  # mutants/src must exist before Python starts: a sys.path entry that is missing at start-up is
  # cached as "no importer" and the tests would silently import the unmutated checkout instead.
  mkdir -p "$WD/mutants/src"
  echo "== $m: mutating $SRC against ${#TESTS[@]} test files in $WD (log: $WD/mutmut.log)"
  start=$(date +%s)
  set +e
  # PYTHONPATH: subprocesses started by tests (CLI runs) import the mutated copy too
  (cd "$WD" && OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH="$WD/mutants/src" \
     "$MUTMUT" run --max-children "$CHILDREN" ${NAMES[@]+"${NAMES[@]}"} > "$WD/mutmut.log" 2>&1)
  rc=$?
  set -e
  echo "   mutmut exit status $rc after $(( $(date +%s) - start )) s"
  if [ $rc -ne 0 ]; then
    tr '\r' '\n' < "$WD/mutmut.log" | grep -v -E '^\s*[⠁-⣿]' | tail -25 >&2
  fi
  summarize "$WD" "$m" "$SRC" || true
done
