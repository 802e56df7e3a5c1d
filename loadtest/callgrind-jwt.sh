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
ROOT=$(cd "$HERE/.." && pwd)
WORK=$(mktemp -d /tmp/turnpike-cgjwt.XXXXXX); chmod 755 "$WORK"
trap 'rm -rf "$WORK"' EXIT
DEPS=$ROOT/target/pydeps/loadtest-jwt
[ -e "$DEPS/.installed" ] || { python3 -m pip install -q --disable-pip-version-check --target "$DEPS" pyjwt cryptography && touch "$DEPS/.installed"; }
TOKEN=$(PYTHONPATH=$DEPS python3 - "$WORK" <<'PY'
import json, sys, time, jwt
from cryptography.hazmat.primitives.asymmetric import rsa
d = sys.argv[1]
k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
j = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(k.public_key())); j.update({"kid": "k1", "use": "sig"})
open(f"{d}/jwks.json", "w").write(json.dumps({"keys": [j]}))
print(jwt.encode({"iss": "https://issuer.example", "aud": "bench", "sub": "u", "exp": int(time.time()) + 3600}, k, algorithm="RS256", headers={"kid": "k1"}))
PY
)
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
