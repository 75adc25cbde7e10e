"""The accuracy-aware search's logic on fakes: a "model" whose output noise is the sum of what each INT8 layer
adds, so which mix meets a floor is known in advance. The real runtimes: tests/compiler/test_accuracy_aware.py.

The layers mimic digits on cpu-openvino, where the search was measured: the Gemm recovers most, conv3 the next
most but holds most of the weights, the ReduceMean (no weights) and conv1 a little each."""

from __future__ import annotations

import math

import pytest

from edgeml.compiler.mixed_precision_search import MAX_TRIES, MixedSearch, search_mixed_precision
from edgeml.compiler.quantized_layers import QuantizedLayer
from edgeml.compiler.select_candidate import Budget

# name: (weights, output noise it adds in INT8, as a fraction of the signal)
DIGITS_OV = {
    "gemm": (640, 6.0e-5),
    "conv3": (18432, 3.0e-5),
    "mean": (0, 1.2e-5),
    "conv1": (144, 0.9e-5),
    "conv2": (4608, 0.3e-5),
}


class FakeEvaluator:
    """`metrics(keep_float)`: cosine 1 − noise, the noise of the layers left in INT8 adding up."""

    def __init__(self, layers: dict[str, tuple[int, float]]) -> None:
        self.float_metrics = {"accuracy": None}  # no labels: the budget is the cosine floor
        self.layers = layers
        self.built: list[tuple[str, ...]] = []

    def build(self, keep_float: tuple[str, ...]) -> tuple[str, ...]:
        self.built.append(keep_float)
        return keep_float

    def metrics(self, keep_float: tuple[str, ...]) -> dict:
        noise = sum(n for name, (_, n) in self.layers.items() if name not in keep_float)
        sqnr = math.inf if noise == 0 else round(-10 * math.log10(noise), 3)
        return {"sqnr_db": sqnr, "fidelity": {"out": {"cosine": round(1 - noise, 9)}}, "accuracy": None}


def _layers(spec: dict[str, tuple[int, float]]) -> list[QuantizedLayer]:
    return [
        QuantizedLayer(name, "Op", name, int8=True, has_weights=weights > 0, own_scale=True, int8_range=None,
                       weights=weights)
        for name, (weights, _) in spec.items()
    ]  # fmt: skip


def _search(spec: dict[str, tuple[int, float]], floor: float) -> tuple[MixedSearch, FakeEvaluator]:
    fake = FakeEvaluator(spec)
    search = search_mixed_precision((), _layers(spec), fake.build, fake, Budget(max_drop=1.0, min_cosine=floor))
    return search, fake


def _cost(spec, keep) -> int:
    return sum(spec[name][0] for name in keep)


def test_layers_are_ranked_by_what_they_recover_and_carry_their_cost():
    search, _ = _search(DIGITS_OV, 0.999966)
    assert [(s.layer, s.cost) for s in search.ranking] == [
        ("gemm", 640), ("conv3", 18432), ("mean", 0), ("conv1", 144), ("conv2", 4608),
    ]  # fmt: skip
    assert MixedSearch.from_dict(search.to_dict()) == search  # the cached form keeps the cost


def test_the_fewest_layers_are_swapped_for_cheaper_ones_that_still_meet_the_budget():
    """Gemm + conv3 (19,072 weights) is the fewest; Gemm + ReduceMean + conv1 (784) meets the floor too."""
    search, fake = _search(DIGITS_OV, 0.999966)
    tried = [t.keep_float for t in search.tries]
    assert tried[:2] == [("gemm",), ("gemm", "conv3")]  # the prefix search: the fewest layers
    assert tried[2:] == [("gemm", "mean"), ("gemm", "mean", "conv1")]  # conv3 swapped, most dB per weight first
    assert search.keep_float == ("gemm", "mean", "conv1")  # in rank order
    assert _cost(DIGITS_OV, search.keep_float) < _cost(DIGITS_OV, ("gemm", "conv3"))
    assert "keeps 3 of 5 sensitive layers in float: gemm (Op, +" in search.summary()
    assert len(fake.built) == len(set(fake.built))  # each mix built once, whichever step asks
    assert len(fake.built) == len(DIGITS_OV) + len(search.tries) - 1  # the Gemm alone: measured while ranking


