#!/usr/bin/env bash
# Make a Docker engine available: install Debian's docker.io if needed and start dockerd if none answers.
set -euo pipefail
if docker info >/dev/null 2>&1; then
  exit 0
fi
if ! command -v dockerd >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi
mkdir -p /var/log
nohup dockerd --host=unix:///var/run/docker.sock >/var/log/mljobs-dockerd.log 2>&1 &
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    echo "dockerd is up"
    exit 0
  fi
  sleep 1
done
echo "dockerd did not start:" >&2
tail -20 /var/log/mljobs-dockerd.log >&2
exit 1
