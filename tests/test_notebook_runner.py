"""The main job's notebook runner (`make report`): a real notebook headless, and a failing one."""
from __future__ import annotations

import nbformat
import pytest
from nbclient.exceptions import CellExecutionError

from cv_helpers.config import report_dir
from cv_helpers.files import write_json
from cv_helpers.workbench.notebooks import TrainingProgress, run_notebooks
from cv_helpers.workbench.runs import RunLock

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def test_the_runner_executes_a_notebook_with_a_widget_and_keeps_the_executed_copy(capfd):
    # Q1.1's class browser is a widget: the cell nbclient alone can hang on (the runner's polling override)
    times = list(run_notebooks(["Q1_1_cifar100_visualisation"]))
    assert "IPKernelApp" not in capfd.readouterr().err          # no third-party notice from the kernel
    assert [name for name, _ in times] == ["Q1_1_cifar100_visualisation.ipynb"] and times[0][1] > 0
    executed = nbformat.read(report_dir() / "notebooks" / "Q1_1_cifar100_visualisation.ipynb", as_version=4)
    code = [cell for cell in executed.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code)
    outputs = [output for cell in code for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    assert any(WIDGET_VIEW in output.get("data", {}) for output in outputs)


def test_a_failing_cell_stops_the_run_after_the_copy_with_the_outputs_so_far_is_saved(tmp_path):
    cells = [nbformat.v4.new_code_cell(source) for source in ("print('before the error')", "1 / 0", "print('never')")]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), tmp_path / "Broken.ipynb")
    with pytest.raises(CellExecutionError, match="ZeroDivisionError"):
        list(run_notebooks(["Broken"], folder=tmp_path))
    saved = nbformat.read(report_dir() / "notebooks" / "Broken.ipynb", as_version=4)
    assert saved.cells[0].outputs[0].text == "before the error\n"
    assert saved.cells[1].outputs[0].ename == "ZeroDivisionError"
    assert saved.cells[2].outputs == [] and saved.cells[2].execution_count is None


def test_a_run_being_trained_is_reported_once_per_finished_epoch_with_its_accuracy(tmp_path):
    progress = TrainingProgress(tmp_path)
    assert progress.new_lines() == []
    with RunLock(tmp_path, "q1.4-convnet", epochs=50) as lock:
        assert progress.new_lines() == []                           # no epoch finished yet
        lock.update(12, 45.1, "test")
        assert progress.new_lines() == ["  q1.4-convnet: epoch 12 of 50, test accuracy 45.10 %"]
        assert progress.new_lines() == []
        lock.update(13, 46.0, "test")
        assert progress.new_lines() == ["  q1.4-convnet: epoch 13 of 50, test accuracy 46.00 %"]
        lock.update(14, 46.5, "test")                               # the last epoch: its lock goes before a poll
    assert progress.new_lines() == []                               # interrupted: no metrics, nothing to say
    with RunLock(tmp_path, "q1.4-convnet-e15-val", epochs=15) as lock:
        lock.update(14, 47.0, "validation")
        assert progress.new_lines() == ["  q1.4-convnet-e15-val: epoch 14 of 15, validation accuracy 47.00 %"]
        write_json(tmp_path / "q1.4-convnet-e15-val" / "metrics.json",
                   {"epochs_done": 15, "train_seconds": 90.0, "final_test_acc": 47.76, "evaluated_on": "validation"})
    assert progress.new_lines() == ["  q1.4-convnet-e15-val: done, 15 epochs in 1.5 min, validation accuracy 47.76 %"]
    assert progress.new_lines() == []
