"""One flag set and one exit-code convention for the vdm stage commands (vdm/cliargs.py)."""

from __future__ import annotations

import pytest

from vdm.cliargs import EXIT_BAD_INPUT, EXIT_FAILED

STAGES = {
    "shard": ["--split", "train", "--quiet"],
    "train": ["--workdir", "{tmp}/w", "--dry-run"],
    "sample": ["--export", "{tmp}/e.pt", "--out", "{tmp}/s.npz", "--quiet"],
    "evaluate": ["--samples", "{tmp}/s.npz", "--out", "{tmp}/m.json", "--quiet"],
}


def _main(stage):
    from vdm.__main__ import main

    return lambda argv: main([stage] + argv)


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_a_bad_config_key_exits_2_naming_it(stage, tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: x\ntrain:\n  stepz: 3\n")
    argv = [a.format(tmp=tmp_path) for a in STAGES[stage]]
    assert _main(stage)(["--config", str(cfg)] + argv) == EXIT_BAD_INPUT
    assert "stepz" in capsys.readouterr().err


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_stage_takes_config_and_set(stage, tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: x\n")
    argv = [a.format(tmp=tmp_path) for a in STAGES[stage]]
    code = _main(stage)(["--config", str(cfg), "--set", "train.stepz=1"] + argv)
    assert code == EXIT_BAD_INPUT and "stepz" in capsys.readouterr().err  # the override reached the loader


def test_exit_codes_are_distinct():
    assert (EXIT_FAILED, EXIT_BAD_INPUT) == (1, 2)


# the stage's sections that --dry-run prints (besides the root seed)
DRY_RUN_SECTIONS = {"shard": {"data", "model"}, "train": {"data", "model", "diffusion", "train", "launch"},
                    "sample": {"data", "sample"}, "evaluate": {"data", "evaluate"}}


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_stage_has_dry_run_and_quiet(stage, tmp_path, capsys):
    import yaml

    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: x\nseed: 7\n")
    argv = [a.format(tmp=tmp_path) for a in STAGES[stage]]
    if "--quiet" not in argv:
        argv.append("--quiet")
    if "--dry-run" not in argv:
        argv.append("--dry-run")
    code = _main(stage)(["--config", str(cfg), "--set", "data.resolution=48"] + argv)
    assert code == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["seed"] == 7 and shown["data"]["resolution"] == 48  # the resolved config, overrides applied
    assert DRY_RUN_SECTIONS[stage] <= set(shown)
    assert list(tmp_path.iterdir()) == [cfg]  # a dry run reads no input and writes nothing


def test_version_names_the_package_version_and_the_installed_distribution_agrees(capsys):
    from importlib import metadata

    import vdm
    from vdm.__main__ import main

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"vdm {vdm.__version__}"
    # the distribution is installed under its own name (PyPI's "vdm" is another project), at the same version
    assert metadata.version("vdm-pipeline") == vdm.__version__


def test_train_help_parses_before_importing_torch():
    """`vdm train --help` answers from the flags alone: torch (seconds to import) is not loaded."""
    import subprocess
    import sys

    code = ("import sys\nfrom vdm.__main__ import main\ntry:\n    main(['train', '--help'])\n"
            "except SystemExit as e:\n    assert e.code == 0, e.code\n"
            "print('TORCH_LOADED' if 'torch' in sys.modules else 'TORCH_NOT_LOADED')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    assert "Example (the embedded default's main arm, locally):" in out
    assert "vdm train --config config/config.yaml --workdir" in out
    assert "Outputs: the training state" in out
    assert out.strip().endswith("TORCH_NOT_LOADED"), out[-300:]
