"""The straightforward ways to get the same KPIs from the same window: pandas, ranx, Evidently.

Each reads the window as recmon evaluates it (impressions in [now - delay - W, now - delay),
positive events up to `now`) with pandas.read_sql, attributes clicks and conversions the obvious
way (last touch by user and item within the attribution window, merge_asof), and computes CTR,
conversion and the ranking metrics at k = 5, 10 per model and variant. The timer covers the
read and the computation, not the imports.

    python benchmarks/alternatives.py pandas|ranx|evidently

reads one JSON request per line on stdin ({"url", "prefix", "window_s", "now"}) and answers each
with one JSON object, as a job that runs every few minutes would keep its imports and compiled
code; the first request is an untimed warm-up (see main). Only pandas, numpy and SQLAlchemy
are imported at the top: the Evidently job runs this file in its own virtualenv.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import create_engine, text

K = (5, 10)
ATTRIBUTION = timedelta(hours=1)  # recmon's default, and its default delay
GROUP = ["model", "variant"]


def read(url: str, prefix: str, window: timedelta, now: datetime) -> tuple[pd.DataFrame, ...]:
    end = now - ATTRIBUTION
    engine = create_engine(url)
    stamp = "%Y-%m-%d %H:%M:%S.%f"  # SQLite compares its timestamps as text
    try:
        recs = pd.read_sql(
            text(
                "SELECT request_id, user_id, item_id, rank, score, model, variant, ts"
                f" FROM {prefix}recommendations WHERE ts >= :lo AND ts < :hi"
            ),
            engine,
            params={"lo": (end - window).strftime(stamp), "hi": end.strftime(stamp)},
            parse_dates=["ts"],
        )
        events = pd.read_sql(
            text(
                f"SELECT user_id, item_id, event_type, ts FROM {prefix}interactions"
                " WHERE ts >= :lo AND ts < :hi AND event_type IN ('click', 'conversion')"
            ),
            engine,
            params={"lo": (end - window).strftime(stamp), "hi": now.strftime(stamp)},
            parse_dates=["ts"],
        )
    finally:
        engine.dispose()
    recs["variant"] = recs["variant"].fillna("default")
    return recs, events


def engagement(recs: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """Impressions, clicked and converted impressions, CTR and conversion per group."""
    shown = recs.sort_values("ts")
    flags = []
    for kind in ("click", "conversion"):
        hits = pd.merge_asof(
            events[events["event_type"] == kind].sort_values("ts"),
            shown[["user_id", "item_id", "ts", "request_id"]].rename(columns={"ts": "shown"}),
            left_on="ts",
            right_on="shown",
            by=["user_id", "item_id"],
            tolerance=ATTRIBUTION,
            direction="backward",
        ).dropna(subset=["request_id"])
        keys = pd.MultiIndex.from_frame(hits[["request_id", "item_id"]])
        index = pd.MultiIndex.from_frame(recs[["request_id", "item_id"]])
        flags.append(pd.Series(index.isin(keys), index=recs.index, name=kind))
    table = pd.concat([recs[GROUP], *flags], axis=1).groupby(GROUP)
    out = table.agg(impressions=("click", "size"), clicks=("click", "sum"))
    out["conversions"] = table["conversion"].sum()
    out["ctr"] = out["clicks"] / out["impressions"]
    out["conversion_rate"] = out["conversions"] / out["impressions"]
    return out


def relevant(recs: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """(request_id, item_id) for every item the user acted on within A after the request."""
    requests = recs.groupby("request_id", as_index=False).agg(
        user_id=("user_id", "first"), ts=("ts", "min")
    )
    pairs = requests.merge(events[["user_id", "item_id", "ts"]], on="user_id", suffixes=("", "_e"))
    inside = (pairs["ts_e"] >= pairs["ts"]) & (pairs["ts_e"] <= pairs["ts"] + ATTRIBUTION)
    return pairs.loc[inside, ["request_id", "item_id"]].drop_duplicates()


def ranking_pandas(recs: pd.DataFrame, rel: pd.DataFrame) -> pd.DataFrame:
    """Per group, the mean over evaluated requests of each metric at each k."""
    sizes = rel.groupby("request_id").size().rename("n_rel")
    rows = recs[["request_id", "item_id", "rank", *GROUP]].merge(sizes, on="request_id")
    rows = rows.merge(rel.assign(hit=1), on=["request_id", "item_id"], how="left")
    rows["hit"] = rows["hit"].fillna(0)
    rows = rows.sort_values(["request_id", "rank"])
    rows["cum"] = rows.groupby("request_id")["hit"].cumsum()
    per_request = rows.groupby("request_id")[[*GROUP, "n_rel"]].first()
    for k in K:
        top = rows[rows["rank"] <= k]
        by = top.groupby("request_id")
        hits = by["hit"].sum()
        first = top[top["hit"] > 0].groupby("request_id")["rank"].min()
        dcg = (top["hit"] / np.log2(top["rank"] + 1)).groupby(top["request_id"]).sum()
        ideal = np.cumsum(1 / np.log2(np.arange(2, k + 2)))
        n_rel = per_request["n_rel"]
        per_request[f"precision@{k}"] = hits / k
        per_request[f"recall@{k}"] = hits / n_rel
        per_request[f"hit_rate@{k}"] = (hits > 0).astype(float)
        per_request[f"mrr@{k}"] = (1 / first).reindex(per_request.index, fill_value=0.0)
        per_request[f"ndcg@{k}"] = dcg / ideal[np.minimum(n_rel, k) - 1]
        precision_at_hits = (top["hit"] * top["cum"] / top["rank"]).groupby(top["request_id"])
        per_request[f"map@{k}"] = precision_at_hits.sum() / n_rel
    return per_request.fillna(0.0).groupby(GROUP).mean(numeric_only=True).drop(columns="n_rel")


def ranking_ranx(recs: pd.DataFrame, rel: pd.DataFrame) -> pd.DataFrame:
    from ranx import Qrels, Run, evaluate

    metrics = [
        f"{m}@{k}" for m in ("precision", "recall", "ndcg", "map", "mrr", "hit_rate") for k in K
    ]
    ids = {"request_id": str, "item_id": str}
    rel = rel.astype(ids).astype({"request_id": object, "item_id": object}).assign(score=1)
    run = recs.astype(ids).astype({"request_id": object, "item_id": object})  # ranx wants object
    run["score"] = 1.0 / run["rank"]
    out = {}
    for group, frame in run.groupby(GROUP):
        qrels = rel[rel["request_id"].isin(frame["request_id"])]
        if qrels.empty:
            continue
        out[group] = evaluate(
            Qrels.from_df(qrels, q_id_col="request_id", doc_id_col="item_id", score_col="score"),
            Run.from_df(frame, q_id_col="request_id", doc_id_col="item_id", score_col="score"),
            metrics,
            make_comparable=True,
        )
    return pd.DataFrame(out).T


def ranking_evidently(recs: pd.DataFrame, rel: pd.DataFrame) -> pd.DataFrame:
    from evidently import DataDefinition, Dataset, Report
    from evidently.core.datasets import Recsys
    from evidently.metrics import MAP, MRR, NDCG, HitRate, PrecisionTopK, RecallTopK

    # Evidently wants one row per (user, item): the recommended items with their rank and the
    # relevant ones it did not recommend below the list. A request plays the user.
    rows = recs[["request_id", "item_id", "rank", *GROUP]].merge(
        rel.assign(target=1), on=["request_id", "item_id"], how="outer"
    )
    owners = recs.groupby("request_id")[GROUP].first()
    rows = rows.drop(columns=GROUP).join(owners, on="request_id")
    rows = rows[rows["request_id"].isin(rel["request_id"])]  # evaluated requests only
    rows["rank"] = rows["rank"].fillna(max(K) + 1).astype(int)  # Evidently ranges up to its max
    rows["target"] = rows["target"].fillna(0)
    definition = DataDefinition(
        numerical_columns=["rank", "target"],
        categorical_columns=["request_id", "item_id"],
        ranking=[
            Recsys(
                user_id="request_id",
                item_id="item_id",
                target="target",
                prediction="rank",
                recommendations_type="rank",
            )
        ],
    )
    metrics = [m(k=k) for m in (PrecisionTopK, RecallTopK, NDCG, MAP, MRR, HitRate) for k in K]
    out = {}
    for group, frame in rows.groupby(GROUP):
        data = Dataset.from_pandas(frame.drop(columns=GROUP), data_definition=definition)
        try:
            out[group] = Report(metrics).run(data, None).dict()
        except KeyError:  # Evidently 0.7 fails on a group with no hit within the top k
            out[group] = None
    return pd.DataFrame({"groups": [len(out)]})


RANKING: dict[str, Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame]] = {
    "pandas": ranking_pandas,
    "ranx": ranking_ranx,
    "evidently": ranking_evidently,
}


def run(tool: str, url: str, prefix: str, window: timedelta, now: datetime) -> dict[str, float]:
    started = time.perf_counter()
    recs, events = read(url, prefix, window, now)
    read_s = time.perf_counter() - started
    engagement(recs, events)
    RANKING[tool](recs, relevant(recs, events))
    return {
        "seconds": time.perf_counter() - started,
        "read_seconds": read_s,
        "impressions": float(len(recs)),
    }


def warm_up(tool: str, url: str, prefix: str, now: datetime) -> None:
    """ranx compiles its metrics with numba on first use, for the types of data it sees, which
    made-up frames do not reproduce: so the tool first runs once, untimed, on the last hour of
    the data it is asked about, as a job that runs often has compiled already."""
    run(tool, url, prefix, timedelta(hours=1), now)


def main(tool: str) -> None:
    """The first request warms the tool up ({"url", "prefix", "now"}; answered with its
    seconds), every later one is timed."""
    ask = json.loads(sys.stdin.readline())
    started = time.perf_counter()
    warm_up(tool, ask["url"], ask["prefix"], datetime.fromisoformat(ask["now"]))
    print(json.dumps({"warm_up_seconds": time.perf_counter() - started}), flush=True)
    for line in sys.stdin:
        ask = json.loads(line)
        window, now = timedelta(seconds=ask["window_s"]), datetime.fromisoformat(ask["now"])
        result = run(tool, ask["url"], ask["prefix"], window, now)
        result["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024.0
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
