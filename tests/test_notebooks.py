"""Every notebook in notebooks/ runs top to bottom on tiny settings (ADAPTSTEP_QUICK=1) and draws a figure."""

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
kernelspec = pytest.importorskip("ipykernel.kernelspec")

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.fixture
def quick_kernel(tmp_path, monkeypatch):
    """The ``python3`` kernel, pinned to this interpreter (the venv's), with ADAPTSTEP_QUICK=1 in its environment.

    A ``python3`` spec written to a folder first on JUPYTER_PATH wins over any user-level or system spec
    that might start another Python. One torch thread: the notebooks' small MLPs train several times
    slower when torch's threads compete with other processes for the cores.
    """
    kernelspec.write_kernel_spec(tmp_path / "kernels" / "python3")  # argv[0] = sys.executable
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    monkeypatch.setenv("ADAPTSTEP_QUICK", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_runs_top_to_bottom_and_draws(path, quick_kernel):
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name=quick_kernel,
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()  # raises CellExecutionError at the first failing cell
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    assert any("image/png" in output.get("data", {}) for output in outputs), f"{path.name} displayed no figure"
