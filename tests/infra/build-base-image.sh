#!/usr/bin/env bash
# Build the offline base image once and reuse it by tag: no image registry is reachable here, so a minimal
# Debian (bookworm, with python3, venv, pip and libgomp1, the OpenMP runtime LightGBM needs) is bootstrapped
# from the Debian mirror and imported.
# On a machine with a registry, `python:3.11-slim` plays the same part.
set -euo pipefail
TAG="${MLJOBS_BASE_IMAGE:-mljobs-base:bookworm}"
ALIAS="${MLJOBS_BASE_ALIAS:-python:3.11-slim}"  # the name the example jobs use, served offline by the same image
if docker image inspect "$TAG" >/dev/null 2>&1; then
  docker image inspect "$ALIAS" >/dev/null 2>&1 || docker tag "$TAG" "$ALIAS"
  echo "base image $TAG is there"
  exit 0
fi
command -v debootstrap >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap; }
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
echo "bootstrapping $TAG (a few minutes, once)"
debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates,libgomp1 \
  bookworm "$root" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >/tmp/mljobs-debootstrap.log 2>&1 \
  || { tail -20 /tmp/mljobs-debootstrap.log; exit 1; }
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
# `python` is what job commands say; make it the image's Python 3, as in the python images
ln -sf python3 "$root/usr/bin/python"
tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV PIP_BREAK_SYSTEM_PACKAGES=1' \
  --change 'CMD ["python3"]' - "$TAG"
docker image inspect "$ALIAS" >/dev/null 2>&1 || docker tag "$TAG" "$ALIAS"
echo "built $TAG (also tagged $ALIAS)"
