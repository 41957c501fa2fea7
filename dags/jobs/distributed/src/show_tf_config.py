"""Print this worker's place in the TF_CONFIG cluster (what MultiWorkerMirroredStrategy reads)."""

import json
import os

config = json.loads(os.environ["TF_CONFIG"])
workers = config["cluster"]["worker"]
print(f"worker {config['task']['index']} of {len(workers)}: {workers}")
