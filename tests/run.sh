#!/usr/bin/env bash
# Run every test against the binaries in build/ and end with one summary line:
# "N passed, N failed". Unit tests are cmocka binaries in build/tests/; the
# integration tests are pytest files in tests/integration/ (Debian's python3,
# which is where python3-pytest lives). Exit status is 0 only if nothing failed.
set -u
cd "$(dirname "$0")/.."

passed=0
failed=0
failures=()
PY=/usr/bin/python3

for t in build/tests/test_*; do
    [ -x "$t" ] || continue
    out=$(CMOCKA_MESSAGE_OUTPUT=stdout "$t" 2>&1)
    rc=$?
    p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -1)
    f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -1)
    p=${p:-0}; f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi   # crashed before reporting
    passed=$((passed + p)); failed=$((failed + f))
    if [ "$f" -ne 0 ]; then
        failures+=("$t")
        printf '%s\n' "$out" | tail -30
    fi
    echo "unit $(basename "$t"): $p passed, $f failed"
done

report=build/pytest-report.txt
$PY -m pytest -q -p no:cacheprovider -rfE tests/integration "$@" 2>&1 | tee "$report"
line=$(grep -E '^(=+ )?[0-9]+ (passed|failed|error)' "$report" | tail -1)
[ -n "$line" ] || line=$(tail -1 "$report")
ip=$(printf '%s' "$line" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+'); ip=${ip:-0}
if_=$(printf '%s' "$line" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+'); if_=${if_:-0}
ie=$(printf '%s' "$line" | grep -oE '[0-9]+ error' | grep -oE '[0-9]+'); ie=${ie:-0}
if ! grep -qE '[0-9]+ (passed|failed)' "$report"; then ie=$((ie + 1)); fi  # pytest itself broke
passed=$((passed + ip)); failed=$((failed + if_ + ie))
[ $((if_ + ie)) -ne 0 ] && failures+=("integration")

[ ${#failures[@]} -ne 0 ] && echo "failing: ${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
