"""The challenge zip, loaded the way the scorer does: unzip, a fresh interpreter without eegphase, import."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
import torch
import yaml
from omegaconf import OmegaConf
from torch import nn

from eegphase.config import CONF_DIR
from eegphase.engine.checkpoint import save_checkpoint
from eegphase.export import ExportError, SubmissionModel, build_submission
from eegphase.export.__main__ import export, main, parse_args
from eegphase.export.bundle import BundleError, rewrite_imports
from eegphase.export.sources import parse_runs_uri
from eegphase.models.predictor import Predictor, build_predictor


def _model_config(name: str) -> dict:
    """conf/model/<name>.yaml, as a run's config.yaml holds it."""
    return OmegaConf.to_container(OmegaConf.load(CONF_DIR / "model" / f"{name}.yaml"))


EEGNEX = _model_config("eegnex")  # braindecode's EEGNeX
LABRAM_TINY = _model_config("labram_tiny")
VOLTS_TO_MICROVOLTS = 1e6
# What the scorer lacks: eegphase, and timm and hydra (shimmed in the bundle); mne too unless a bundled
# braindecode model brings it (the scoring environment has braindecode, and with it mne).
WITHOUT = ("eegphase", "timm", "hydra", "mne")
WITH_BRAINDECODE = ("eegphase", "timm", "hydra")

SCORER = textwrap.dedent(
    """
    import sys

    blocked = sys.argv[4].split(",")
    for name in blocked:
        sys.modules[name] = None
    try:
        import eegphase  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("eegphase is importable in the scorer process")

    import torch

    folder, inputs, outputs = sys.argv[1:4]
    sys.path.insert(0, folder)
    from submission import Submission

    submission = Submission(SFREQ=100, DEVICE=torch.device("cpu"))
    xs = torch.load(inputs, weights_only=True)
    results, classes = {}, {}
    with torch.no_grad():
        for challenge, model in ((1, submission.get_model_challenge_1()), (2, submission.get_model_challenge_2())):
            assert not any(m.training for m in model.modules()), f"challenge {challenge} model not in eval mode"
            results[challenge] = [model(x) for x in xs]
            classes[challenge] = sorted({f"{type(m).__module__}.{type(m).__name__}" for m in model.modules()})
    assert not any(n.split(".")[0] in blocked for n, m in sys.modules.items() if m)
    torch.save({"outputs": results, "classes": classes}, outputs)
    """
)


def _trained(model_cfg: dict, seed: int) -> Predictor:
    """A tiny predictor whose batch-norm statistics and weights are not the initial ones."""
    torch.manual_seed(seed)
    predictor = build_predictor(model_cfg, n_outputs=1)
    predictor.train()
    with torch.no_grad():
        predictor(torch.randn(8, 129, 200))
        for p in predictor.parameters():
            p.add_(0.01 * torch.randn_like(p))
    return predictor.eval()


def _checkpoint(predictor: Predictor, path: Path) -> Path:
    return save_checkpoint({"model": predictor.state_dict(), "epoch": 3}, path)


def _inputs() -> list[torch.Tensor]:
    """Batches of 1 and 4 (the single window is the first of the four)."""
    batch = torch.randn(4, 129, 200, generator=torch.Generator().manual_seed(7))
    return [batch[:1].clone(), batch]


