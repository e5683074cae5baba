"""``reproduce he2015-cifar10``: the paper's Table 6 and Figure 6 with the paper's recipe.

Plain nets of 20/32/44/56 and residual nets of 20/32/44/56/110 layers (option A), trained
on CIFAR-10 (the official batches, or any copy given as an image folder of train/ and test/
class folders) for 64k iterations; the report sets the paper's test errors beside ours.
"""

from __future__ import annotations

from pathlib import Path

from resnets.studies.degradation import StudyOutput, run_degradation
from resnets.studies.recipe import PAPER_CIFAR10, Recipe

# He et al. 2015, Table 6: CIFAR-10 test error (%) of the residual nets (option A).
PAPER_TEST_ERROR: dict[int, float] = {20: 8.75, 32: 7.51, 44: 7.17, 56: 6.97, 110: 6.43, 1202: 7.93}

TITLE = "He et al. 2015 on CIFAR-10: Table 6 and Figure 6 reproduced"


def is_shortened(recipe: Recipe) -> bool:
    """Fewer iterations than the paper's 64k: the numbers cannot be compared with the paper's."""
    return recipe.iterations < PAPER_CIFAR10.iterations


def shortened_note(recipe: Recipe) -> str:
    """The label of a shortened run (report title and terminal), empty for the paper's length."""
    if not is_shortened(recipe):
        return ""
    return (f"a shortened run ({recipe.iterations:,} of the paper's {PAPER_CIFAR10.iterations:,} iterations), "
            "not a reproduction: its errors are not comparable with the paper's")


def title_for(recipe: Recipe) -> str:
    return f"He et al. 2015 on CIFAR-10: {shortened_note(recipe)}" if is_shortened(recipe) else TITLE


def he2015_recipe(*, data_dir: str | None, download: bool, depths: list[int] | None = None,
                  iterations: int | None = None, seeds: list[int] | None = None) -> Recipe:
    """The paper's recipe; ``iterations`` shortens it with the lr drops kept at 1/2 and 3/4 of the run
    (the paper: 32k and 48k of 64k) and the warm-up capped at 1/160 of the run (400 of 64k)."""
    data = {"data": "imagefolder", "root": data_dir, "download": False} if data_dir else \
        {"data": "cifar10", "root": None, "download": download}
    if data_dir and not Path(data_dir).is_dir():
        raise FileNotFoundError(
            f"--data {data_dir} is not a directory; give a CIFAR-10 image folder with train/ and test/ "
            "sub-folders of class folders (e.g. unpack cifar10-jpeg.tar.gz), or leave --data out for the official set"
        )
    recipe = PAPER_CIFAR10.replace({**data, "depths": depths, "seeds": seeds})
    if iterations is None:
        return recipe
    warmup = round(PAPER_CIFAR10.warmup_iterations * iterations / PAPER_CIFAR10.iterations)
    return recipe.with_iterations(iterations, points=20).replace({"warmup_iterations": warmup})


def reproduce_he2015(recipe: Recipe, *, out_dir: Path, device: str, workers: int | None, quiet: bool,
                     command: str) -> StudyOutput:
    return run_degradation(recipe, out_dir=out_dir, device=device, workers=workers, quiet=quiet, command=command,
                           reference=PAPER_TEST_ERROR, title=title_for(recipe), study="reproduce-he2015-cifar10")
