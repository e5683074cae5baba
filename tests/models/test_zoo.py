"""Every registered model: shapes, gradients, parameter counts, depth as the paper counts it."""

import pytest
import torch

from resnets import create_model, list_models
from resnets.models import get_entry
from resnets.models.inspect import count_parameters

# REFERENCE.md: exact counts (ImageNet: 1000 classes, CIFAR: 10 classes, option A)
PARAMS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "wide_resnet50_2": 68_883_240,
    "resnext50_32x4d": 25_028_904,
    "resnet20": 269_722,
    "resnet32": 464_154,
    "resnet44": 658_586,
    "resnet56": 853_018,
    "resnet110": 1_727_962,
    "resnet1202": 19_421_274,
}
DEPTH = {"resnet18": 18, "resnet34": 34, "resnet50": 50, "resnet101": 101, "resnet152": 152,
         "resnet20": 20, "resnet56": 56, "resnet110": 110, "resnet1202": 1202, "plain20": 20, "plain34": 34,
         "preact_resnet164": 164, "preact_resnet1001": 1001, "preact_resnet110": 110}
BIG = {"resnet1202", "plain1202", "preact_resnet1001", "wide_resnet101_2", "resnext101_32x8d", "resnet152",
       "plain152", "preact_resnet152", "wide_resnet50_2"}


def meta_model(name: str, **options):
    with torch.device("meta"):
        return create_model(name, **options)


def test_registry_holds_every_family():
    names = set(list_models())
    for depth in (18, 34, 50, 101, 152):
        assert {f"resnet{depth}", f"preact_resnet{depth}", f"plain{depth}"} <= names
    for depth in (20, 32, 44, 56, 110, 1202):
        assert {f"resnet{depth}", f"plain{depth}"} <= names
    for depth in (20, 32, 44, 56, 110, 164, 1001):
        assert f"preact_resnet{depth}" in names
    assert {"wide_resnet50_2", "wide_resnet101_2", "resnext50_32x4d", "resnext101_32x8d"} <= names
    assert list_models("plain*") and all(n.startswith("plain") for n in list_models("plain*"))


@pytest.mark.parametrize("name,expected", sorted(PARAMS.items()))
def test_parameter_counts_match_reference(name, expected):
    assert count_parameters(meta_model(name)) == expected


@pytest.mark.parametrize("name,depth", sorted(DEPTH.items()))
def test_weighted_layers_as_the_paper_counts(name, depth):
    assert meta_model(name).weighted_layers() == depth


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in BIG else n for n in list_models()])
def test_forward_backward_every_model(name):
    model = create_model(name, num_classes=7)
    # A 1202-layer plain net's gradients explode through training-mode BN at initialisation
    # (NaN in the first layers), and in eval mode its signal and gradients vanish (often to
    # exact zeros): the very failure the studies show. It is checked in eval mode, for shape
    # and finite gradients only.
    plain_1202 = name == "plain1202"
    model.train(not plain_1202)
    size = model.min_input_size if get_entry(name).family == "imagenet" else (8 if name in BIG else 16)
    x = torch.randn(2, 3, size, size)
    out = model(x)
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()
    out.logsumexp(1).sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    if not plain_1202:
        assert model.fc.weight.grad.abs().sum() > 0
        assert model.conv1.weight.grad.abs().sum() > 0


def test_native_input_sizes_and_feature_info():
    for name, size, strides in [("resnet50", 224, [4, 8, 16, 32]), ("resnet20", 32, [1, 2, 4])]:
        model = create_model(name).eval()
        assert model.default_input_size == (3, size, size)
        assert [f["stride"] for f in model.feature_info] == strides
        x = torch.randn(1, 3, 64, 64)
        with torch.no_grad():
            maps = model.forward_stages(x)
        assert list(maps) == model.stage_names
        for info, fmap in zip(model.feature_info, maps.values()):
            assert fmap.shape[1] == info["channels"]
            assert fmap.shape[-1] == 64 // info["stride"]


