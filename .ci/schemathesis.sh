#!/usr/bin/env bash
# Fuzzes StoryChain's HTTP API from its own OpenAPI document: a real server on a loopback port,
# schemathesis (PyPI) with a user's token for the user routes and the admin token for the admin
# routes, at most 3 minutes in all. Fails on any 5xx, any response that breaks the schema, and
# any status code the document does not list. `/stream` (server-sent events: a response that
# never ends) is left out; its refusals are tested in tests/live_sse.rs.
set -euo pipefail
bin="$1"
port="${STORYCHAIN_FUZZ_PORT:-18089}"
work="$(mktemp -d)"
admin="admin-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
python3 -m pip install -q --disable-pip-version-check schemathesis >/dev/null 2>&1 || python3 -m pip install -q schemathesis
# The SQLite file in $work, whatever DATABASE_URL says.
env -u DATABASE_URL STORYCHAIN_WEBHOOK_HOSTS=127.0.0.1 STORYCHAIN_ADMIN_TOKEN="$admin" RUST_LOG=warn "$bin" serve --addr "127.0.0.1:$port" --db "$work/fuzz.db" >"$work/serve.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.2; done
token="$(python3 - "$port" <<'PY'
import json, sys, urllib.request
req = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/users",
    data=json.dumps({"username": "fuzzer", "display_name": "Fuzzer"}).encode(),
    headers={"content-type": "application/json"}, method="POST")
print(json.load(urllib.request.urlopen(req))["token"])
PY
)"
checks="not_a_server_error,response_schema_conformance,status_code_conformance"
schema="http://127.0.0.1:$port/openapi.json"
echo "schemathesis: user routes"
schemathesis run "$schema" -H "Authorization: Bearer $token" --max-time 120 --checks "$checks" \
    --exclude-path-regex '^/(admin|events|stream$)' --seed 1
echo "schemathesis: admin routes (operations and the events API)"
schemathesis run "$schema" -H "Authorization: Bearer $admin" --max-time 40 --checks "$checks" \
    --include-path-regex '^/(admin|events)' --seed 1
if grep -q 'status=500\|panicked' "$work/serve.log"; then
    echo "the server logged a failure:"; grep 'status=500\|panicked' "$work/serve.log" | head -20; exit 1
fi
