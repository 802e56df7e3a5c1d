#!/usr/bin/env bash
# Instructions per request for HTTP/2 clients: callgrind.sh with h2c clients (h2load,
# one connection, 10 streams at once) to the same nginx upstream over HTTP/1.1.
#   loadtest/callgrind-h2.sh [turnpike-binary] [path]
# Needs valgrind, nginx and h2load (nghttp2-client); the N2 profile is left in
# loadtest/results/callgrind-h2.out.
H2=1 exec "$(dirname "$0")/callgrind.sh" "$@"
