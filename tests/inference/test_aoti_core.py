"""AotiCore's calls without a compiled package: what a runner returns and the layouts it is handed.

The runners here stand in for ``aoti_load_package``'s: they return what a package returns (the
exported module's output as it was, a lone tensor for the text encoder) and record the strides they
were given. The compiled packages themselves are tested in tests/convert/aoti.
"""

import torch

from sam3ops.inference.aoti_core import AotiCore, in_layouts, input_layout


def _core(runners, layouts=None, min_batch=1, max_batch=4):
    core = AotiCore.__new__(AotiCore)  # no folder: only the calling code is under test
    core.device, core.runners, core._warned = torch.device("cpu"), runners, False
    core.min_batch, core.max_batch, core.layouts = min_batch, max_batch, layouts or {}
    return core


def test_a_package_returning_one_tensor_gives_every_rows_features():
    features = torch.randn(3, 32, 8)
    core = _core({"text.pt2": lambda ids, mask: features.clone()})
    got = core.encode_text(torch.zeros(3, 32, dtype=torch.long), torch.ones(3, 32, dtype=torch.long))
    assert torch.equal(got, features)  # not features[0]: iterating a tensor walks its rows


def test_one_tensor_is_padded_chunked_and_cut_back_like_a_tuple():
    core = _core({"text.pt2": lambda ids, mask: ids.float() * 2}, min_batch=2, max_batch=3)
    ids = torch.arange(5 * 4).reshape(5, 4)
    assert torch.equal(core.encode_text(ids, torch.ones_like(ids)), ids.float() * 2)  # chunks of 3 and 2
    assert torch.equal(core.encode_text(ids[:1], torch.ones_like(ids[:1])), ids[:1].float() * 2)  # padded to 2


def test_inputs_reach_a_package_in_the_layouts_it_was_compiled_for():
    seen = []

    def runner(*inputs):
        seen.append([input_layout(t) for t in inputs])
        return tuple(t.sum() * torch.ones(t.shape[0]) for t in inputs)

    core = _core({"decoder.pt2": runner}, layouts={"decoder.pt2": ["channels_last", "contiguous"]})
    plain, nhwc = torch.randn(2, 8, 4, 4), torch.randn(2, 8, 4, 4).contiguous(memory_format=torch.channels_last)
    expected = core._run("decoder.pt2", plain, nhwc)
    assert seen == [["channels_last", "contiguous"]]
    sums = (plain.sum() * torch.ones(2), nhwc.sum() * torch.ones(2))
    assert all(torch.allclose(a, b) for a, b in zip(expected, sums))


def test_layouts_are_named_and_kept_where_they_already_match():
    nhwc = torch.randn(2, 8, 4, 4).contiguous(memory_format=torch.channels_last)
    plain, ids = torch.randn(2, 8, 4, 4), torch.ones(2, 32)
    assert [input_layout(t) for t in (nhwc, plain, ids, nhwc[:1])] == ["channels_last", "contiguous", "contiguous",
                                                                        "channels_last"]
    kept = in_layouts((nhwc, ids), ["channels_last", "contiguous"])
    assert kept[0].data_ptr() == nhwc.data_ptr() and kept[1].data_ptr() == ids.data_ptr()  # no copy
    assert in_layouts((plain,), None)[0] is plain  # a sidecar from before layouts were recorded
