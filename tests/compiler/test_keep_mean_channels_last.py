"""Global mean → keepdim mean + flatten in a torch FX graph: same values, rewritten only where it applies."""

from __future__ import annotations

import torch

from edgeml.compiler.lowerings.keep_mean_channels_last import keep_mean_channels_last


class _Means(torch.nn.Module):
    def forward(self, x):
        return x.mean((2, 3)) + x.mean(dim=(-1, -2)), x.mean(1), x.mean((2, 3), keepdim=True)


def test_spatial_means_are_kept_4d_and_nothing_else_changes():
    x = torch.rand(2, 3, 4, 5)
    graph = torch.export.export(_Means(), (x,)).module()
    expected = graph(x)
    assert keep_mean_channels_last(graph) == 2  # the two 2-D global means; not the channel mean, not keepdim
    for got, want in zip(graph(x), expected, strict=True):
        torch.testing.assert_close(got, want)
    kept = [n for n in graph.graph.nodes if n.target == torch.ops.aten.mean.dim and n.args[2:] == (True,)]
    assert len(kept) == 3
