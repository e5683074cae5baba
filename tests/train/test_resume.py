import safetensors.torch
import torch
from train_helpers import tiny_recipe

from resnets.train import config_from_mapping, run


def test_resume_mid_epoch_equals_an_uninterrupted_run(tmp_path):
    full = run(config_from_mapping(tiny_recipe(tmp_path / "a")), device="cpu", quiet=True)
    assert full.step == 10 and len(full.losses) == 10

    # 76 training images / batch 16 = 4 steps per epoch: stopping at 6 is mid-epoch 1.
    first = run(config_from_mapping(tiny_recipe(tmp_path / "b")), device="cpu", quiet=True, stop_after=6)
    assert first.step == 6 and first.test is None
    resumed = run(config_from_mapping(tiny_recipe(tmp_path / "b", train={"resume": str(first.run_dir)})),
                  device="cpu", quiet=True)
    assert resumed.first_step == 6 and resumed.run_dir == first.run_dir

    assert first.losses + resumed.losses == full.losses
    a = safetensors.torch.load_file(str(full.run_dir / "last.safetensors"))
    b = safetensors.torch.load_file(str(resumed.run_dir / "last.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert resumed.test == full.test


def test_resume_true_finds_the_newest_run_of_that_name(tmp_path):
    first = run(config_from_mapping(tiny_recipe(tmp_path, train={"iterations": 4})), device="cpu",
                quiet=True, stop_after=2)
    again = run(config_from_mapping(tiny_recipe(tmp_path, train={"iterations": 4, "resume": True})),
                device="cpu", quiet=True)
    assert again.run_dir == first.run_dir and again.first_step == 2 and again.step == 4
    steps = [r["step"] for r in map(__import__("json").loads, (first.run_dir / "metrics.jsonl").read_text().splitlines())]
    assert steps == sorted(set(steps))  # records past the checkpoint were not duplicated


def test_resume_from_the_command_line_uses_the_run_dirs_config(tmp_path, capsys):
    from resnets.cli import main

    first = run(config_from_mapping(tiny_recipe(tmp_path, train={"iterations": 4})), device="cpu",
                quiet=True, stop_after=3)
    assert main(["train", "--resume", str(first.run_dir), "--quiet", "--device", "cpu"]) == 0
    assert "4 steps" in capsys.readouterr().out
    from resnets.io.checkpoint import load_checkpoint

    assert load_checkpoint(first.run_dir / "last.safetensors").step == 4
    assert (first.run_dir / "final.json").is_file()


def test_resuming_a_finished_run_says_it_is_complete_and_keeps_its_results(tmp_path, capsys):
    from resnets.cli import main

    done = run(config_from_mapping(tiny_recipe(tmp_path, train={"iterations": 4})), device="cpu", quiet=True)
    final = (done.run_dir / "final.json").read_text()
    last = (done.run_dir / "last.safetensors").read_bytes()
    assert main(["train", "--resume", str(done.run_dir), "--quiet", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "the run was already complete: resnet20 on synthetic, 4 of 4 steps; nothing was trained" in out
    assert f"test acc {100 * done.test['acc']:.2f}%" in out  # the saved results, not recomputed ones
    assert f"results: {done.run_dir / 'final.json'}" in out
    assert (done.run_dir / "final.json").read_text() == final
    assert (done.run_dir / "last.safetensors").read_bytes() == last
