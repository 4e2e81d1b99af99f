#!/bin/sh
# /usr/bin/sleepingd of the packages built without the single executable:
# runs the program, bundled into one JavaScript file, with the Deno runtime
# installed beside it. The bundle holds every dependency, so nothing is
# fetched (--no-remote --no-npm); --no-config and --no-lock keep deno from
# reading a deno.json, package.json or lockfile, so the one unstable API the
# program uses (UDP sockets, --unstable-net) is named here as deno.json names it.
# Deno's cache folder (DENO_DIR, by default ~/.cache/deno) is used when it can be
# written and skipped when not.
DENO_NO_UPDATE_CHECK=1
export DENO_NO_UPDATE_CHECK
exec /usr/lib/sleepingd/deno run --allow-all --unstable-net --no-config --no-lock --no-remote \
  --no-npm --no-code-cache /usr/lib/sleepingd/sleepingd.js "$@"