def test_forward_head_and_reset_classifier():
    model = create_model("resnet20").eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (3, 64, 8, 8)
        assert torch.equal(model.forward_head(feats), model(x))
        assert model.forward_head(feats, pre_logits=True).shape == (3, 64)
    model.reset_classifier(5)
    assert model(x).shape == (3, 5) and model.num_classes == 5
    model.reset_classifier(0)
    assert model(x).shape == (3, 64)


def test_in_chans_option():
    model = create_model("resnet18", in_chans=1, num_classes=4)
    assert model.conv1.weight.shape[1] == 1
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 4)


def test_v1_variant_moves_the_stride_to_the_first_1x1():
    v15, v1 = meta_model("resnet50"), meta_model("resnet50", variant="v1")
    assert v15.layer2[0].conv2.stride == (2, 2) and v15.layer2[0].conv1.stride == (1, 1)
    assert v1.layer2[0].conv1.stride == (2, 2) and v1.layer2[0].conv2.stride == (1, 1)
    assert count_parameters(v1) == count_parameters(v15)


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "resnet20"])
def test_output_stride_by_dilation(name):
    native = create_model(name).min_input_size
    for os_ in [native // 2, native // 4]:
        model = create_model(name, output_stride=os_).eval()
        with torch.no_grad():
            feats = model.forward_features(torch.randn(1, 3, 64, 64))
        assert feats.shape[-1] == 64 // os_
        assert model.feature_info[-1]["stride"] == os_


def test_shortcut_options_abc():
    a, b, c = (meta_model("resnet20", shortcut=s) for s in "ABC")
    assert count_parameters(a) == 269_722
    # B: two projections (16->32, 32->64) with BN; C: a projection on all nine units
    proj = lambda i, o: i * o + 2 * o  # noqa: E731  (1x1 conv + BN)
    assert count_parameters(b) == 269_722 + proj(16, 32) + proj(32, 64)
    assert count_parameters(c) == 269_722 + 3 * proj(16, 16) + proj(16, 32) + 2 * proj(32, 32) + proj(32, 64) + 2 * proj(64, 64)


def test_stochastic_depth_rates_and_behaviour():
    model = create_model("resnet20", drop_path_rate=0.5)
    rates = [u.drop_path.rate for u in model.units() if hasattr(u.drop_path, "rate")]
    assert rates[-1] == pytest.approx(0.5) and rates == sorted(rates)
    x = torch.randn(4, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))  # no randomness at evaluation
    model.train()
    torch.manual_seed(1)
    y1 = model(x)
    torch.manual_seed(2)
    y2 = model(x)
    assert not torch.allclose(y1, y2)


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    ref = create_model("resnet32")
    ckpt = create_model("resnet32", grad_checkpointing=True)
    ckpt.load_state_dict(ref.state_dict())
    x = torch.randn(4, 3, 16, 16)
    for m in (ref, ckpt):
        m.train()
        m(x).square().mean().backward()
    for (n, p), q in zip(ref.named_parameters(), ckpt.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6, msg=n)


def _saved_bytes(model, x) -> int:
    """Bytes autograd keeps for the backward pass of one forward (outside checkpointed regions)."""
    total = 0

    def pack(t):
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x).sum().backward()
    return total


def test_gradient_checkpointing_bounds_the_memory_kept_for_backward():
    x = torch.randn(2, 3, 16, 16)
    plain = _saved_bytes(create_model("resnet110").train(), x)
    ckpt = _saved_bytes(create_model("resnet110", grad_checkpointing=True).train(), x)
    # 18 units per stage in segments of ~sqrt(18): only the segments' inputs are kept
    # (measured: 13.3 MB -> 0.33 MB here; resnet1202: 147 MB -> 0.9 MB)
    assert ckpt * 20 < plain
