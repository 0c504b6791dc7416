"""The simulated recommender world, generated hour by hour with numpy.

Users and items have latent vectors; the true click logit of (user, item) is
BASE + AFFINITY * (user . item) + POPULARITY * z(log popularity) + FRESHNESS * newness, and a
shown item is clicked with sigmoid(logit) times a position bias, a seasonal factor, the arm's lift
and the scenarios' multiplier. Models differ only in what they know of that logit: `personal`
sees it through noise (good lists, predictive scores), `trending` sees popularity and newness,
`popularity` sees popularity alone (scores are raw counts, not probabilities).

Every hour draws from its own generators (seeded by seed, hour and arm), so a scenario confined to
some hours leaves the other hours' draws alone: with a payment outage every event outside the
incident is the baseline's. An hour's follow-ons (conversions, watches) share one generator across
arms, so an incident that changes some arm's clicks redraws the other arms' follow-ons of its
hours, at the same rates. Scenarios act through the `Effects` of each (arm, hour), gathered in a
`_Grid`; a knob left at its default changes nothing, so the `none` world is the plain one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from recmon.simulate.scenarios import Effects, Scenario, Slot


@dataclass(frozen=True)
class Arm:
    """A (model, variant) pair the recommender serves, with its share of requests."""

    model: str
    variant: str | None
    share: float
    lift: float = 1.0  # relative click probability, for the A/B treatment


ARMS: tuple[Arm, ...] = (
    Arm("popularity", None, 0.2),
    Arm("personal", "control", 0.3),
    Arm("personal", "treatment", 0.3, lift=1.05),
    Arm("trending", None, 0.2),
)
ORGANIC = len(ARMS)  # arm index of interactions with nothing recommended behind them
MODELS = ("popularity", "personal", "trending")
CATEGORIES = np.array(["electronics", "books", "fashion", "home", "sports", "toys"], dtype=object)

HOUR = 3600.0
DAY = 86400.0
N_USERS = 2000
INITIAL_ITEMS = 800
ITEMS_PER_DAY = 20
RAMP_DAYS = 14
REQUESTS_PER_HOUR = 150  # weekly average
LIST_LENGTH = 10
LATENT_DIM = 8

BASE_LOGIT = -4.8
AFFINITY = 1.0
POPULARITY = 0.8
FRESHNESS = 0.8
FRESH_DAYS = 3.0  # newness = exp(-age / FRESH_DAYS)
PERSONAL_NOISE = 1.0  # sd of the personal model's error on the logit, so AUC stays well below 1
ORGANIC_CLICKS_PER_REQUEST = 0.3  # about 20% of all interactions
CLICK_DELAY_MEAN = 300.0
LATE_CLICK_RATE = 0.03  # clicks 1-3 h after the impression, beyond the default attribution window
CONVERSION_RATE = 0.07
WATCH_RATE = 0.35
REQUEST_ID_RATE = 0.7
SESSION_GAP = 30 * 60.0
TRAINING_DAYS = 7

# Offline metrics the training pipeline reports per version: mean and spread.
OFFLINE_METRICS: dict[str, dict[str, tuple[float, float]]] = {
    "popularity": {"ndcg_at_10": (0.08, 0.004), "hit_rate_at_10": (0.22, 0.01)},
    "personal": {"auc": (0.72, 0.008), "ndcg_at_10": (0.17, 0.006), "log_loss": (0.21, 0.004)},
    "trending": {"auc": (0.61, 0.01), "ndcg_at_10": (0.10, 0.005)},
}

_EVENT_TYPES = np.array(["click", "conversion", "watch"], dtype=object)
_CLICK, _CONVERSION, _WATCH = 0, 1, 2


@dataclass(frozen=True)
class _Population:
    user_ids: np.ndarray
    user_latent: np.ndarray
    activity: np.ndarray  # probability that a request or organic event is this user's
    item_ids: np.ndarray
    item_created: np.ndarray  # seconds since start; negative for the initial catalogue
    item_latent: np.ndarray
    log_popularity: np.ndarray  # standardised
    popularity_count: np.ndarray  # what the popularity model reports as score
    category: np.ndarray


@dataclass(frozen=True)
class _Grid:
    """Effects per (arm, hour), ORGANIC as the last arm."""

    traffic: np.ndarray
    ctr: np.ndarray
    conversion: np.ndarray
    delivered: np.ndarray  # bool
    score_shift: np.ndarray
    estimate_noise: np.ndarray
    frozen: np.ndarray  # Effects.frozen_at in seconds since start; inf when not frozen

    def frozen_at(self, start: datetime) -> dict[str, datetime]:
        """Each frozen model's earliest freeze: its registry ends there."""
        frozen = {}
        for model in MODELS:
            arms = [a for a, arm in enumerate(ARMS) if arm.model == model]
            seconds = float(self.frozen[arms].min())
            if np.isfinite(seconds):
                frozen[model] = start + timedelta(seconds=seconds)
        return frozen


