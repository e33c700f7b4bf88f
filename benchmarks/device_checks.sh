#!/usr/bin/env bash
# The GPU benchmarks in one call of the device tool, most important first: ISNAS-DIP scoring
# (5000 candidates at 64 px, 1000 at 256 px) and its whole pipeline on Set12/01, resized and
# full size (issue #5's figures), then the DIP step and the cohort. Each step has its own time
# limit; after each, the results (benchmarks/results/*_<backend>.json and the README with their
# tables) are copied to $OUT, so a call stopped at its limit still returns what finished.
#
# Prepare here, once per checkout (the device has no ml-collections; ../shared does not travel):
#   echo /.whl/ >> .git/info/exclude; echo /.devdata/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: -d .whl ml-collections==1.1.0
#   mkdir -p .devdata/Set12 && cp ../shared/data/Set12/01.png .devdata/Set12/
# Then: run(command="bash benchmarks/device_checks.sh", carry=[".whl", ".devdata"],
#           timeout_s=570), and copy the returned files into benchmarks/.
# SMOKE=1 runs every step at toy sizes, to check the script on a CPU: in a scratch clone, since
# the benchmarks rewrite benchmarks/results/*_<backend>.json and benchmarks/README.md.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/device_checks}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit 1
fi
BACKEND=$(python3 -c "import jax; print(jax.default_backend())") || exit 1
DATA=.devdata
[ -e "$DATA/Set12/01.png" ] || DATA=../shared/data
echo "backend $BACKEND, data $DATA"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null

BUDGET=${BUDGET:-540}  # seconds for every step together (the call's timeout_s less ~30 s)
SLOW=1  # time limits' factor
if [ "${SMOKE:-0}" = 1 ]; then
  SLOW=4  # a CPU compiles each program in ~0.5-1.5 min
  SCORE="--sizes=64 --num=12"
  PIPE="--num_candidates=20 --steps=4"
  DIP="--sizes=64 --rounds=1 --conv_impls=auto"
  COHORT="--sizes=64 --members=1,4 --steps=2"
else  # the pipeline scores the list's first 1000 and extrapolates to 5000 (isnas_speed.py)
  SCORE="--sizes=64,256 --num=5000,1000"
  PIPE="--num_candidates=1000 --steps=1200"
  DIP="--sizes=64,256,512"
  COHORT="--sizes=64,256 --members=1,4,15,64"
fi

START=$SECONDS
step() {  # step LIMIT_SECONDS SCRIPT FLAGS...: at most LIMIT, and never past the budget
  local left=$((BUDGET * SLOW - (SECONDS - START))) limit=$(($1 * SLOW))
  shift
  ((limit > left)) && limit=$left
  if ((limit < 20)); then
    echo "== skipped (budget spent): $*"
    return
  fi
  echo "== $* (limit ${limit} s)"
  local t0=$SECONDS
  timeout "$limit" python3 "$@"
  echo "== rc $? after $((SECONDS - t0)) s"
  cp benchmarks/results/*_"$BACKEND".json benchmarks/README.md "$OUT"/ 2>/dev/null
}

step 200 benchmarks/isnas_speed.py $SCORE --devices=1 --threads=1 --chains=used
step 170 benchmarks/isnas_speed.py --pipeline=resized --data="$DATA" --image=Set12/01.png $PIPE
step 170 benchmarks/isnas_speed.py --pipeline=full --data="$DATA" --image=Set12/01.png $PIPE
step 100 benchmarks/dip_speed.py $DIP
step 100 benchmarks/cohort_speed.py $COHORT
ls -l "$OUT"
