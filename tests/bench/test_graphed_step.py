"""resnets.train.cuda_graphs: snapshot/restore, tensor learning rates and the eager fallback on the CPU;
the CUDA-graph step itself under the gpu marker."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from resnets import create_model
from resnets.train.cuda_graphs import (
    GraphedTrainStep,
    TensorLR,
    check_capturable,
    make_train_step,
    restore,
    snapshot,
)
from resnets.train.optim import set_lr


def _net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(5, 3, 6, 6, generator=g), torch.randint(0, 3, (5,), generator=g)


def _sgd_step(model: nn.Module, opt: torch.optim.Optimizer, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    opt.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(model(batch[0]), batch[1]).backward()
    opt.step()


def test_restore_undoes_steps_and_zeroes_new_optimizer_state() -> None:
    model = _net()
    fresh = copy.deepcopy(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    saved = snapshot(model, opt)
    for seed in range(2):
        _sgd_step(model, opt, _batch(seed))
    restore(model, opt, saved)
    for (k, a), b in zip(model.state_dict().items(), fresh.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)
    assert all(float(s["momentum_buffer"].abs().sum()) == 0.0 for s in opt.state.values())
    # a zeroed momentum buffer makes the next step exactly a fresh optimizer's first step
    fresh_opt = torch.optim.SGD(fresh.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    _sgd_step(model, opt, _batch(5))
    _sgd_step(fresh, fresh_opt, _batch(5))
    for a, b in zip(model.parameters(), fresh.parameters()):
        torch.testing.assert_close(a, b)


def test_restore_keeps_tensor_addresses() -> None:
    model = _net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    _sgd_step(model, opt, _batch())
    pointers = [p.data_ptr() for p in model.parameters()] + [s["momentum_buffer"].data_ptr() for s in opt.state.values()]
    saved = snapshot(model, opt)
    _sgd_step(model, opt, _batch(1))
    restore(model, opt, saved)
    assert pointers == [p.data_ptr() for p in model.parameters()] + [s["momentum_buffer"].data_ptr() for s in opt.state.values()]


def test_check_capturable_needs_fused_or_capturable() -> None:
    params = list(_net().parameters())
    with pytest.raises(ValueError, match="fused=True"):
        check_capturable(torch.optim.SGD(params, lr=0.1, momentum=0.9))
    check_capturable(torch.optim.SGD(params, lr=0.1, momentum=0.9, fused=True))
    adam = torch.optim.Adam(params, lr=1e-3, fused=True)
    check_capturable(adam)
    assert adam.param_groups[0]["capturable"] is True
    with pytest.raises(ValueError, match="capturable=True"):
        check_capturable(torch.optim.Adam(params, lr=1e-3))


def test_tensor_lr_follows_set_lr_and_matches_float_lr() -> None:
    model = _net()
    twin = copy.deepcopy(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, fused=True)
    ref = torch.optim.SGD(twin.parameters(), lr=0.1, momentum=0.9, fused=True)
    lr = TensorLR(opt, device=torch.device("cpu"))
    set_lr(opt, 0.05)
    set_lr(ref, 0.05)
    lr.sync()
    assert float(lr.tensors[0]) == pytest.approx(0.05)
    with lr.installed():
        assert isinstance(opt.param_groups[0]["lr"], torch.Tensor)
        _sgd_step(model, opt, _batch())
    assert opt.param_groups[0]["lr"] == 0.05  # the float is back for the schedule and checkpoints
    _sgd_step(twin, ref, _batch())
    for a, b in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b)


def test_graphed_step_refuses_the_cpu() -> None:
    model = _net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, fused=True)
    with pytest.raises(ValueError, match="CUDA"):
        GraphedTrainStep(model, opt, nn.CrossEntropyLoss(), _batch())


def test_make_train_step_falls_back_to_eager_on_cpu() -> None:
    model = _net()
    twin = copy.deepcopy(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    ref = torch.optim.SGD(twin.parameters(), lr=0.1, momentum=0.9)
    step = make_train_step(model, opt, nn.CrossEntropyLoss(), _batch(), cuda_graphs=True)
    assert not isinstance(step, GraphedTrainStep)
    x, y = _batch(3)
    loss, correct = step(x, y)
    _sgd_step(twin, ref, (x, y))
    for a, b in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b)
    assert 0 <= int(correct) <= 5 and loss.ndim == 0


# -- GPU ------------------------------------------------------------------------------------------
def _cuda_pair(name: str = "resnet20") -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    model = create_model(name).cuda()
    return model, copy.deepcopy(model)


def _cuda_batches(n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(16, 3, 32, 32, generator=g).cuda(), torch.randint(0, 10, (16,), generator=g).cuda())
            for _ in range(n)]


@pytest.mark.gpu
def test_graphed_step_matches_eager_steps_and_schedule() -> None:
    torch.backends.cudnn.deterministic = True
    model, twin = _cuda_pair()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4, fused=True)
    ref = torch.optim.SGD(twin.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4, fused=True)
    batches = _cuda_batches(4)
    step = GraphedTrainStep(model, opt, nn.CrossEntropyLoss(), batches[0])
    for (a, b) in zip(model.state_dict().values(), twin.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)  # building the step changed nothing
    eager = make_train_step(twin, ref, nn.CrossEntropyLoss(), batches[0], cuda_graphs=False)
    for i, (x, y) in enumerate(batches):
        lr = 0.1 if i < 2 else 0.01  # a schedule change must reach the captured optimizer
        set_lr(opt, lr)
        set_lr(ref, lr)
        loss_g, _ = step(x, y)
        loss_e, _ = eager(x, y)
        torch.testing.assert_close(loss_g, loss_e, rtol=1e-4, atol=1e-4)
    for a, b in zip(model.state_dict().values(), twin.state_dict().values()):
        torch.testing.assert_close(a.float(), b.float(), rtol=1e-3, atol=1e-4)


@pytest.mark.gpu
def test_graphed_step_bf16_channels_last_learns() -> None:
    model, _ = _cuda_pair()
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, fused=True)
    x, y = _cuda_batches(1)[0]
    step = GraphedTrainStep(model, opt, nn.CrossEntropyLoss(), (x, y), autocast_dtype=torch.bfloat16,
                            channels_last=True)
    losses = [float(step(x, y)[0]) for _ in range(30)]
    assert losses[-1] < losses[0]  # one batch, repeated: the loss must fall
    with pytest.raises(ValueError, match="one batch shape"):
        step(x[:8], y[:8])


@pytest.mark.gpu
def test_graphed_forward_matches_eager() -> None:
    from resnets.bench import GraphedForward
    from resnets.deploy import inference_model

    model, _ = _cuda_pair()
    net = inference_model(model, device="cuda", bf16=False, channels_last=False)
    x = _cuda_batches(1)[0][0]
    graphed = GraphedForward(net, x)
    x2 = torch.randn_like(x)
    torch.testing.assert_close(graphed(x2), net(x2), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(graphed(x2[:3]), net(x2[:3]), rtol=1e-4, atol=1e-4)  # other shape: eager


@pytest.mark.gpu
@pytest.mark.parametrize("compile_mode", ["off", "both"])
def test_bench_on_cuda(compile_mode: str) -> None:
    from resnets.bench import BenchConfig, run_bench

    out = run_bench(BenchConfig(model="resnet20", device="cuda", batch=32, warmup=3, reps=2, steps=3,
                                compile=compile_mode))
    assert out["resolved"]["cuda_graphs"] is True and out["resolved"]["precision"] == "bf16 autocast"
    for workload in out["results"].values():
        assert workload["ours"]["img_per_s"] > 0 and workload["theirs"]["img_per_s"] > 0
        assert workload["ours"]["peak_memory_bytes"] > 0
        assert workload["ratio"] == pytest.approx(workload["ours"]["img_per_s"] / workload["theirs"]["img_per_s"])


def test_engine_step_fn_is_none_off_cuda() -> None:
    from resnets.runtime import Runtime
    from resnets.train.cuda_graphs import graphed_step

    model = _net()
    fn = graphed_step(model, torch.optim.SGD(model.parameters(), lr=0.1), Runtime(device=torch.device("cpu")),
                      loss_fn=nn.CrossEntropyLoss(), grad_clip=None, sample_batch=_batch(), cuda_graphs=True)
    assert fn is None  # fit then runs its own eager step


@pytest.mark.gpu
def test_engine_fit_with_graphed_step_fn(tmp_path) -> None:
    from resnets.data import DataConfig, load_data
    from resnets.train.config import LoopConfig, OptimConfig, ScheduleConfig
    from resnets.train.cuda_graphs import graphed_step
    from resnets.train.engine import fit
    from resnets.train.optim import build_optimizer
    from resnets.train.runtime import make_runtime
    from resnets.train.schedule import resolve_schedule
    from resnets.train.state import TrainState

    loop = LoopConfig(iterations=40, log_every=10, tensorboard=False)
    runtime = make_runtime(loop, device="cuda")
    bundle = load_data(DataConfig(name="digits", batch_size=64), device=runtime.device)
    model = create_model("resnet20", num_classes=10, in_chans=1).cuda().to(memory_format=torch.channels_last)
    opt = build_optimizer(model, OptimConfig(lr=0.1), device=runtime.device)
    schedule = resolve_schedule(ScheduleConfig(name="cosine", unit="iter"), base_lr=0.1,
                                steps_per_epoch=len(bundle.train), total_steps=40)
    state = TrainState(model=model, step_model=model, optimizer=opt, schedule=schedule,
                       steps_per_epoch=len(bundle.train))
    state.set_train_mode()
    loss_fn = nn.CrossEntropyLoss()
    step_fn = graphed_step(state.step_model, state.optimizer, runtime, loss_fn=loss_fn, grad_clip=None,
                           sample_batch=next(iter(bundle.train.epoch(0))), cuda_graphs=True)
    assert step_fn is not None
    out = fit(state, train=bundle.train, val=bundle.val, loop=loop, loss_fn=loss_fn, grad_clip=None,
              runtime=runtime, log=None, metadata={}, quiet=True, step_fn=step_fn)
    assert len(out.losses) == 40
    assert sum(out.losses[-10:]) < sum(out.losses[:10])  # it learns with the schedule replayed
