"""Sum each rank's number with torch.distributed (gloo) and check the world agrees."""

import argparse
import os

import torch
import torch.distributed as dist


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=1)
    args = parser.parse_args()
    dist.init_process_group("gloo")  # env:// reads MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK
    rank, world = dist.get_rank(), dist.get_world_size()
    for step in range(args.steps):
        value = torch.tensor([float(rank + step)])
        dist.all_reduce(value)
        expected = sum(r + step for r in range(world))
        assert value.item() == expected, (value.item(), expected)
    print(f"rank {rank}/{world} local {os.environ['LOCAL_RANK']} node {os.environ['NODE_RANK']}: ok")
    if rank == 0:
        import mlflow

        mlflow.log_metric("world_size", world)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