def generate(
    seed: int,
    start: datetime,
    end: datetime,
    scenarios: Sequence[Scenario],
    requests_per_hour: float = REQUESTS_PER_HOUR,
) -> dict[str, pd.DataFrame]:
    """All five reference tables for [start, end), as DataFrames with the reference columns.
    `requests_per_hour` (weekly average) sizes the traffic, organic events in proportion."""
    n_hours = int(np.ceil((end - start) / timedelta(hours=1)))
    span = (end - start).total_seconds()
    pop = _population(np.random.default_rng([seed, 0]), span)
    grid = _grid(scenarios, start, end, n_hours)
    traffic_season, ctr_season = _seasonality(start, n_hours)

    recs: list[dict[str, np.ndarray]] = []
    events: list[dict[str, np.ndarray]] = []
    recommended: set[int] = set()  # user * n_items + item, so organic events stay unrecommended
    for h in range(n_hours):
        t0 = h * HOUR
        available = pop.item_created <= t0
        clicks = []
        for a, arm in enumerate(ARMS):
            rng = np.random.default_rng([seed, 1, h, a])
            lam = requests_per_hour * arm.share * traffic_season[h] * grid.traffic[a, h]
            # At least one request whenever the arm is meant to be live: every model every hour.
            n = max(int(rng.poisson(lam)), 1 if lam >= 1 else 0)
            if n:
                served, clicked = _serve(
                    pop,
                    arm,
                    a,
                    rng,
                    t0,
                    n,
                    available & (pop.item_created < grid.frozen[a, h]),  # a frozen model's items
                    ctr_season[h] * grid.ctr[a, h],
                    grid.estimate_noise[a, h],
                    grid.score_shift[a, h],
                )
                recs.append(served)
                clicks.append(clicked)
                recommended.update((served["user"] * len(pop.item_ids) + served["item"]).tolist())
        rng = np.random.default_rng([seed, 2, h])
        clicks.append(
            _organic(
                pop,
                rng,
                t0,
                available,
                recommended,
                traffic_season[h] * ctr_season[h] * grid.ctr[ORGANIC, h] * grid.traffic[ORGANIC, h],
                requests_per_hour,
            )
        )
        events.append(_follow_ons(_concat(clicks), rng, grid))

    models, metrics, deployed = _registry(
        np.random.default_rng([seed, 3]), start, end, grid.frozen_at(start)
    )
    return {
        "recommendations": _recommendations(_concat(recs), pop, deployed, start),
        "interactions": _interactions(_concat(events), pop, start, span),
        "items": pd.DataFrame(
            {
                "item_id": pop.item_ids,
                "created_at": _to_datetime(start, pop.item_created),
                "category": pop.category,
            }
        ),
        "models": models,
        "model_metrics": metrics,
    }


def _population(rng: np.random.Generator, span: float) -> _Population:
    n_items = INITIAL_ITEMS + int(ITEMS_PER_DAY * span / DAY)
    created = np.concatenate(
        [
            # The last weeks before the start at the steady daily rate, so the share of new items
            # (and what depends on it, like the trending model's scores) is stable from day one.
            rng.uniform(-180 * DAY, -RAMP_DAYS * DAY, INITIAL_ITEMS - RAMP_DAYS * ITEMS_PER_DAY),
            rng.uniform(-RAMP_DAYS * DAY, 0.0, RAMP_DAYS * ITEMS_PER_DAY),
            np.sort(rng.uniform(0.0, span, n_items - INITIAL_ITEMS)),
        ]
    )
    raw_popularity = rng.lognormal(0.0, 1.0, n_items)
    log_pop = np.log(raw_popularity)
    category = CATEGORIES[rng.integers(0, len(CATEGORIES), n_items)]
    category[rng.random(n_items) < 0.05] = None
    activity = rng.lognormal(0.0, 1.0, N_USERS)
    return _Population(
        user_ids=np.array([f"u{j:05d}" for j in range(N_USERS)], dtype=object),
        # Scaled so user . item is about standard normal.
        user_latent=rng.normal(0.0, LATENT_DIM**-0.25, (N_USERS, LATENT_DIM)),
        activity=activity / activity.sum(),
        item_ids=np.array([f"i{j:05d}" for j in range(n_items)], dtype=object),
        item_created=created,
        item_latent=rng.normal(0.0, LATENT_DIM**-0.25, (n_items, LATENT_DIM)),
        log_popularity=(log_pop - log_pop.mean()) / log_pop.std(),
        popularity_count=np.round(raw_popularity * 200.0) + 1.0,
        category=category,
    )


