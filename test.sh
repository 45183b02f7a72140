#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests need
# (test-deps.sh, as root on Debian; PORTCTL_NO_INSTALL=1 skips it), then
# formatting, go vet, the tests with the race detector (go test's own summary
# lines are printed), a short fuzz of every parser of outside input, and the
# cross-compiles.
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$PATH:/usr/local/go/bin"
FUZZTIME="${FUZZTIME:-2s}"

if [ -z "${PORTCTL_NO_INSTALL:-}" ]; then
  echo "== test dependencies"
  bash test-deps.sh
fi

echo "== gofmt"
bad=$(gofmt -l $(find . -name '*.go' -not -path './.git/*'))
if [ -n "$bad" ]; then
  echo "not formatted with gofmt:"; echo "$bad"; exit 1
fi

echo "== go vet"
go vet ./...

echo "== go test -race"
# -v, filtered: go test's own summary lines, every skipped or failed test
# with its reason, and panics. A skipped integration test shows here.
set +e
go test -race -count=1 -v ./... 2>&1 | grep -E --line-buffered \
  '^(ok|FAIL|PASS|panic:|\?|fatal error:)|^\s*--- (FAIL|SKIP)|^\s+[^ ]+_test\.go:[0-9]+:|^goroutine [0-9]+ \['
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
  echo "go test failed (exit $status)"; exit "$status"
fi

echo "== fuzz ($FUZZTIME each)"
# Every Fuzz function in every package, each for a short while.
for dir in $(go list -f '{{.Dir}}' ./...); do
  pkg=$(go list "$dir")
  for fn in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    log=$(mktemp)
    if ! go test -run='^$' -fuzz="^${fn}\$" -fuzztime="$FUZZTIME" "$pkg" >"$log" 2>&1; then
      # A crasher is saved under testdata/fuzz: that is a real failure. A
      # run that died without one (the fuzzing engine's own trouble) gets
      # one more try.
      if ls "$dir/testdata/fuzz/$fn" >/dev/null 2>&1 && [ -n "$(git -C "$dir" status --porcelain -- "testdata/fuzz/$fn" 2>/dev/null)" ] \
         || ! go test -run='^$' -fuzz="^${fn}\$" -fuzztime="$FUZZTIME" "$pkg" >"$log" 2>&1; then
        echo "FAIL fuzz $pkg $fn"; tail -40 "$log"; rm -f "$log"; exit 1
      fi
      echo "(fuzz $fn: the first run failed without a crasher; the second passed)"
    fi
    rm -f "$log"
    echo "ok  fuzz $pkg $fn"
  done
done

echo "== cross-compile"
for target in linux/amd64 linux/arm64 darwin/arm64 windows/amd64; do
  GOOS=${target%/*} GOARCH=${target#*/} CGO_ENABLED=0 go build ./...
  echo "ok  build $target"
done
echo "== all checks passed"