def test_a_swap_that_misses_leaves_the_fewest_layers():
    search, _ = _search(DIGITS_OV, 0.999975)  # needs conv3: nothing cheaper makes up for it
    assert search.keep_float == ("gemm", "conv3")
    assert [t.keep_float for t in search.tries] == [
        ("gemm",), ("gemm", "conv3"),  # the fewest
        ("gemm", "mean"), ("gemm", "mean", "conv1"), ("gemm", "mean", "conv1", "conv2"),  # instead of conv3
        ("conv3", "mean"), ("conv3", "mean", "conv1"),  # instead of the Gemm (conv2 costs more than it)
    ]  # fmt: skip
    assert [t.miss is None for t in search.tries] == [False, True, False, False, False, False, False]


def test_the_swaps_stop_at_the_try_cap():
    """Layers of cost 4 and 1 (a MiniLM's FFN and attention projections): the prefix search takes most of the
    tries; the swaps get what is left, and the search is deterministic."""
    spec = {f"ffn{i}": (4, 3.0e-5) for i in range(12)} | {f"attn{i}": (1, 0.6e-5) for i in range(12)}
    search, _ = _search(spec, 0.999855)  # 10 FFNs in float: 3e-4 of the 4.32e-4 noise removed
    assert [len(t.keep_float) for t in search.tries] == [1, 2, 3, 4, 6, 9, 13, 11, 10, 10]
    assert len(search.tries) == MAX_TRIES and search.keep_float == tuple(f"ffn{i}" for i in range(10))
    assert search.tries[-1].keep_float == (*(f"ffn{i}" for i in range(1, 10)), "attn0")  # the one swap left
    again, _ = _search(spec, 0.999855)
    assert again.to_dict() | {"seconds": 0} == search.to_dict() | {"seconds": 0}


@pytest.mark.parametrize("floor", [0.999966, 0.999975, 0.999999])
def test_a_mix_never_keeps_every_layer_in_float(floor):
    search, _ = _search(DIGITS_OV, floor)
    assert all(len(t.keep_float) < len(DIGITS_OV) for t in search.tries)
    assert search.found == (floor < 0.999999)


class SlowEvaluator(FakeEvaluator):
    """Each measurement takes `step` seconds of a clock the test moves (no sleeping): a search on a big model."""

    def __init__(self, layers, clock: list[float], step: float) -> None:
        super().__init__(layers)
        self.clock, self.step = clock, step

    def metrics(self, keep_float):
        self.clock[0] += self.step
        return super().metrics(keep_float)


def test_a_search_stops_at_its_time_budget_and_says_what_it_had_done(monkeypatch):
    import edgeml.compiler.mixed_precision_search as mps

    clock = [0.0]
    monkeypatch.setattr(mps.time, "perf_counter", lambda: clock[0])
    slow = SlowEvaluator(DIGITS_OV, clock, step=10.0)
    layers, budget = _layers(DIGITS_OV), Budget(max_drop=1.0, min_cosine=0.99999)
    search = search_mixed_precision((), layers, slow.build, slow, budget, time_budget_s=25.0)
    assert len(search.ranking) < len(DIGITS_OV)  # stopped while ranking: no mix built after it
    assert len(slow.built) == len(search.ranking) and all(len(t.keep_float) == 1 for t in search.tries)
    assert search.notes and "25 s budget (-O search_budget_s)" in search.notes[0]
    assert search.keep_float is None and "search_budget_s" in search.summary()
    assert clock[0] <= 25.0 + 10.0  # at most one measurement past the budget


def test_a_search_out_of_time_ships_the_cheapest_mix_that_met_the_budget_so_far(monkeypatch):
    import edgeml.compiler.mixed_precision_search as mps

    clock = [0.0]
    monkeypatch.setattr(mps.time, "perf_counter", lambda: clock[0])
    slow = SlowEvaluator(DIGITS_OV, clock, step=10.0)
    # NOTE: 1 base + 5 ranked (the Gemm alone meets the floor: the first try, measured while ranking) + one swap
    # fit in 65 s; the other swaps do not
    search = search_mixed_precision((), _layers(DIGITS_OV), slow.build, slow, Budget(max_drop=1.0, min_cosine=0.99993),
                                    time_budget_s=65.0)  # fmt: skip
    assert search.found and all(t.miss is None for t in search.tries if set(t.keep_float) == set(search.keep_float))
    assert search.notes and "stopped" in search.notes[0]