def _grid(scenarios: Sequence[Scenario], start: datetime, end: datetime, n_hours: int) -> _Grid:
    shape = (len(ARMS) + 1, n_hours)
    grid = _Grid(
        traffic=np.ones(shape),
        ctr=np.ones(shape),
        conversion=np.ones(shape),
        delivered=np.ones(shape, dtype=bool),
        score_shift=np.zeros(shape),
        estimate_noise=np.ones(shape),
        frozen=np.full(shape, np.inf),
    )
    if not scenarios:
        return grid
    slots = [(arm.model, arm.variant) for arm in ARMS] + [(None, None)]
    for h in range(n_hours):
        for a, (model, variant) in enumerate(slots):
            slot = Slot(start + timedelta(hours=h), end, model, variant)
            effects = Effects()
            for scenario in scenarios:
                effects = scenario.apply(slot, effects)
            grid.traffic[a, h], grid.ctr[a, h] = effects.traffic, effects.ctr
            grid.conversion[a, h] = effects.conversion
            grid.delivered[a, h] = effects.delivered
            grid.score_shift[a, h] = effects.score_shift
            grid.estimate_noise[a, h] = effects.estimate_noise
            if effects.frozen_at is not None:
                grid.frozen[a, h] = (effects.frozen_at - start).total_seconds()
    return grid


