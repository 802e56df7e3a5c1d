#!/usr/bin/env bash
# Instructions per request of a JWT-protected route (`auth` with a jwt authorizer,
# RS256 token, JWKS from a file) next to the same route open: callgrind.sh run twice
# on the same binary. The token is verified once and then served from the worker's
# token cache, which is the steady state of a client sending the same token.
#
#   loadtest/callgrind-jwt.sh [turnpike-binary]
# Needs what callgrind.sh needs, plus Python 3 with pip (PyJWT and cryptography are
# installed under target/pydeps, as the tests do).
set -euo pipefail
BIN=${1:-target/release/turnpike}
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/lib.sh"
WORK=$(mktemp -d /tmp/turnpike-cgjwt.XXXXXX); chmod 755 "$WORK"
trap 'rm -rf "$WORK"' EXIT
TOKEN=$(lt_jwt "$WORK")
cat > "$WORK/jwt.toml" <<TOML
[gateway]
listen  = ["127.0.0.1:__PROXY_PORT__"]
admin   = ""
workers = 1

[apis.bench.authorizers.users]
type = "jwt"
issuer = "https://issuer.example"
audience = ["bench"]
jwks = "$WORK/jwks.json"

[apis.bench.routes."ANY /{path+}"]
integration = { type = "http_proxy", uri = "http://127.0.0.1:__UPSTREAM_PORT__" }
auth = "users"

[stages.bench]
api = "bench"
TOML
sed -e 's/^auth = "users"$//' "$WORK/jwt.toml" > "$WORK/open.toml"
echo "open route:"; CONFIG=$WORK/open.toml HEADER="authorization: Bearer $TOKEN" "$HERE/callgrind.sh" "$BIN" | tail -1
echo "JWT route:";  CONFIG=$WORK/jwt.toml  HEADER="authorization: Bearer $TOKEN" "$HERE/callgrind.sh" "$BIN" | tail -1
