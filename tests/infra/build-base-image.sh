#!/usr/bin/env bash
# Build the offline base image once and reuse it by tag: no image registry is reachable here, so a minimal
# Debian (bookworm, with python3, venv, pip and libgomp1, the OpenMP runtime LightGBM needs, and Open MPI with
# mpi4py for the collective tests) is bootstrapped from the Debian mirror this machine's apt uses, and imported.
# On a machine with a registry, `python:3.11-slim` plays the same part.
#
# The tag carries the recipe's version: bump RECIPE when what goes into the image changes, so that a machine
# holding an image of an older recipe builds the new one instead of reusing it.
set -euo pipefail
RECIPE=2
PACKAGES=python3,python3-venv,python3-pip,ca-certificates,libgomp1,openmpi-bin,python3-mpi4py
TAG="${MLJOBS_BASE_IMAGE:-mljobs-base:bookworm-$RECIPE}"
ALIAS="${MLJOBS_BASE_ALIAS:-python:3.11-slim}"  # the name the example jobs use, served offline by the same image

# The alias names this image, unless it names an image that is not of this script's making (a real
# python:3.11-slim, pulled from a registry): an image of an older recipe is replaced.
point_alias() {
  local alias_id tag_id
  tag_id="$(docker image inspect --format '{{.Id}}' "$TAG")"
  alias_id="$(docker image inspect --format '{{.Id}}' "$ALIAS" 2>/dev/null || true)"
  if [ "$alias_id" = "$tag_id" ]; then
    return
  fi
  if [ -n "$alias_id" ] && ! docker image inspect --format '{{.RepoTags}} {{index .Config.Labels "mljobs.base"}}' \
      "$ALIAS" | grep -q 'mljobs-base:\|mljobs-base-image'; then
    echo "$ALIAS is an image of its own (not built here): left as it is"
    return
  fi
  docker tag "$TAG" "$ALIAS"
}

# The Debian mirror this machine's apt reads bookworm from: deb822 entries (/etc/apt/sources.list.d/*.sources)
# whose Suites include bookworm, else one-line `deb` entries (/etc/apt/sources.list, *.list) for bookworm.
# DEBIAN_MIRROR, when set, is used instead.
debian_mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then
    echo "$DEBIAN_MIRROR"
    return
  fi
  local found=""
  if compgen -G '/etc/apt/sources.list.d/*.sources' >/dev/null; then
    found="$(awk '
      function reset() { types = ""; suites = ""; uris = ""; enabled = "yes" }
      function take() {
        if (!done && enabled != "no" && (" " types " ") ~ / deb / && (" " suites " ") ~ / bookworm / && uris != "") {
          split(uris, u, " "); print u[1]; done = 1
        }
      }
      BEGIN { reset() }
      FNR == 1 { take(); reset() }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { take(); reset(); next }
      /^[^ \t#][^:]*:/ {
        colon = index($0, ":"); key = tolower(substr($0, 1, colon - 1)); value = substr($0, colon + 1)
        gsub(/^[ \t]+|[ \t]+$/, "", value); gsub(/[ \t]+/, " ", value)
        if (key == "types") types = value; else if (key == "suites") suites = value
        else if (key == "uris") uris = value; else if (key == "enabled") enabled = tolower(value)
      }
      END { take() }' /etc/apt/sources.list.d/*.sources)"
  fi
  if [ -z "$found" ]; then
    local lists=()
    [ -f /etc/apt/sources.list ] && lists+=(/etc/apt/sources.list)
    compgen -G '/etc/apt/sources.list.d/*.list' >/dev/null && lists+=(/etc/apt/sources.list.d/*.list)
    if [ "${#lists[@]}" -gt 0 ]; then
      found="$(awk '
        $1 == "deb" {
          i = 2
          if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }  # [arch=amd64 signed-by=...]
          if ($(i + 1) == "bookworm") { print $i; exit }
        }' "${lists[@]}")"
    fi
  fi
  if [ -z "$found" ]; then
    echo "no Debian mirror for bookworm in this machine's apt sources: looked for a URIs: line of an entry whose" \
         "Suites include bookworm in /etc/apt/sources.list.d/*.sources, and for a 'deb <uri> bookworm ...' line in" \
         "/etc/apt/sources.list and /etc/apt/sources.list.d/*.list; set DEBIAN_MIRROR to a mirror's URL" >&2
    return 1
  fi
  echo "$found"
}

if docker image inspect "$TAG" >/dev/null 2>&1; then
  point_alias
  echo "base image $TAG is there"
  exit 0
fi
mirror="$(debian_mirror)"
command -v debootstrap >/dev/null \
  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap; }
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
echo "bootstrapping $TAG from $mirror (a few minutes, once)"
debootstrap --variant=minbase --include="$PACKAGES" bookworm "$root" "$mirror" >/tmp/mljobs-debootstrap.log 2>&1 \
  || { tail -20 /tmp/mljobs-debootstrap.log; exit 1; }
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
# `python` is what job commands say; make it the image's Python 3, as in the python images
ln -sf python3 "$root/usr/bin/python"
tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV PIP_BREAK_SYSTEM_PACKAGES=1' \
  --change "LABEL mljobs.base=mljobs-base-image mljobs.base.recipe=$RECIPE" \
  --change 'CMD ["python3"]' - "$TAG"
point_alias
echo "built $TAG (also tagged $ALIAS)"
