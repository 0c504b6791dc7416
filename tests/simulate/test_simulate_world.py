"""The simulated world is plausible: traffic, CTR, scores, interactions, registry."""

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from recmon.simulate.world import ARMS, generate
from recmon.sources.schema import REFERENCE

END = datetime(2026, 3, 2, 12, 0)


def _generate(days: int, seed: int = 42) -> dict[str, pd.DataFrame]:
    return generate(seed, END - timedelta(days=days), END, ())


def clicked(recs: pd.DataFrame, events: pd.DataFrame) -> pd.Series:
    """Impressions with a click by the same user on the item within 1 h: enough for sanity."""
    clicks = events.loc[events["event_type"] == "click", ["user_id", "item_id", "ts"]]
    pairs = recs.reset_index().merge(clicks, on=["user_id", "item_id"], suffixes=("", "_ev"))
    in_window = (pairs["ts_ev"] >= pairs["ts"]) & (
        pairs["ts_ev"] <= pairs["ts"] + pd.Timedelta("1h")
    )
    return pd.Series(recs.index.isin(pairs.loc[in_window, "index"]), index=recs.index)


@pytest.fixture(scope="module")
def fortnight() -> dict[str, pd.DataFrame]:
    frames = _generate(14)
    recs = frames["recommendations"]
    recs["clicked"] = clicked(recs, frames["interactions"])
    recs["arm"] = recs["model"] + ":" + recs["variant"].fillna("default")
    return frames


def test_columns_are_the_reference_ones() -> None:
    frames = _generate(1)
    assert set(frames) == set(REFERENCE)
    for table, frame in frames.items():
        assert list(frame.columns) == list(REFERENCE[table]), table
        assert len(frame) > 0, table


def test_every_arm_gets_traffic_every_hour() -> None:
    recs = _generate(2)["recommendations"]
    hour = (recs["ts"] - (END - timedelta(days=2))) // pd.Timedelta("1h")
    served = recs.groupby([hour, recs["model"], recs["variant"].fillna("-")]).size()
    assert len(served) == 48 * len(ARMS)
    assert recs.groupby("request_id").size().eq(10).all()
    assert recs["model_version"].notna().all()


def test_ctr_is_plausible_and_treatment_beats_control(fortnight: dict[str, pd.DataFrame]) -> None:
    recs = fortnight["recommendations"]
    ctr = recs.groupby("arm")["clicked"].mean()
    assert ctr.between(0.01, 0.15).all(), ctr
    assert ctr["personal:treatment"] > ctr["personal:control"]
    assert ctr["personal:control"] > ctr["popularity:default"]


def test_probability_scores_predict_clicks(fortnight: dict[str, pd.DataFrame]) -> None:
    recs = fortnight["recommendations"]
    for arm in ("personal:control", "personal:treatment", "trending:default"):
        rows = recs[recs["arm"] == arm]
        assert rows["score"].between(0, 1).all()
        # Mann-Whitney form of the AUC.
        ranks = rows["score"].rank()
        pos = int(rows["clicked"].sum())
        auc = (ranks[rows["clicked"]].sum() - pos * (pos + 1) / 2) / (pos * (len(rows) - pos))
        assert 0.6 < auc < 0.85, (arm, auc)
    popularity = recs.loc[recs["model"] == "popularity", "score"]
    assert (popularity > 1).any()


def test_traffic_and_ctr_are_seasonal(fortnight: dict[str, pd.DataFrame]) -> None:
    recs = fortnight["recommendations"]
    by_hour = recs.groupby(recs["ts"].dt.hour)
    requests = by_hour["request_id"].nunique()
    assert requests[19:22].mean() > 1.5 * requests[6:10].mean()
    assert by_hour["clicked"].mean()[19:23].mean() > by_hour["clicked"].mean()[7:11].mean()


def test_interactions_look_like_a_product_log(fortnight: dict[str, pd.DataFrame]) -> None:
    recs, events = fortnight["recommendations"], fortnight["interactions"]
    assert set(events["event_type"]) == {"click", "conversion", "watch"}
    assert events["ts"].max() < END
    watch = events[events["event_type"] == "watch"]
    assert (watch["value"] > 0).all()
    assert events.loc[events["event_type"] != "watch", "value"].isna().all()
    counts = events["event_type"].value_counts()
    assert 0.04 < counts["conversion"] / counts["click"] < 0.1
    # Organic: the user was never shown the item.
    shown = recs[["user_id", "item_id"]].drop_duplicates()
    joined = events.merge(shown, how="left", indicator=True)
    organic = joined["_merge"] == "left_only"
    assert 0.15 < organic.mean() < 0.3
    assert joined.loc[organic, "request_id"].isna().all()
    assert 0.6 < joined.loc[~organic, "request_id"].notna().mean() < 0.8
    assert events["session_id"].notna().all()
    assert events.groupby("session_id")["user_id"].nunique().eq(1).all()


def test_registry_has_daily_versions_and_offline_metrics(
    fortnight: dict[str, pd.DataFrame],
) -> None:
    models, metrics = fortnight["models"], fortnight["model_metrics"]
    assert set(models["model"]) == {"popularity", "personal", "trending"}
    assert models.groupby("model").size().ge(14).all()
    assert (models["training_data_end"] <= models["trained_at"]).all()
    assert (
        models["deployed_at"].dropna() > models["trained_at"][models["deployed_at"].notna()]
    ).all()
    assert set(metrics[["model", "version"]].itertuples(index=False)) == set(
        models[["model", "version"]].itertuples(index=False)
    )
    recs = fortnight["recommendations"]
    latest = recs.sort_values("ts").groupby("model")["model_version"].last()
    deployed = models.dropna().sort_values("deployed_at").groupby("model")["version"].last()
    assert latest.to_dict() == deployed.to_dict()


def test_catalogue_grows() -> None:
    items = _generate(3)["items"]
    start = END - timedelta(days=3)
    assert (items["created_at"] < start).sum() == 800
    assert 50 <= (items["created_at"] >= start).sum() <= 70
    assert items["category"].isna().any()
    assert np.all(items["created_at"] < END)
