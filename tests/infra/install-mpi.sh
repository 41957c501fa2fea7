#!/usr/bin/env bash
# Make Open MPI and mpi4py available on this machine for the local MPI tests: Debian's openmpi-bin and
# python3-mpi4py, installed when missing. They belong to Debian's own /usr/bin/python3 (not the project's venv),
# which is the Python an MPI job's command names.
set -euo pipefail
if command -v mpirun >/dev/null && /usr/bin/python3 -c 'import mpi4py' >/dev/null 2>&1; then
  exit 0
fi
command -v apt-get >/dev/null \
  || { echo "no apt-get: install Open MPI (mpirun) and mpi4py for /usr/bin/python3" >&2; exit 1; }
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openmpi-bin python3-mpi4py >/dev/null
command -v mpirun >/dev/null && /usr/bin/python3 -c 'import mpi4py' \
  || { echo "openmpi-bin and python3-mpi4py installed, yet mpirun or mpi4py is missing" >&2; exit 1; }
echo "Open MPI and mpi4py are installed"
