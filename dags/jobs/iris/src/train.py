"""Train a classifier on the iris CSV and record it with MLflow (the job runner sets the run for us)."""

import argparse
import csv
import json
import os
from pathlib import Path


def read_csv(path):
    path = Path(path)
    if path.is_dir():
        path = next(p for p in sorted(path.iterdir()) if p.suffix == ".csv")
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    features = [[float(x) for x in row[:-1]] for row in body]
    labels = [row[-1] for row in body]
    return header, features, labels


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--iris-csv", required=True)
    parser.add_argument("--n-estimators", type=int, default=50)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--max-depth", type=int, default=None)
    parser.add_argument("--model-dir", default="outputs/model")
    args = parser.parse_args()

    import mlflow
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.model_selection import train_test_split

    _, features, labels = read_csv(args.iris_csv)
    x_train, x_test, y_train, y_test = train_test_split(features, labels, test_size=0.3, random_state=0)
    model = GradientBoostingClassifier(
        n_estimators=args.n_estimators, learning_rate=args.learning_rate, max_depth=args.max_depth or 3,
        random_state=0,
    )
    with mlflow.start_run():
        mlflow.log_params(vars(args))
        model.fit(x_train, y_train)
        for step, predictions in enumerate(model.staged_predict(x_test)):
            accuracy = sum(p == t for p, t in zip(predictions, y_test)) / len(y_test)
            mlflow.log_metric("accuracy", accuracy, step=step)
        mlflow.log_metric("test_accuracy", accuracy)
        Path(args.model_dir).mkdir(parents=True, exist_ok=True)
        (Path(args.model_dir) / "summary.json").write_text(json.dumps({"accuracy": accuracy}))
        print(f"accuracy {accuracy:.3f} (rank {os.environ.get('RANK', '0')})")


if __name__ == "__main__":
    main()