def test_the_failure_says_which_criterion_the_closest_mix_missed():
    search, _ = _search({"a": (10, 0.5), "b": (10, 0.4)}, floor=0.99)
    assert not search.found
    assert "closest:" in search.summary() and "cosine" in search.summary().split("closest:")[1]


class ChannelEvaluator(FakeEvaluator):
    """A detection head's numbers: the convs add output noise (what SQNR sees); the score channel dies (cosine 0)
    unless one of `saves` is in float, which changes the output SQNR by nothing measurable."""

    def __init__(self, layers, saves: set[str]) -> None:
        super().__init__(layers)
        self.saves = saves

    def metrics(self, keep_float):
        m = super().metrics(keep_float)
        channel = 0.999 if self.saves & set(keep_float) else 0.0
        out = m["fidelity"]["out"] | {"channels": 7, "worst_channel": 5, "worst_channel_cosine": channel}
        return m | {"fidelity": {"out": out}}


DET_HEAD = {"conv1": (432, 4e-4), "conv2": (4608, 2e-4), "box": (128, 1e-5), "join": (0, 0.0)}
HEAD_NODES = ("sigmoid_box", "sigmoid_cls", "scale", "join", "flatten")


def _det_layers(with_head: bool) -> list[QuantizedLayer]:
    head = QuantizedLayer("float head", "Sigmoid+Mul+Concat+Reshape", "", int8=True, has_weights=False,
                          own_scale=True, int8_range=None, members=HEAD_NODES)  # fmt: skip
    return _layers(DET_HEAD) + ([head] if with_head else [])


def test_a_weightless_op_that_saves_a_channel_ranks_first_though_sqnr_cannot_see_it():
    """The Concat recovers 0 dB, the convs +3 and +1.8 dB: ranked by SQNR the Concat fell below the 0.05 dB cut;
    ranked by the floor it missed, it meets the budget alone and is what ships."""
    fake = ChannelEvaluator(DET_HEAD, saves={"join"})
    budget = Budget(max_drop=1.0, min_cosine=0.99, min_channel_cosine=0.95)
    search = search_mixed_precision((), _det_layers(False), fake.build, fake, budget)
    top = search.ranking[0]
    assert top.layer == "join" and top.meets and top.gain_db < 0.05 < search.ranking[1].gain_db
    assert search.keep_float == ("join",) and "channel 5 has cosine 0.000" in search.base_miss
    assert MixedSearch.from_dict(search.to_dict()) == search


def test_the_float_head_is_kept_as_one_group_and_ranking_stops_there():
    """The head (no weights) in float meets the floor: nothing can cost less, so no layer after it is measured,
    and the mix keeps every node of the head."""
    fake = ChannelEvaluator(DET_HEAD, saves=set(HEAD_NODES))
    budget = Budget(max_drop=1.0, min_cosine=0.99, min_channel_cosine=0.95)
    search = search_mixed_precision((), _det_layers(True), fake.build, fake, budget)
    assert fake.built == [HEAD_NODES]  # the group first, one build: it is also the mix
    assert search.keep_float == HEAD_NODES and search.kept == ("float head",)
    assert search.summary().startswith("keeps 1 of 1 sensitive layers in float: float head [sigmoid_box, ")
    assert "ranking stopped after float head" in search.notes[0]
    assert MixedSearch.from_dict(search.to_dict()) == search


def test_when_the_head_does_not_help_the_failure_names_the_floor_and_the_miss():
    fake = ChannelEvaluator(DET_HEAD, saves=set())
    budget = Budget(max_drop=1.0, min_cosine=0.99, min_channel_cosine=0.95)
    search = search_mixed_precision((), _det_layers(True), fake.build, fake, budget)
    assert not search.found
    summary = search.summary()
    assert "channel 5 has cosine 0.000 vs float (floor 0.95)" in summary  # the criterion and by how much
    head = next(s for s in search.ranking if s.layer == "float head")
    assert not head.meets and head.members == HEAD_NODES  # measured, and said to be not enough
