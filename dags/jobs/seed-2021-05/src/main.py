"""LightGBM on iris, logged with MLflow autologging (as the seed document's job does)."""

import argparse

import lightgbm as lgb
import mlflow
import pandas as pd
from sklearn.model_selection import train_test_split


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--iris-csv", required=True)
    parser.add_argument("--num-boost-round", type=int, default=20)
    parser.add_argument("--boosting", default="gbdt")
    parser.add_argument("--num-iterations", type=int, default=16)
    parser.add_argument("--num-leaves", type=int, default=31)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    args = parser.parse_args()

    frame = pd.read_csv(args.iris_csv)
    labels = frame.pop(frame.columns[-1]).astype("category").cat.codes
    x_train, x_test, y_train, y_test = train_test_split(frame, labels, test_size=0.2, random_state=42)
    params = {
        "objective": "multiclass",
        "num_class": 3,
        "boosting": args.boosting,
        "num_iterations": args.num_iterations,
        "num_leaves": args.num_leaves,
        "learning_rate": args.learning_rate,
        "metric": "multi_logloss",
        "verbose": -1,
    }
    mlflow.lightgbm.autolog()
    with mlflow.start_run():
        train_set = lgb.Dataset(x_train, label=y_train)
        test_set = lgb.Dataset(x_test, label=y_test)
        lgb.train(params, train_set, args.num_boost_round, valid_sets=[test_set], valid_names=["test"])


if __name__ == "__main__":
    main()
