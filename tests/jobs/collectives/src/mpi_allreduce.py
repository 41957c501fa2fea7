"""Sum rank + 1 over every MPI rank with allreduce, and a 4 MiB buffer too (it crosses shared memory in pieces)."""

from array import array

from mpi4py import MPI

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()

total = comm.allreduce(rank + 1, op=MPI.SUM)
assert total == size * (size + 1) // 2, total

count = 1 << 19  # doubles: 4 MiB, far past the size that is sent in one piece
mine, summed = array("d", [rank + 1.0]) * count, array("d", [0.0]) * count
comm.Allreduce(mine, summed, op=MPI.SUM)
assert summed[0] == summed[-1] == total, (summed[0], summed[-1])

print(f"rank {rank} of size {size}: allreduce sum {total}, buffer sum {summed[-1]:g}", flush=True)
