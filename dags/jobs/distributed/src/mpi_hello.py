"""Report the Open MPI rank variables that mpirun sets for each process."""

import os

rank = os.environ["OMPI_COMM_WORLD_RANK"]
size = os.environ["OMPI_COMM_WORLD_SIZE"]
print(f"mpi rank {rank} of {size} (local {os.environ['OMPI_COMM_WORLD_LOCAL_RANK']})")