def _seasonality(start: datetime, n_hours: int) -> tuple[np.ndarray, np.ndarray]:
    """Traffic and CTR factors per hour: evening peaks, busier weekends; traffic averages ~1."""
    mid = pd.date_range(start + timedelta(minutes=30), periods=n_hours, freq="h")
    hour_of_day = mid.hour.to_numpy() + mid.minute.to_numpy() / 60
    weekend = mid.day_of_week.to_numpy() >= 5
    daily = 1 + 0.5 * np.cos(2 * np.pi * (hour_of_day - 20) / 24)
    traffic = daily * np.where(weekend, 1.2, 1.0) / (5 + 2 * 1.2) * 7
    ctr = (1 + 0.15 * np.cos(2 * np.pi * (hour_of_day - 21) / 24)) * np.where(weekend, 1.05, 1.0)
    return traffic, ctr


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _serve(
    pop: _Population,
    arm: Arm,
    a: int,
    rng: np.random.Generator,
    t0: float,
    n: int,
    known: np.ndarray,
    ctr_factor: float,
    noise: float,
    score_shift: float,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """n requests of one arm in the hour from t0: the lists served (of the `known` items) and the
    clicks on them. `noise` scales the personal model's error, `score_shift` moves the logged
    scores on the logit scale (popularity's counts by the same factor of odds)."""
    ts = t0 + np.sort(rng.uniform(0.0, HOUR, n))
    users = rng.choice(N_USERS, n, p=pop.activity)
    newness = np.exp(-np.maximum(t0 - pop.item_created, 0.0) / (FRESH_DAYS * DAY))
    logit = (
        BASE_LOGIT
        + AFFINITY * pop.user_latent[users] @ pop.item_latent.T
        + POPULARITY * pop.log_popularity
        + FRESHNESS * newness
    )
    explore = rng.gumbel(size=logit.shape)  # varied lists rather than one fixed top 10
    if arm.model == "personal":
        estimate = logit + rng.normal(0.0, PERSONAL_NOISE * noise, logit.shape)
        key, scores = estimate + 0.3 * explore, _sigmoid(estimate + score_shift)
    elif arm.model == "trending":
        seen = POPULARITY * pop.log_popularity + FRESHNESS * newness
        key = seen + 0.5 * explore
        scores = np.broadcast_to(_sigmoid(BASE_LOGIT + 2.0 + seen + score_shift), logit.shape)
    else:
        key = pop.log_popularity + 0.7 * explore
        scores = np.broadcast_to(pop.popularity_count * np.exp(score_shift), logit.shape)
    key[:, ~known] = -np.inf
    top = np.argpartition(-key, LIST_LENGTH, axis=1)[:, :LIST_LENGTH]
    top = np.take_along_axis(top, np.argsort(-np.take_along_axis(key, top, 1), axis=1), 1)

    rank = np.arange(1, LIST_LENGTH + 1)
    p_click = (
        _sigmoid(np.take_along_axis(logit, top, 1)) / np.log2(rank + 1) * ctr_factor * arm.lift
    )
    clicked = rng.random(top.shape) < np.clip(p_click, 0.0, 1.0)
    request = np.array([f"{x:016x}" for x in rng.integers(0, 2**63, n)], dtype=object)
    delay = np.where(
        rng.random(top.shape) < LATE_CLICK_RATE,
        rng.uniform(HOUR, 3 * HOUR, top.shape),
        rng.exponential(CLICK_DELAY_MEAN, top.shape),
    )

    def flat(x: np.ndarray) -> np.ndarray:
        return np.broadcast_to(x[:, None], top.shape).ravel()

    served = {
        "request": flat(request),
        "user": flat(users),
        "item": top.ravel(),
        "rank": np.tile(rank, n),
        "score": np.take_along_axis(scores, top, 1).ravel(),
        "arm": np.full(top.size, a),
        "ts": flat(ts),
    }
    hit = clicked.ravel()
    clicks = {
        "user": served["user"][hit],
        "item": served["item"][hit],
        "ts": (served["ts"] + delay.ravel())[hit],
        "request": served["request"][hit],
        "arm": served["arm"][hit],
    }
    return served, clicks


def _organic(
    pop: _Population,
    rng: np.random.Generator,
    t0: float,
    available: np.ndarray,
    recommended: set[int],
    factor: float,
    requests_per_hour: float,
) -> dict[str, np.ndarray]:
    """Clicks on items never recommended to the user (search, browsing): no request behind them."""
    n = int(rng.poisson(ORGANIC_CLICKS_PER_REQUEST * requests_per_hour * factor))
    users = rng.choice(N_USERS, n, p=pop.activity)
    weight = np.exp(pop.log_popularity) * available
    items = rng.choice(len(pop.item_ids), n, p=weight / weight.sum())
    codes = (users * len(pop.item_ids) + items).tolist()
    keep = np.array([code not in recommended for code in codes], dtype=bool)
    return {
        "user": users[keep],
        "item": items[keep],
        "ts": t0 + rng.uniform(0.0, HOUR, n)[keep],
        "request": np.full(int(keep.sum()), None, dtype=object),
        "arm": np.full(int(keep.sum()), ORGANIC),
    }


def _follow_ons(
    clicks: dict[str, np.ndarray], rng: np.random.Generator, grid: _Grid
) -> dict[str, np.ndarray]:
    """The click events plus the conversions and watches some of them lead to, less those a
    stalled pipeline loses."""
    n = len(clicks["ts"])
    last_hour = grid.conversion.shape[1] - 1

    def hour(ts: np.ndarray) -> np.ndarray:
        return np.minimum((ts // HOUR).astype(int), last_hour)  # later ones are dropped anyway

    conv_ts = clicks["ts"] + 60.0 + rng.exponential(240.0, n)
    # The conversion's own hour decides, so an outage stops conversions exactly in its hours.
    converts = rng.random(n) < CONVERSION_RATE * grid.conversion[clicks["arm"], hour(conv_ts)]
    watch_seconds = np.clip(rng.lognormal(np.log(90.0), 1.0, n), 5.0, 3600.0)
    watches = rng.random(n) < WATCH_RATE
    # Not every client logs the request an interaction came from. Drawn per click and kind so
    # an incident that removes some events leaves the others' draws alone.
    logged = rng.random((3, n)) < REQUEST_ID_RATE
    parts = [
        (np.ones(n, dtype=bool), _CLICK, clicks["ts"], np.full(n, np.nan)),
        (converts, _CONVERSION, conv_ts, np.full(n, np.nan)),
        # A watch is logged when the user stops watching.
        (watches, _WATCH, clicks["ts"] + watch_seconds, watch_seconds),
    ]
    # After every draw, so the events a stall keeps are the baseline's.
    parts = [
        (m & grid.delivered[clicks["arm"], hour(ts)], kind, ts, value)
        for m, kind, ts, value in parts
    ]
    return _concat(
        [
            {
                "user": clicks["user"][m],
                "item": clicks["item"][m],
                "request": np.where(logged[kind], clicks["request"], None)[m],
                "type": np.full(int(m.sum()), kind),
                "ts": ts[m],
                "value": value[m],
            }
            for m, kind, ts, value in parts
        ]
    )


def _registry(
    rng: np.random.Generator, start: datetime, end: datetime, frozen_at: dict[str, datetime]
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Daily retrained versions per model: models, model_metrics and, per model, the
    (deployed_at seconds since start, version) arrays sorted by deployment. A frozen model has
    no version deployed at or after its freeze; its draws are still made, so the other models'
    versions stay the baseline's."""
    first = datetime.combine((start - timedelta(days=2)).date(), datetime.min.time())
    days = [first + timedelta(days=d) for d in range((end - first).days + 1)]
    rows, metric_rows = [], []
    deployed: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for model in MODELS:
        live_at, versions = [], []
        for day in days:
            trained = day + timedelta(hours=2, seconds=float(rng.uniform(0, 2400)))
            deploy = trained + timedelta(seconds=float(rng.uniform(900, 3600)))
            if trained >= end:
                break
            offline = {
                m: float(rng.normal(*spread)) for m, spread in OFFLINE_METRICS[model].items()
            }
            if deploy >= frozen_at.get(model, datetime.max):
                continue
            version = f"{day:%Y.%m.%d}"
            data_end = trained.replace(minute=0, second=0, microsecond=0)
            rows.append(
                {
                    "model": model,
                    "version": version,
                    "trained_at": trained,
                    "training_data_start": data_end - timedelta(days=TRAINING_DAYS),
                    "training_data_end": data_end,
                    "deployed_at": deploy if deploy < end else None,  # not rolled out yet
                }
            )
            metric_rows.extend(
                {"model": model, "version": version, "metric": m, "value": v, "ts": trained}
                for m, v in offline.items()
            )
            if deploy < end:
                live_at.append((deploy - start).total_seconds())
                versions.append(version)
        deployed[model] = (np.array(live_at), np.array(versions, dtype=object))
    models = pd.DataFrame(rows)
    for column in ("trained_at", "training_data_start", "training_data_end", "deployed_at"):
        models[column] = pd.to_datetime(models[column]).dt.round("us")
    metrics = pd.DataFrame(metric_rows)
    metrics["ts"] = pd.to_datetime(metrics["ts"]).dt.round("us")
    return models, metrics, deployed


def _recommendations(
    recs: dict[str, np.ndarray],
    pop: _Population,
    deployed: dict[str, tuple[np.ndarray, np.ndarray]],
    start: datetime,
) -> pd.DataFrame:
    arms = recs["arm"]
    model = np.array([arm.model for arm in ARMS], dtype=object)[arms]
    variant = np.array([arm.variant for arm in ARMS], dtype=object)[arms]
    version = np.full(len(arms), None, dtype=object)
    for name, (live_at, versions) in deployed.items():
        rows = model == name
        idx = np.searchsorted(live_at, recs["ts"][rows], side="right") - 1
        version[rows] = np.where(idx >= 0, versions[np.maximum(idx, 0)], None)
    frame = pd.DataFrame(
        {
            "request_id": recs["request"],
            "user_id": pop.user_ids[recs["user"]],
            "item_id": pop.item_ids[recs["item"]],
            "rank": recs["rank"],
            # Rounded as a serving system logs them; also keeps ties among scores the same
            # whatever the platform's last-bit behaviour of exp.
            "score": np.round(recs["score"].astype(float), 6),
            "model": model,
            "model_version": version,
            "variant": variant,
            "ts": _to_datetime(start, recs["ts"]),
        }
    )
    return frame.sort_values(["ts", "rank"], kind="stable", ignore_index=True)


def _interactions(
    events: dict[str, np.ndarray], pop: _Population, start: datetime, span: float
) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "user_id": pop.user_ids[events["user"]],
            "item_id": pop.item_ids[events["item"]],
            "event_type": _EVENT_TYPES[events["type"]],
            "seconds": events["ts"],
            "value": events["value"],
            "request_id": events["request"],
        }
    )
    frame = frame[frame["seconds"] < span]  # the future is not in the data yet
    # A session is a user's run of events with gaps under SESSION_GAP.
    frame = frame.sort_values(["user_id", "seconds"], kind="stable")
    gap = frame["seconds"].diff().to_numpy()
    new = (frame["user_id"] != frame["user_id"].shift()).to_numpy() | ~(gap < SESSION_GAP)
    frame["session_id"] = [f"s{n:07d}" for n in np.cumsum(new)]
    frame = frame.sort_values(["seconds", "user_id"], kind="stable", ignore_index=True)
    frame.insert(3, "ts", _to_datetime(start, frame.pop("seconds").to_numpy()))
    return frame


def _to_datetime(start: datetime, seconds: np.ndarray) -> pd.Series:
    micros = np.round(np.asarray(seconds, dtype=float) * 1e6).astype("timedelta64[us]")
    return pd.Series(np.datetime64(start, "us") + micros)


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    keys = parts[0].keys() if parts else ()
    return {k: np.concatenate([p[k] for p in parts]) for k in keys}
