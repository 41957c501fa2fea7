"""Join the job's gloo process group and sum rank + 1 over every rank with all_reduce."""

import datetime
import os

import torch
import torch.distributed as dist

# env:// rendezvous: MASTER_ADDR, MASTER_PORT, RANK and WORLD_SIZE come from the job's distribution
dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=60))
rank, world = dist.get_rank(), dist.get_world_size()
assert (rank, world) == (int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])), (rank, world)

total = torch.tensor([rank + 1], dtype=torch.int64)
dist.all_reduce(total, op=dist.ReduceOp.SUM)
assert total.item() == world * (world + 1) // 2, total.item()

print(f"rank {rank} of world {world} (node {os.environ['NODE_RANK']}, local rank {os.environ['LOCAL_RANK']}): "
      f"all_reduce sum {total.item()}", flush=True)
dist.destroy_process_group()
