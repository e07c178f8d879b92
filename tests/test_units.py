from sage_ops.units import human_bytes, human_seconds


def test_bytes_in_decimal_units() -> None:
    assert human_bytes(512) == "512 B"
    assert human_bytes(1_234_567) == "1.2 MB"
    assert human_bytes(3_200_000_000) == "3.2 GB"


def test_durations() -> None:
    assert human_seconds(4.24) == "4.2 s"
    assert human_seconds(125) == "2 min 5 s"
    assert human_seconds(3720) == "1 h 2 min"
