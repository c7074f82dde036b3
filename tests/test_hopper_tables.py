"""The tables the "Going further on Hopper" sections print come from the H200 records, whole."""

from course import hopper


def test_attention_tables_hold_every_case_with_peer_lesson_and_chosen_kernel():
    record = hopper.recorded()
    for part in ("attention", "attention-bwd"):
        table = hopper.attention_table(record, part=part)
        for case in ("d=128 full", "d=128 causal", "d=64 full", "d=64 causal"):
            assert case in table, (part, case)
        chosen = "hopper (chosen)" if part == "attention" else "hopper bwd (chosen)"
        for kernel in ("cuDNN", "lesson", chosen):
            assert table.count(kernel) >= 4, (part, kernel)
        assert "sweep" not in table


def test_each_cuDNN_row_is_the_peer_of_its_case():
    """A row's ratio to cuDNN is cuDNN's time over the row's time, within its own case."""
    for row in hopper.recorded()["rows"]:
        if row.get("part", "").startswith("attention") and row.get("kernel") == "cuDNN":
            assert abs(row["vs_cudnn"] - 1.0) < 1e-9


def test_matmul_table_has_cublas_and_the_tuned_configuration_in_all_four_columns():
    table = hopper.matmul_table(hopper.recorded())
    lines = table.splitlines()
    assert "float16 4096^3" in lines[0] and "bfloat16 8192^3" in lines[0]
    for kernel in ("cuBLAS", "persistent + TMA", "tuned"):
        (line,) = [line for line in lines if line.startswith(kernel)]
        assert line.count("TF/s") == 4, line


def test_host_time_table_lists_the_three_wrappers_against_torch():
    table = hopper.host_time_table()
    for op in ("matmul", "softmax", "attention"):
        assert any(line.startswith(op) and line.endswith("x") for line in table.splitlines()), op
