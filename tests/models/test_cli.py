"""`resnets models` and `resnets summary`."""

from resnets.cli import main


def test_models_lists_parameters_and_macs(capsys):
    assert main(["models", "resnet*0"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("resnet50 "))
    assert "25,557,032" in row and "4.089" in row  # torchvision's count and GFLOPS
    assert "resnet20 " in out and "269,722" in out and "resnet18 " not in out


def test_models_unknown_pattern_is_an_error(capsys):
    assert main(["models", "vgg*"]) == 2
    assert "no model matches" in capsys.readouterr().err


def test_summary_counts_weighted_layers(capsys):
    assert main(["summary", "resnet18"]) == 0
    out = capsys.readouterr().out
    assert "weighted layers: 1 + 4 + 4 + 4 + 4 + 1 = 18" in out
    assert "(1, 512, 7, 7)" in out


def test_summary_unknown_model_suggests(capsys):
    assert main(["summary", "resnet19"]) == 2
    assert "did you mean" in capsys.readouterr().err
