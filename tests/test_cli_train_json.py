"""``clusterg train MODEL ... --json``: one JSON object on stdout (model, checkpoint, epochs, losses,
seconds), logs and progress on stderr; tiny synthetic runs of a few seconds."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("torch_geometric", reason="torch_geometric is not installed")


@pytest.fixture
def train_files(tmp_path, faces):
    x, y = faces
    np.save(tmp_path / "x.npy", x)
    (tmp_path / "y.meta").write_text("\n".join(map(str, y.tolist())) + "\n")
    return tmp_path, str(tmp_path / "x.npy"), str(tmp_path / "y.meta")


def test_train_gcn_v_json_is_one_object_on_stdout_logs_on_stderr(train_files):
    tmp, x, lab = train_files
    env = dict(os.environ, CLUSTERG_QUIET="0")  # logs on: they must go to stderr, not into the JSON
    res = subprocess.run([sys.executable, "-m", "clusterg", "train", "gcn-v", x, "--labels", lab, "-o",
                          str(tmp / "v.pt"), "--k", "10", "--hidden", "16", "--epochs", "3", "--batch-size", "64",
                          "--json"], capture_output=True, text=True, timeout=240, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout)  # the whole of stdout is one JSON object
    assert out["model"] == "gcn-v" and out["checkpoint"] == str(tmp / "v.pt") and (tmp / "v.pt").is_file()
    assert out["epochs"] == out["epochs_planned"] == 3 and out["finished"] is True
    assert len(out["losses"]) == 3 and all(np.isfinite(out["losses"])) and out["losses"][-1] < out["losses"][0]
    assert out["seconds"] >= 0 and out["config"]["k"] == 10 and out["config"]["hidden"] == 16
    assert "gcn-v epoch 3/3" in res.stderr  # the per-epoch log line went to stderr


def test_train_gcn_e_and_global_json_before_the_command(train_files, capsys):
    from clusterg.cli.main import main
    from clusterg.models.checkpoint import load_checkpoint
    tmp, x, lab = train_files
    assert main(["train", "gcn-v", x, "--labels", lab, "-o", str(tmp / "v.pt"), "--k", "10", "--hidden", "16",
                 "--epochs", "2", "--batch-size", "64", "--quiet"]) == 0
    assert capsys.readouterr().out.startswith("wrote ")  # without --json: the text line
    assert main(["--json", "train", "gcn-e", x, "--labels", lab, "-o", str(tmp / "e.pt"), "--gcn-v",
                 str(tmp / "v.pt"), "--k", "10", "--dims", "8,8,8,8", "--epochs", "2", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == "gcn-e" and out["epochs"] == 2 and len(out["losses"]) == 2
    assert out["config"]["dims"] == [8, 8, 8, 8] and "tau" in out["config"]
    assert load_checkpoint(tmp / "e.pt")["meta"]["losses"] == out["losses"]  # the same numbers are kept


def test_train_ada_nets_json(train_files, capsys):
    pytest.importorskip("infomap", reason="infomap is not installed")
    from clusterg.cli.main import main
    tmp, x, lab = train_files
    assert main(["train", "ada-nets", x, "--labels", lab, "-o", str(tmp / "a.pt"), "--k", "10", "--and-epochs", "2",
                 "--gcn-steps", "20", "--k-train", "5", "--quiet", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == "ada-nets" and out["checkpoint"] == str(tmp / "a.pt") and (tmp / "a.pt").is_file()
    assert out["epochs"] == 2 and len(out["losses"]["and"]) == 2 and np.isfinite(out["losses"]["gcn"]["last"])
    assert out["gcn_steps"] == 20 and out["seconds"] > 0 and out["config"]["linkage"] in ("cc", "infomap")