def run_scorer(
    zip_path: Path, inputs: list[torch.Tensor], work: Path, without: tuple[str, ...] = WITHOUT
) -> dict:
    """Unzip into ``work`` and run both models in an isolated interpreter (-I: no PYTHONPATH, no cwd) where the
    packages ``without`` cannot be imported: ``{"outputs": {challenge: [output per input]}, "classes":
    {challenge: the module classes of its model}}``."""
    folder = work / "unzipped"
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(folder)
    script, inputs_file, outputs_file = work / "score.py", work / "inputs.pt", work / "outputs.pt"
    script.write_text(SCORER)
    torch.save(inputs, inputs_file)
    done = subprocess.run(
        [
            sys.executable,
            "-I",
            str(script),
            str(folder),
            str(inputs_file),
            str(outputs_file),
            ",".join(without),
        ],
        capture_output=True,
        text=True,
        cwd=work,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return torch.load(outputs_file, weights_only=True)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict:
    """braindecode's EEGNeX (challenge 1, raw input) and tiny LaBraM (challenge 2, scorer volts -> microvolts)
    in one zip."""
    tmp = tmp_path_factory.mktemp("export")
    eegnex, labram = _trained(EEGNEX, seed=1), _trained(LABRAM_TINY, seed=2)
    zip_path = build_submission(
        tmp / "out" / "submission.zip",
        SubmissionModel(_checkpoint(eegnex, tmp / "c1.pt"), EEGNEX),
        SubmissionModel(_checkpoint(labram, tmp / "c2.pt"), LABRAM_TINY, input_scale=VOLTS_TO_MICROVOLTS),
    )
    return {"zip": zip_path, "eegnex": eegnex, "labram": labram, "tmp": tmp}


def test_zip_is_flat_with_exactly_the_three_files(exported):
    with zipfile.ZipFile(exported["zip"]) as archive:
        names = sorted(archive.namelist())
        source = archive.read("submission.py").decode()
    assert names == ["submission.py", "weights_challenge_1.pt", "weights_challenge_2.pt"]
    assert "import eegphase" not in source and "from eegphase" not in source
    assert "import timm" not in source and "from timm" not in source
    assert "import hydra" not in source and "from hydra" not in source


def test_scorer_runs_both_models_like_the_in_process_predictors(exported, tmp_path):
    microvolts = _inputs()
    volts = [x / VOLTS_TO_MICROVOLTS for x in microvolts]
    scored = run_scorer(exported["zip"], microvolts + volts, tmp_path, without=WITH_BRAINDECODE)
    outputs = scored["outputs"]
    with torch.no_grad():
        for x, out in zip(microvolts, outputs[1][:2], strict=True):
            assert out.shape == (x.shape[0], 1)
            torch.testing.assert_close(out, exported["eegnex"](x), rtol=1e-5, atol=1e-6)
        for v, out in zip(volts, outputs[2][2:], strict=True):  # the submission scales volts to microvolts
            assert out.shape == (v.shape[0], 1)
            torch.testing.assert_close(out, exported["labram"](v * VOLTS_TO_MICROVOLTS), rtol=1e-5, atol=1e-6)
    # A batch's rows do not depend on the batch size.
    torch.testing.assert_close(outputs[2][3][:1], outputs[2][2], rtol=1e-4, atol=1e-6)
    # challenge 1 runs braindecode's own EEGNeX, imported where the scorer runs, not a copy in the bundle
    assert "braindecode.models.eegnex.EEGNeX" in scored["classes"][1]
    assert not any(c.startswith("braindecode.") for c in scored["classes"][2])


def test_a_braindecode_model_is_imported_by_the_submission_not_copied(exported):
    with zipfile.ZipFile(exported["zip"]) as archive:
        source = archive.read("submission.py").decode()
    assert "from braindecode import models as braindecode_models" in source  # eegphase's wrapper, bundled
    assert "class EEGNeX" not in source and "_eegphase_bundle.models.braindecode.BraindecodeEncoder" in source


class OutsideEncoder(nn.Module):
    """An encoder from a package other than eegphase: it trains, but the submission cannot carry its code."""

    embed_dim = 4

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(200, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).mean(1)


def test_an_encoder_from_another_package_is_refused_by_name(tmp_path):
    target = f"{OutsideEncoder.__module__}.OutsideEncoder"
    config = {"name": "outside", "encoder": {"_target_": target}, "channel_adapter": "zero_pad"}
    checkpoint = _checkpoint(build_predictor(config), tmp_path / "outside.pt")
    with pytest.raises(ExportError, match=rf"{checkpoint}: encoder _target_ '{target}'.*cannot be bundled"):
        build_submission(
            tmp_path / "s.zip", SubmissionModel(checkpoint, config), SubmissionModel(checkpoint, config)
        )


def test_export_from_mlflow_run_reads_checkpoint_and_config(tmp_path):
    from mlflow.tracking import MlflowClient

    tracking_uri = "sqlite:///" + str(tmp_path / "mlflow.db")
    client = MlflowClient(tracking_uri)  # no global tracking URI left behind for other tests
    experiment = client.create_experiment("export", artifact_location=(tmp_path / "artifacts").as_uri())
    predictor = _trained(LABRAM_TINY, seed=3)
    staging = tmp_path / "staging"
    _checkpoint(predictor, staging / "best.pt")
    # trained on 200 Hz windows (preprocess.sfreq): the submission resamples the scorer's 100 Hz ones
    preprocess = {"scale": 1e6, "sfreq": 200.0}
    (staging / "config.yaml").write_text(yaml.safe_dump({"model": LABRAM_TINY, "preprocess": preprocess}))
    run = client.create_run(experiment)
    client.log_artifact(run.info.run_id, str(staging / "best.pt"), artifact_path="checkpoints")
    client.log_artifact(run.info.run_id, str(staging / "config.yaml"))
    client.set_terminated(run.info.run_id)
    uri = f"runs:/{run.info.run_id}/checkpoints/best.pt"
    out = tmp_path / "submission.zip"

    assert main([f"c1={uri}", f"c2={uri}", f"out={out}", f"tracking_uri={tracking_uri}"]) == 0

    from eegphase.data.resample import resample_poly

    x = _inputs()[1]
    outputs = run_scorer(out, [x / 1e6], tmp_path)["outputs"]
    with torch.no_grad():
        expected = predictor(torch.stack([torch.from_numpy(resample_poly(w.numpy(), 2, 1)) for w in x]))
    torch.testing.assert_close(outputs[1][0], expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(outputs[2][0], expected, rtol=1e-5, atol=1e-6)

    with pytest.raises(ExportError, match="runs:/0123456789abcdef/checkpoints/best.pt"):
        unknown_run = "c1=runs:/0123456789abcdef/checkpoints/best.pt"
        export(parse_args([unknown_run, f"c2={uri}", f"out={out}", f"tracking_uri={tracking_uri}"]))


def test_missing_checkpoint_is_named(tmp_path):
    missing = tmp_path / "nowhere" / "best.pt"
    with pytest.raises(ExportError, match=str(missing)):
        build_submission(
            tmp_path / "s.zip", SubmissionModel(missing, EEGNEX), SubmissionModel(missing, EEGNEX)
        )


@pytest.mark.parametrize("uri", ["runs:/abc", "runs://checkpoints/best.pt", "models:/mine/1", "runs:/abc/"])
def test_malformed_uri_is_named(uri):
    with pytest.raises(ExportError, match="malformed MLflow URI"):
        parse_runs_uri(uri)
    assert main([f"c1={uri}", f"c2={uri}", "out=unused.zip"]) == 2


def test_checkpoint_that_does_not_fit_the_config_is_refused(tmp_path):
    checkpoint = _checkpoint(_trained(LABRAM_TINY, seed=4), tmp_path / "labram.pt")
    # the {name, size, kwargs} form of configs logged before encoders had a _target_ still reads
    wider = {
        "name": "labram",
        "size": "tiny",
        "kwargs": {"embed_dim": 64, "patch_spectrum": True, "pooling": "electrode"},
    }
    with pytest.raises(
        ExportError,
        match=rf"{checkpoint} does not fit model config .*embed_dim.*shape .*encoder.cls_token \(1, 1, 32\)",
    ):
        build_submission(
            tmp_path / "s.zip", SubmissionModel(checkpoint, wider), SubmissionModel(checkpoint, wider)
        )
    assert not (tmp_path / "s.zip").exists()


class NotATensor:
    """An arbitrary object: loading it would mean unpickling code."""


def test_checkpoint_with_pickled_objects_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": _trained(EEGNEX, seed=5).state_dict(), "extra": NotATensor()}, path)
    with pytest.raises(ExportError, match=rf"refusing to load checkpoint {path}"):
        build_submission(tmp_path / "s.zip", SubmissionModel(path, EEGNEX), SubmissionModel(path, EEGNEX))


def test_cli_needs_a_model_config_for_a_file_and_known_options(tmp_path, capsys):
    assert main([f"c1={tmp_path / 'a.pt'}", f"c2={tmp_path / 'a.pt'}", "out=x.zip"]) == 2
    assert "give its model config" in capsys.readouterr().err
    assert main(["c1=a.pt", "c2=a.pt", "out=x.zip", "c3_model={name: eegnex}"]) == 2
    assert "unknown option 'c3_model'" in capsys.readouterr().err


def test_bundling_refuses_an_import_the_scorer_lacks():
    with pytest.raises(BundleError, match="fake_module line 2 imports 'einops'"):
        rewrite_imports("fake_module", "import torch\nfrom einops import rearrange\n")


def _zipped_weights(zip_path: Path, challenge: int) -> dict[str, torch.Tensor]:
    with zipfile.ZipFile(zip_path) as archive:
        return torch.load(io.BytesIO(archive.read(f"weights_challenge_{challenge}.pt")), weights_only=True)


def test_ema_weights_are_exported_when_asked(tmp_path):
    model, ema = _trained(EEGNEX, seed=6), _trained(EEGNEX, seed=7)
    path = save_checkpoint(
        {"model": model.state_dict(), "ema": {"module": ema.state_dict()}}, tmp_path / "c.pt"
    )
    out = build_submission(
        tmp_path / "s.zip", SubmissionModel(path, EEGNEX, use_ema=True), SubmissionModel(path, EEGNEX)
    )
    for challenge, source in ((1, ema), (2, model)):
        exported = _zipped_weights(out, challenge)
        assert exported.keys() == source.state_dict().keys()
        for key, value in source.state_dict().items():
            torch.testing.assert_close(exported[key], value, rtol=0, atol=0)


@pytest.mark.parametrize(("sfreq", "up", "down"), [(200.0, 2, 1), (250.0, 5, 2)])
def test_the_submission_resamples_as_preprocessing_does(sfreq, up, down):
    """The exported resampling is scipy's ``resample_poly`` (what preprocessing applies, via
    ``data.resample.resample_poly``): same filter, alignment and length, to float32 rounding."""
    import scipy.signal

    from eegphase.export import runtime
    from eegphase.export.builder import resample_spec

    spec = resample_spec(sfreq)
    assert (spec["up"], spec["down"]) == (up, down) and resample_spec(100.0) is None
    x = torch.randn(2, 3, 200, generator=torch.Generator().manual_seed(0))
    resampled = runtime._Resampled(nn.Identity(), **spec)(x)
    expected = scipy.signal.resample_poly(x.double().numpy(), up, down, axis=-1)
    assert resampled.shape == expected.shape == (2, 3, 200 * up // down)
    torch.testing.assert_close(resampled, torch.from_numpy(expected).float(), rtol=0, atol=1e-5)


def test_a_200_hz_model_exports_a_100_hz_submission(tmp_path):
    """A model trained on 200 Hz windows (400 samples) scores the scorer's 100 Hz windows (200 samples),
    resampled to 200 Hz inside the submission, as the in-process model scores the resampled windows."""
    from eegphase.data.resample import resample_poly

    torch.manual_seed(3)
    labram = build_predictor(LABRAM_TINY, n_outputs=1).eval()
    eegnex = _trained(EEGNEX, seed=1)
    zip_path = build_submission(
        tmp_path / "submission.zip",
        SubmissionModel(_checkpoint(eegnex, tmp_path / "c1.pt"), EEGNEX),
        SubmissionModel(
            _checkpoint(labram, tmp_path / "c2.pt"), LABRAM_TINY, input_scale=VOLTS_TO_MICROVOLTS, sfreq=200.0
        ),
    )
    volts = [x / VOLTS_TO_MICROVOLTS for x in _inputs()]
    outputs = run_scorer(zip_path, volts, tmp_path, without=WITH_BRAINDECODE)["outputs"][2]
    with torch.no_grad():
        for v, out in zip(volts, outputs, strict=True):
            at_200_hz = torch.stack([torch.from_numpy(resample_poly(w.numpy(), 2, 1)) for w in v])
            assert at_200_hz.shape == (v.shape[0], 129, 400)
            torch.testing.assert_close(out, labram(at_200_hz * VOLTS_TO_MICROVOLTS), rtol=1e-4, atol=1e-5)
