"""A tiny sweeps YAML for the driver tests: one profile `t` (fastcnn width 4 on 256 Fashion-MNIST
images, seconds per cell) and one sweep `s` with an SGD cell and a constant-schedule grid."""

from __future__ import annotations

from pathlib import Path

TEMPLATE = """
profiles:
  t:
    seeds: [0]
    models: [fastcnn]
    datasets: [fashion-mnist]
    config: {{batch_size: 64, lr: 0.05, threads: 1}}
    overrides: {{epochs: {epochs}, train_subset: {train_subset}, test_subset: 128, width: 4}}
sweeps:
  s:
    groups:
      sgd: {{algorithm: sgd, label: SGD, x: 0}}
      constant:
        grid: {{a_c: [{values}]}}
        schedule: "constant({{a_c}})"
        label: "a_c={{a_c}}"
        x: "{{a_c}}"
"""


def write_tiny_sweeps(
    path: Path, values: list[float], epochs: int = 3, train_subset: int = 256
) -> Path:
    """Write the YAML with grid a_c = `values` and return its path."""
    values_text = ", ".join(map(str, values))
    path.write_text(TEMPLATE.format(values=values_text, epochs=epochs, train_subset=train_subset))
    return path
