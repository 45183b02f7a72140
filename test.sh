#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, go vet, the tests with the
# race detector (go test's own summary lines are printed), a short fuzz of
# every parser of outside input, and the cross-compiles.
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$PATH:/usr/local/go/bin"
FUZZTIME="${FUZZTIME:-2s}"

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
    go test -run='^$' -fuzz="^${fn}\$" -fuzztime="$FUZZTIME" "$pkg" >/dev/null 2>"/tmp/portctl-fuzz-$fn.log" \
      || { echo "FAIL fuzz $pkg $fn"; cat "/tmp/portctl-fuzz-$fn.log"; exit 1; }
    echo "ok  fuzz $pkg $fn"
  done
done

echo "== cross-compile"
for target in linux/amd64 linux/arm64 darwin/arm64 windows/amd64; do
  GOOS=${target%/*} GOARCH=${target#*/} CGO_ENABLED=0 go build ./...
  echo "ok  build $target"
done
echo "== all checks passed"
